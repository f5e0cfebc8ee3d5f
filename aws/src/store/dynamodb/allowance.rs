//! The publish allowance on AWS: each connection's frames counted in its item, in one
//! conditional write that also reads the record ([`Allowances`]). What admission asks for every
//! publish, subscribe and unsubscribe on AWS ([`echo_core::admission::in_store`]).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;
use echo_core::channel::ChannelName;
use echo_core::ids::ConnectionId;
use echo_core::rate::Allowance;
use echo_core::store::{Allowances, PublishGrant, StoreResult};

use super::{
    DynamoStore, META_SK, condition_held, conn_pk, expired, n, now_secs, record_of, s, settled_in,
};

#[async_trait]
impl Allowances for DynamoStore {
    /// A conditional update of the connection's item counts the publish in the current window
    /// and returns the item. There are two: one that adds to the window's count, one that starts
    /// a window; which is tried first follows what this process last saw of the connection, so
    /// a publish usually costs one request, two when the guess is wrong (another invocation
    /// counted the connection meanwhile), and a read to tell a refusal from a connection that
    /// is gone. Concurrent invocations cannot both take the last publish: the count is checked
    /// and raised in the same write.
    async fn take_publish(
        &self,
        id: &ConnectionId,
        channel: &ChannelName,
        now_ms: u64,
        allowance: Allowance,
    ) -> StoreResult<PublishGrant> {
        let (window, retry_ms) = allowance.window(now_ms);
        // This window's publishes so far, under the limit.
        let same = (
            "SET rc = rc + :one",
            "attribute_exists(pk) AND rw = :w AND rc < :max",
        );
        // The first publish of a window; when a concurrent one started it meanwhile, the count
        // is tried again.
        let first = (
            "SET rw = :w, rc = :one",
            "attribute_exists(pk) AND (attribute_not_exists(rw) OR rw < :w)",
        );
        let attempts = if self.counted_in(id, window) {
            vec![same, first, same]
        } else {
            vec![first, same]
        };
        for (update, condition) in attempts {
            let mut request = self
                .client
                .update_item()
                .table_name(&self.tables.connections)
                .key("pk", s(conn_pk(id)))
                .key("sk", s(META_SK))
                .update_expression(update)
                .condition_expression(condition)
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":w", n(window))
                .return_values(ReturnValue::AllNew);
            if condition.contains(":max") {
                request = request.expression_attribute_values(":max", n(allowance.limit.into()));
            }
            if let Some(out) = condition_held(request.send().await)? {
                let item = out.attributes.unwrap_or_default();
                if expired(&item, now_secs()) {
                    return Ok(PublishGrant::Unknown);
                }
                let (record, _) = record_of(id, &item)?;
                let settled = settled_in(&item, channel.as_str());
                return Ok(PublishGrant::Granted { record, settled });
            }
        }
        Ok(match self.live_item(id).await? {
            Some(_) => PublishGrant::Limited { retry_ms },
            None => PublishGrant::Unknown,
        })
    }
}
