//! Subscriptions, both ways: a connection's channels and a channel's connections.

use async_trait::async_trait;

use super::error::StoreResult;
use crate::channel::ChannelKey;
use crate::ids::ConnectionId;

/// The result of a subscribe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscribed {
    Added,
    AlreadySubscribed,
}

/// Subscriptions.
///
/// `subscribe` and `unsubscribe` are idempotent; `subscribers` never returns a connection whose
/// record has expired, nor one after its `remove_connection` returned.
#[async_trait]
pub trait Subscriptions: Send + Sync + 'static {
    /// Subscribes `id` to `key`, refusing a new subscription beyond `max` per connection.
    async fn subscribe(
        &self,
        id: &ConnectionId,
        key: &ChannelKey,
        max: usize,
    ) -> StoreResult<Subscribed>;

    /// Returns whether the subscription existed.
    async fn unsubscribe(&self, id: &ConnectionId, key: &ChannelKey) -> StoreResult<bool>;

    /// The connections subscribed to `key`, in no particular order; never one whose record has
    /// expired.
    async fn subscribers(&self, key: &ChannelKey) -> StoreResult<Vec<ConnectionId>>;

    /// The channels `id` is subscribed to.
    async fn subscriptions(&self, id: &ConnectionId) -> StoreResult<Vec<ChannelKey>>;
}
