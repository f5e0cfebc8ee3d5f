//! Storage ports: connections and subscriptions, channel history, presence, associations.
//!
//! Every implementation (in memory, the embedded store, DynamoDB) passes the same suite in
//! [`conformance`].

pub mod conformance;
pub mod memory;
pub mod page;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::auth::Claims;
use crate::channel::{ChannelKey, ChannelName};
use crate::ids::ConnectionId;
use crate::message::{NewMessage, StoredMessage};
use crate::rate::Allowance;

pub use crate::member::Member;
pub use memory::MemoryStore;
pub use page::{HistoryPage, PageBuilder, PageLimit};

/// A storage failure.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The connection has no record (it disconnected, or its record expired).
    #[error("connection {0} is not known")]
    UnknownConnection(ConnectionId),
    /// The connection already has the most subscriptions it may have.
    #[error("a connection may hold at most {max} subscriptions")]
    TooManySubscriptions { max: usize },
    /// The backend failed; the operation may or may not have taken effect unless the method's
    /// documentation says it is atomic.
    #[error("store backend failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Stored data could not be decoded.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend(Box::new(e))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A live connection and the claims of the token it connected with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionRecord {
    pub id: ConnectionId,
    pub claims: Claims,
    /// When the connection was accepted, milliseconds since the Unix epoch.
    pub connected_at: u64,
    /// When the record may be forgotten even without a `$disconnect` (API Gateway closes every
    /// connection after 2 hours), seconds since the Unix epoch; DynamoDB's TTL attribute.
    pub expires_at: u64,
}

/// What a publish's first read says ([`ConnectionStore::take_publish`]).
#[derive(Debug, Clone, PartialEq)]
pub enum PublishGrant {
    /// Counted against the allowance: the record, and the order settled on the channel.
    Granted {
        record: ConnectionRecord,
        settled: u64,
    },
    /// Over the allowance: nothing counted; a publish is allowed again in `retry_ms`.
    Limited { retry_ms: u64 },
    /// No such connection (or its record expired).
    Unknown,
}

/// The result of a subscribe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscribed {
    Added,
    AlreadySubscribed,
}

/// Connections and their subscriptions.
///
/// A record whose `expires_at` (seconds) has passed is gone: `get_connection` does not return it
/// and `subscribers` does not list it.
///
/// Guarantees every implementation keeps: `subscribe` and `unsubscribe` are idempotent;
/// `remove_connection` removes the connection's subscriptions with it and returns what it removed
/// only once; `subscribers` never returns a connection after its `remove_connection` returned.
#[async_trait]
pub trait ConnectionStore: Send + Sync + 'static {
    async fn put_connection(&self, record: ConnectionRecord) -> StoreResult<()>;

    async fn get_connection(&self, id: &ConnectionId) -> StoreResult<Option<ConnectionRecord>>;

    /// Removes the connection and every subscription it held; returns them, or `None` if there was
    /// no such connection.
    async fn remove_connection(
        &self,
        id: &ConnectionId,
    ) -> StoreResult<Option<(ConnectionRecord, Vec<ChannelKey>)>>;

    /// Subscribes `id` to `key`, refusing a new subscription beyond `max` per connection.
    async fn subscribe(
        &self,
        id: &ConnectionId,
        key: &ChannelKey,
        max: usize,
    ) -> StoreResult<Subscribed>;

    /// Returns whether the subscription existed.
    async fn unsubscribe(&self, id: &ConnectionId, key: &ChannelKey) -> StoreResult<bool>;

    /// Connections whose records expired at or before `now_secs` (seconds) and are still kept,
    /// at most `limit`, in no particular order: those whose `$disconnect` never came, or whose
    /// token ran out unrefreshed. What the sweep ends ([`crate::disconnection`]).
    async fn lapsed(&self, now_secs: u64, limit: usize) -> StoreResult<Vec<ConnectionId>>;
    /// The connections subscribed to `key`, in no particular order; never one whose record has
    /// expired.
    async fn subscribers(&self, key: &ChannelKey) -> StoreResult<Vec<ConnectionId>>;

    /// Replaces the connection's claims (a refreshed token) and moves its record's and its
    /// subscriptions' expiry to `expires_at`. `false` when the connection is not known (or its
    /// record expired).
    async fn renew(&self, id: &ConnectionId, claims: Claims, expires_at: u64) -> StoreResult<bool>;

    /// The channels `id` is subscribed to.
    async fn subscriptions(&self, id: &ConnectionId) -> StoreResult<Vec<ChannelKey>>;

    /// The connection's record with the highest publish `order` settled on `channel` (0 if none),
    /// read together: what a publish that carries an `order` starts with.
    async fn get_publisher(
        &self,
        id: &ConnectionId,
        channel: &ChannelName,
    ) -> StoreResult<Option<(ConnectionRecord, u64)>>;

    /// Counts a publish of `id` against `allowance` at `now_ms` and reads its record with the
    /// order settled on `channel`, in one step where the store can (one conditional write on
    /// DynamoDB). Concurrent calls for one connection never let more than the allowance through.
    async fn take_publish(
        &self,
        id: &ConnectionId,
        channel: &ChannelName,
        now_ms: u64,
        allowance: Allowance,
    ) -> StoreResult<PublishGrant>;

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

/// Channel sequence numbers and stored messages.
///
/// `append` assigns the channel's next seq atomically: concurrent appends to one channel get
/// distinct, increasing seqs, and a seq is never handed out twice, even across restarts. Once
/// `append` returns, the message is durable (it survives a crash of the process).
#[async_trait]
pub trait HistoryStore: Send + Sync + 'static {
    async fn append(&self, key: &ChannelKey, message: NewMessage) -> StoreResult<StoredMessage>;

    /// Starts an append and returns its completion. Stores that can (the embedded store) take
    /// the message in when this is called, so successive calls get increasing seqs in call order
    /// even if their completions are awaited later or together; the default starts the append
    /// when the returned future is first polled.
    fn append_started(
        self: Arc<Self>,
        key: ChannelKey,
        message: NewMessage,
    ) -> Pin<Box<dyn Future<Output = StoreResult<StoredMessage>> + Send>> {
        Box::pin(async move { self.append(&key, message).await })
    }

    /// The last seq handed out on the channel, 0 if none.
    async fn latest_seq(&self, key: &ChannelKey) -> StoreResult<u64>;

    /// Stored messages with seq greater than `since`, oldest first, within `limit` (see
    /// [`PageBuilder`]), and whether more follow.
    async fn page(
        &self,
        key: &ChannelKey,
        since: u64,
        limit: PageLimit,
    ) -> StoreResult<HistoryPage>;

    /// Stored messages with seq greater than `since`, oldest first, at most `limit`.
    async fn range(
        &self,
        key: &ChannelKey,
        since: u64,
        limit: usize,
    ) -> StoreResult<Vec<StoredMessage>> {
        Ok(self
            .page(key, since, PageLimit::count(limit))
            .await?
            .messages)
    }

    /// Deletes messages older than `before_ts` (milliseconds); returns how many. Sequence numbers
    /// are kept: a channel whose history is pruned continues from its last seq.
    async fn prune(&self, before_ts: u64) -> StoreResult<u64>;
}

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

/// Where the current associations document is kept.
#[async_trait]
pub trait AssociationsStore: Send + Sync + 'static {
    async fn load_associations(&self) -> StoreResult<Option<String>>;

    async fn save_associations(&self, document: &str) -> StoreResult<()>;
}
