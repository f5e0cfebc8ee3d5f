//! Connection records: who is connected, with which claims, until when.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::error::StoreResult;
use crate::auth::Claims;
use crate::channel::{AppId, ChannelKey};
use crate::ids::ConnectionId;

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

/// Connection records.
///
/// A record whose `expires_at` (seconds) has passed is gone: `get_connection` does not return it.
/// `remove_connection` removes the connection's subscriptions with it and returns what it removed
/// only once.
#[async_trait]
pub trait ConnectionRecords: Send + Sync + 'static {
    async fn put_connection(&self, record: ConnectionRecord) -> StoreResult<()>;

    /// Records the connection if its app holds fewer than `max` counted connections, and counts
    /// it; `false` (nothing recorded) when the app is full. A counted connection stops counting
    /// when it is removed. The check and the count are one atomic step, so racing connects never
    /// take the app past `max`.
    async fn put_connection_within(&self, record: ConnectionRecord, max: u64) -> StoreResult<bool>;

    async fn get_connection(&self, id: &ConnectionId) -> StoreResult<Option<ConnectionRecord>>;

    /// Removes the connection and every subscription it held; returns them, or `None` if there was
    /// no such connection.
    async fn remove_connection(
        &self,
        id: &ConnectionId,
    ) -> StoreResult<Option<(ConnectionRecord, Vec<ChannelKey>)>>;

    /// Replaces the connection's claims (a refreshed token) and moves its record's and its
    /// subscriptions' expiry to `expires_at`. `false` when the connection is not known (or its
    /// record expired).
    async fn renew(&self, id: &ConnectionId, claims: Claims, expires_at: u64) -> StoreResult<bool>;

    /// Connections whose records expired at or before `now_secs` (seconds) and are still kept,
    /// at most `limit`, in no particular order: those whose `$disconnect` never came, or whose
    /// token ran out unrefreshed. What the sweep ends ([`crate::disconnection`]).
    async fn lapsed(&self, now_secs: u64, limit: usize) -> StoreResult<Vec<ConnectionId>>;

    /// The live connections of user `sub` in `app` (ending a user's sessions), at most `limit`.
    async fn user_connections(
        &self,
        app: &AppId,
        sub: &str,
        limit: usize,
    ) -> StoreResult<Vec<ConnectionId>>;
}
