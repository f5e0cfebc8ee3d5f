//! Settled publish orders, a map in the connection's item ([`PublishOrders`]).

use async_trait::async_trait;
use echo_core::channel::ChannelName;
use echo_core::ids::ConnectionId;
use echo_core::store::{ConnectionRecord, PublishOrders, StoreResult};

use super::{DynamoStore, META_SK, condition_held, conn_pk, n, record_of, s, settled_in};

#[async_trait]
impl PublishOrders for DynamoStore {
    async fn get_publisher(
        &self,
        id: &ConnectionId,
        channel: &ChannelName,
    ) -> StoreResult<Option<(ConnectionRecord, u64)>> {
        let Some(item) = self.live_item(id).await? else {
            return Ok(None);
        };
        let (record, _) = record_of(id, &item)?;
        Ok(Some((record, settled_in(&item, channel.as_str()))))
    }

    async fn settled_order(&self, id: &ConnectionId, channel: &ChannelName) -> StoreResult<u64> {
        Ok(self
            .live_item(id)
            .await?
            .map_or(0, |item| settled_in(&item, channel.as_str())))
    }

    /// One conditional update of the connection's item: the order only ever rises, and a
    /// connection that is gone is not brought back.
    async fn settle_order(
        &self,
        id: &ConnectionId,
        channel: &ChannelName,
        order: u64,
    ) -> StoreResult<()> {
        let updated = self
            .client
            .update_item()
            .table_name(&self.tables.connections)
            .key("pk", s(conn_pk(id)))
            .key("sk", s(META_SK))
            .update_expression("SET ord.#c = :n")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(ord.#c) OR ord.#c < :n)",
            )
            .expression_attribute_names("#c", channel.as_str())
            .expression_attribute_values(":n", n(order))
            .send()
            .await;
        condition_held(updated).map(|_| ())
    }
}
