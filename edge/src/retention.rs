//! History retention: stored messages older than the retention are pruned in the background.

use std::sync::Arc;
use std::time::Duration;

use echo_core::clock::Clock;
use echo_core::store::HistoryStore;
use tokio_util::sync::CancellationToken;

use crate::store::RedbStore;

/// Prunes `store` of messages older than `retention`, every tenth of it (between 1 s and
/// 10 min), until `stop`.
pub async fn prune_history(
    store: Arc<RedbStore>,
    clock: Arc<dyn Clock>,
    retention: Duration,
    stop: CancellationToken,
) {
    let every = (retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(600));
    loop {
        let before = clock.now_ms().saturating_sub(retention.as_millis() as u64);
        match store.prune(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "pruned history"),
            Err(e) => tracing::warn!(error = %e, "could not prune history"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
