//! Allowances counted in the store: a connection's frames per window, counted with its record
//! in one step, so that concurrent invocations (API Gateway) share one count.

use async_trait::async_trait;

use super::connections::ConnectionRecord;
use super::error::StoreResult;
use crate::channel::ChannelName;
use crate::ids::ConnectionId;
use crate::rate::Allowance;

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

/// Frames counted against a connection's allowance in the store.
#[async_trait]
pub trait Allowances: Send + Sync + 'static {
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
}
