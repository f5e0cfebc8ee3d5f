//! Who is on each channel, as stored.

use async_trait::async_trait;

use super::error::StoreResult;
use crate::channel::ChannelKey;
use crate::ids::ConnectionId;
use crate::member::Member;

/// A page of a channel's members, in `sub` order; `more` when members after the last one were
/// left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembersPage {
    pub members: Vec<Member>,
    pub more: bool,
}

/// Who is on each channel: users (a token's `sub`) and their subscribed connections.
///
/// `join` and `leave` are atomic per user and channel: of concurrent joins of one user exactly
/// one is its first, of concurrent leaves exactly one its last. A connection counts until its
/// `expires_at` (seconds; where a store cannot keep it per connection, at the latest the user's
/// last join plus the connection's greatest age), so that connections that vanished without a
/// `leave` stop counting on their own.
#[async_trait]
pub trait PresenceStore: Send + Sync + 'static {
    /// Puts connection `id` of user `sub` on `key`; `true` when the user had no connection on
    /// it before (its join). A repeat is `false`.
    async fn join(
        &self,
        key: &ChannelKey,
        sub: &str,
        id: &ConnectionId,
        expires_at: u64,
    ) -> StoreResult<bool>;

    /// Takes connection `id` of user `sub` off `key`; `true` when it was the user's last (its
    /// leave), even if it had expired (the sweep ends expired connections: their channels hear
    /// the leave then). `false` when the connection was not on the channel.
    async fn leave(&self, key: &ChannelKey, sub: &str, id: &ConnectionId) -> StoreResult<bool>;

    /// The members whose `sub` sorts after `after`, in `sub` order, at most `limit`.
    async fn members(
        &self,
        key: &ChannelKey,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<MembersPage>;
}
