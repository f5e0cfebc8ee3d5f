//! Refused connects kept for the clients that named their attempts (see
//! [`connect_attempt`](crate::connect_attempt)).

use async_trait::async_trait;

use super::error::StoreResult;
use crate::connect_attempt::{AttemptId, Refusal};

#[async_trait]
pub trait ConnectRefusals: Send + Sync + 'static {
    /// Keeps `refusal` for `attempt` until `expires_at_ms`.
    async fn keep_refusal(
        &self,
        attempt: &AttemptId,
        refusal: &Refusal,
        expires_at_ms: u64,
    ) -> StoreResult<()>;

    /// The refusal kept for `attempt`, unless it expired by `now_ms`.
    async fn refusal(&self, attempt: &AttemptId, now_ms: u64) -> StoreResult<Option<Refusal>>;
}
