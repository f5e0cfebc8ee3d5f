//! Publish orders: how far each connection's numbered publishes on a channel are settled, where
//! frames may be handled concurrently (API Gateway).

use async_trait::async_trait;

use super::connections::ConnectionRecord;
use super::error::StoreResult;
use crate::channel::ChannelName;
use crate::ids::ConnectionId;

/// Settled publish orders, kept with the connection's record.
#[async_trait]
pub trait PublishOrders: Send + Sync + 'static {
    /// The connection's record with the highest publish `order` settled on `channel` (0 if none),
    /// read together: what a publish that carries an `order` starts with.
    async fn get_publisher(
        &self,
        id: &ConnectionId,
        channel: &ChannelName,
    ) -> StoreResult<Option<(ConnectionRecord, u64)>>;

    /// The highest publish `order` of `id` on `channel` (of the connection's app) that is
    /// settled (committed, dropped or refused); 0 if none, or if the connection is not known.
    async fn settled_order(&self, id: &ConnectionId, channel: &ChannelName) -> StoreResult<u64>;

    /// Records that `id`'s publish `order` on `channel` is settled. Never lowers what is
    /// recorded; a connection that is not known is left alone.
    async fn settle_order(
        &self,
        id: &ConnectionId,
        channel: &ChannelName,
        order: u64,
    ) -> StoreResult<()>;
}
