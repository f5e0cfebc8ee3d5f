//! Fan-out: delivering a committed message to every subscriber of its channel.
//!
//! The message frame is encoded once and the same bytes go to every subscriber. A subscriber the
//! gateway reports gone (HTTP 410, or unknown to the local edge) has its records deleted: that is
//! how connections whose `$disconnect` never arrived are cleaned up.
//!
//! Locally, [`Inline`] delivers in-process as the [`Dispatcher`]; on AWS the same [`deliver`] runs
//! in the fan-out Lambda.

use std::sync::Arc;

use async_trait::async_trait;
use echo_core::channel::ChannelKey;
use echo_core::gateway::{Frame, Gateway, GatewayError};
use echo_core::ids::ConnectionId;
use echo_core::message::StoredMessage;
use echo_core::protocol::ServerFrame;
use echo_core::publish::{DispatchError, Dispatcher};
use echo_core::store::ConnectionStore;
use serde::Serialize;

/// What fan-out needs.
pub struct Deps {
    pub connections: Arc<dyn ConnectionStore>,
    pub gateway: Arc<dyn Gateway>,
}

/// The outcome of one delivery, for metrics and logs.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub subscribers: usize,
    pub delivered: usize,
    /// Connections found gone and removed.
    pub stale_removed: usize,
    /// Posts that failed for another reason (throttling, a slow consumer being closed).
    pub failed: usize,
}

/// Delivers `message` to the subscribers of `key`.
pub async fn deliver(
    deps: &Deps,
    key: &ChannelKey,
    message: &StoredMessage,
) -> Result<Report, echo_core::store::StoreError> {
    let subscribers = deps.connections.subscribers(key).await?;
    deliver_to(deps, key, message, &subscribers).await
}

/// Splits subscribers into batches of at most `batch_size`: one invocation's share of a large
/// channel, so that delivery time stays flat as a channel grows.
pub fn batches(subscribers: Vec<ConnectionId>, batch_size: usize) -> Vec<Vec<ConnectionId>> {
    let size = batch_size.max(1);
    let mut out = Vec::with_capacity(subscribers.len().div_ceil(size));
    let mut it = subscribers.into_iter().peekable();
    while it.peek().is_some() {
        out.push(it.by_ref().take(size).collect());
    }
    out
}

/// Delivers `message` to `subscribers` of `key`.
pub async fn deliver_to(
    deps: &Deps,
    key: &ChannelKey,
    message: &StoredMessage,
    subscribers: &[ConnectionId],
) -> Result<Report, echo_core::store::StoreError> {
    if subscribers.is_empty() {
        return Ok(Report::default());
    }
    let frame = Frame::text(ServerFrame::Message(message.clone()).to_json());
    let failures = deps.gateway.post_many(subscribers, &frame).await;
    let mut report = Report {
        subscribers: subscribers.len(),
        delivered: subscribers.len() - failures.len(),
        ..Report::default()
    };
    for (id, error) in failures {
        match error {
            GatewayError::Gone => {
                // Removing twice is harmless: removal is idempotent.
                if let Err(e) = deps.connections.remove_connection(&id).await {
                    tracing::warn!(connection_id = %id, error = %e, "could not remove stale connection");
                } else {
                    report.stale_removed += 1;
                }
            }
            other => {
                report.failed += 1;
                tracing::warn!(connection_id = %id, channel = %key, seq = message.seq, error = %other, "delivery failed");
            }
        }
    }
    Ok(report)
}

/// Delivers in-process, before `dispatch` returns: the local edge's dispatcher.
pub struct Inline(pub Deps);

#[async_trait]
impl Dispatcher for Inline {
    async fn dispatch(
        &self,
        key: &ChannelKey,
        message: &StoredMessage,
    ) -> Result<(), DispatchError> {
        deliver(&self.0, key, message)
            .await
            .map(|report| {
                tracing::debug!(channel = %key, seq = message.seq, ?report, "delivered");
            })
            .map_err(|e| DispatchError(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cover_everyone_once() {
        let ids: Vec<ConnectionId> = (0..2500).map(|i| ConnectionId(i.to_string())).collect();
        let b = batches(ids.clone(), 1000);
        assert_eq!(
            b.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![1000, 1000, 500]
        );
        assert_eq!(b.concat(), ids);
        assert!(batches(Vec::new(), 1000).is_empty());
    }
}
