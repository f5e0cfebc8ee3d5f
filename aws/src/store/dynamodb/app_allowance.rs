//! Publishes counted per app on AWS ([`AppAllowances`]): an item per app and window in the
//! connections table, raised by one conditional update while under the limit, and expiring
//! (its `ttl`) a minute after its window. One more write per publish of an app with a
//! `publishRate`; none for other apps.

use async_trait::async_trait;
use echo_core::channel::AppId;
use echo_core::rate::Allowance;
use echo_core::store::{AppAllowances, StoreResult};

use super::{DynamoStore, condition_held, n, s};

#[async_trait]
impl AppAllowances for DynamoStore {
    async fn take_app_publish(
        &self,
        app: &AppId,
        allowance: Allowance,
        now_ms: u64,
    ) -> StoreResult<Result<(), u64>> {
        let (window, retry_ms) = allowance.window(now_ms);
        let expires = (now_ms + retry_ms) / 1000 + 60;
        let counted = self
            .client
            .update_item()
            .table_name(&self.tables.connections)
            .key("pk", s(format!("a#{}", app.as_str())))
            .key("sk", s(format!("r#{window}")))
            .update_expression("ADD #n :one SET #ttl = :ttl")
            .condition_expression("attribute_not_exists(#n) OR #n < :max")
            .expression_attribute_names("#n", "n")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(u64::from(allowance.limit)))
            .expression_attribute_values(":ttl", n(expires))
            .send()
            .await;
        Ok(match condition_held(counted)? {
            Some(_) => Ok(()),
            None => Err(retry_ms),
        })
    }
}
