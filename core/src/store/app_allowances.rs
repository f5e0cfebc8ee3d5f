//! Publishes counted per app, against the app's publish allowance (its associations'
//! `limits.publishRate` and `publishBurst`), beside each connection's own. Fixed windows, as a
//! connection's allowance on AWS ([`Allowance`]): one count per app and window that every
//! instance shares, raised only while under the limit, in one step.

use async_trait::async_trait;

use super::error::StoreResult;
use crate::channel::AppId;
use crate::rate::Allowance;

#[async_trait]
pub trait AppAllowances: Send + Sync + 'static {
    /// Counts one publish of `app` in the window `now_ms` falls in. `Err` (nothing counted)
    /// carries the milliseconds until the next window when this one is full.
    async fn take_app_publish(
        &self,
        app: &AppId,
        allowance: Allowance,
        now_ms: u64,
    ) -> StoreResult<Result<(), u64>>;
}
