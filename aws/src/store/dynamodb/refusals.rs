//! Refused connects kept for their clients on AWS ([`ConnectRefusals`]): an item per attempt in
//! the connections table, written by the connect handler and read by the HTTP API, expiring
//! (its `ttl`, and `until` checked on every read) a minute after the refusal.

use async_trait::async_trait;
use echo_core::connect_attempt::{AttemptId, Refusal};
use echo_core::store::{ConnectRefusals, StoreError, StoreResult};

use super::{DynamoStore, get_n, get_s, n, s};

fn pk(attempt: &AttemptId) -> String {
    format!("x#{}", attempt.as_str())
}

#[async_trait]
impl ConnectRefusals for DynamoStore {
    async fn keep_refusal(
        &self,
        attempt: &AttemptId,
        refusal: &Refusal,
        expires_at_ms: u64,
    ) -> StoreResult<()> {
        let json = serde_json::to_string(refusal).map_err(StoreError::backend)?;
        self.client
            .put_item()
            .table_name(&self.tables.connections)
            .item("pk", s(pk(attempt)))
            .item("sk", s("refusal"))
            .item("refusal", s(json))
            .item("until", n(expires_at_ms))
            .item("ttl", n(expires_at_ms / 1000 + 1))
            .send()
            .await
            .map_err(StoreError::backend)?;
        Ok(())
    }

    async fn refusal(&self, attempt: &AttemptId, now_ms: u64) -> StoreResult<Option<Refusal>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.connections)
            .key("pk", s(pk(attempt)))
            .key("sk", s("refusal"))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::backend)?;
        let Some(item) = out.item().filter(|i| get_n(i, "until") > Some(now_ms)) else {
            return Ok(None);
        };
        get_s(item, "refusal")
            .map(serde_json::from_str)
            .transpose()
            .map_err(StoreError::backend)
    }
}
