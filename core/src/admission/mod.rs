//! Admission: whether a connection's frame may be handled, decided in one place per environment.
//!
//! Every frame but `ping` passes admission before its handler runs. Admission reads the
//! connection's record (no record: the connection is unknown), counts the frames that cost store
//! work (`publish`, `subscribe`, `unsubscribe`) against the connection's allowance, and says where
//! a publish that carries an `order` stands in its connection's order. The token's expiry and
//! the channel permissions are then checked by the handler on the record admission returned.
//!
//! - [`in_process`]: the local edge. The allowance is a token bucket per connection in the
//!   edge's memory, and a connection's frames are handed over one at a time, in the order sent:
//!   an ordered publish's turn has always come.
//! - [`in_store`]: AWS. Each frame may be handled by another invocation, so the allowance is
//!   counted with the connection's record in the store, in one conditional write
//!   ([`Allowances`](crate::store::Allowances); DynamoDB's in `aws/src/store/dynamodb/allowance.rs`),
//!   and an ordered publish waits for the store to say its predecessor settled.

pub mod in_process;
pub mod in_store;

use async_trait::async_trait;

use crate::channel::ChannelName;
use crate::ids::ConnectionId;
use crate::store::{ConnectionRecord, StoreResult};

pub use in_process::InProcessAdmission;
pub use in_store::InStoreAdmission;

/// What a frame asks of admission.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ask<'a> {
    /// The frame's channel, when the frame counts against the connection's allowance: a publish,
    /// a subscribe or an unsubscribe (each is store work, and the latter two a `$status` event).
    pub counted: Option<&'a ChannelName>,
    /// The channel of a publish that carries an `order`.
    pub ordered: Option<&'a ChannelName>,
}

/// Admission's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The frame may be handled: the connection's record, and for an ordered publish on a
    /// gateway that may hand frames over concurrently, the highest order already settled on its
    /// channel (`None` where frames come one at a time, in the order sent: its turn has come).
    Admitted {
        record: ConnectionRecord,
        settled: Option<u64>,
    },
    /// Over the connection's allowance: nothing was counted, and a frame is allowed again in
    /// `retry_ms`. An ordered publish still takes its turn (`settled` as above; `Some(0)` when
    /// nothing was read), so that the connection's next publish does not wait for it.
    Limited { retry_ms: u64, settled: Option<u64> },
    /// No such connection, or its record expired.
    Unknown,
}

/// Decides whether frames may be handled.
#[async_trait]
pub trait Admission: Send + Sync + 'static {
    /// Admits a frame of connection `id` that asks `ask`, at `now_ms`.
    async fn admit(&self, id: &ConnectionId, ask: Ask<'_>, now_ms: u64) -> StoreResult<Verdict>;

    /// Counts a publish of an application server (Echo's HTTP API), which has no connection:
    /// `origin` names it. `Err` carries the milliseconds until one is allowed.
    fn admit_request(&self, origin: &ConnectionId, now_ms: u64) -> Result<(), u64>;

    /// Forgets what was counted for a connection that is gone.
    fn forget(&self, id: &ConnectionId);
}

/// What the adapters' tests share: a connection of user `alice` whose record never expires.
#[cfg(test)]
pub(crate) async fn connected(store: &crate::store::MemoryStore, id: &str) -> ConnectionId {
    use crate::store::ConnectionRecords;
    let id = ConnectionId::from(id);
    let claims = crate::auth::Claims::new(
        crate::channel::AppId::new("app").unwrap_or_else(|e| panic!("{e}")),
        "alice",
        u64::MAX / 2,
    );
    store
        .put_connection(ConnectionRecord {
            id: id.clone(),
            claims,
            connected_at: 0,
            expires_at: u64::MAX / 2,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    id
}
