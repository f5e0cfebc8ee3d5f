//! Fan-out: delivering a committed message to every subscriber of its channel.
//!
//! The message frame is encoded once and the same bytes go to every subscriber (a message on a
//! presence channel goes out as the `join` or `leave` it records). A subscriber the gateway
//! reports gone (HTTP 410, or unknown to the local edge) has its records deleted and its
//! presence ended: that is how connections whose `$disconnect` never arrived are cleaned up.
//!
//! Locally, [`Inline`] delivers in-process as the [`Dispatcher`]; on AWS the same [`deliver_to`] runs
//! in the fan-out Lambda.

mod direct;

use std::sync::Arc;

use async_trait::async_trait;
use echo_core::channel::ChannelKey;
use echo_core::gateway::{Frame, Gateway, GatewayError};
use echo_core::ids::ConnectionId;
use echo_core::message::StoredMessage;
use echo_core::metrics::{Metric, Metrics};
use echo_core::presence::Departures;
use echo_core::protocol::ServerFrame;
use echo_core::publish::{DispatchError, Dispatcher};
use echo_core::store::{ConnectionRecords, Subscriptions};
use serde::Serialize;

pub use direct::Direct;

/// What fan-out needs.
pub struct Deps {
    /// A channel's subscribers.
    pub subscriptions: Arc<dyn Subscriptions>,
    /// Connection records: those found gone are removed.
    pub connections: Arc<dyn ConnectionRecords>,
    pub gateway: Arc<dyn Gateway>,
    /// Each batch's delivery is recorded here ([`Metric::Fanout`]).
    pub metrics: Arc<dyn Metrics>,
    /// Told of each connection found gone and removed.
    pub departures: Arc<dyn Departures>,
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

/// Starting another fan-out invocation for a batch of subscribers (on AWS, an asynchronous
/// invoke of the fan-out Lambda itself).
#[async_trait]
pub trait Handoff: Send + Sync {
    async fn hand_off(
        &self,
        key: &ChannelKey,
        message: &StoredMessage,
        connections: Vec<ConnectionId>,
    ) -> Result<(), HandoffError>;
}

#[derive(Debug, thiserror::Error)]
#[error("could not hand a batch to another invocation: {0}")]
pub struct HandoffError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

impl HandoffError {
    pub fn new(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(source.into())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    #[error(transparent)]
    Store(#[from] echo_core::store::StoreError),
    #[error(transparent)]
    Handoff(#[from] HandoffError),
}

/// One fan-out invocation. Given `connections` (a batch handed over), it delivers to them.
/// Otherwise it reads the channel's subscribers, hands every batch but the first to other
/// invocations, all at once, and delivers the first itself: delivery time stays about one
/// batch's worth as a channel grows.
///
/// A failed hand-off fails the invocation after its own batch was delivered; a retried
/// invocation delivers again, which subscribers de-duplicate by seq.
pub async fn fan_out(
    deps: &Deps,
    handoff: &dyn Handoff,
    key: &ChannelKey,
    message: &StoredMessage,
    connections: Option<Vec<ConnectionId>>,
    batch_size: usize,
) -> Result<Report, FanoutError> {
    let mine = match connections {
        Some(ids) => ids,
        None => {
            let mut batches = batches(deps.subscriptions.subscribers(key).await?, batch_size);
            let first = if batches.is_empty() {
                Vec::new()
            } else {
                batches.swap_remove(0)
            };
            let handoffs = futures_util::future::join_all(
                batches
                    .into_iter()
                    .map(|batch| handoff.hand_off(key, message, batch)),
            );
            let (handed, report) =
                futures_util::future::join(handoffs, deliver_to(deps, key, message, &first)).await;
            let report = report?;
            if let Some(Err(e)) = handed.into_iter().find(Result::is_err) {
                return Err(e.into());
            }
            return Ok(report);
        }
    };
    Ok(deliver_to(deps, key, message, &mine).await?)
}

/// Delivers `message` to `subscribers` of `key`.
pub async fn deliver_to(
    deps: &Deps,
    key: &ChannelKey,
    message: &StoredMessage,
    subscribers: &[ConnectionId],
) -> Result<Report, echo_core::store::StoreError> {
    deliver_batch_to(deps, key, std::slice::from_ref(message), subscribers).await
}

/// Delivers consecutive `messages` of `key`, in order, to its subscribers: a connection gets
/// them together.
pub async fn deliver_batch(
    deps: &Deps,
    key: &ChannelKey,
    messages: &[StoredMessage],
) -> Result<Report, echo_core::store::StoreError> {
    let subscribers = deps.subscriptions.subscribers(key).await?;
    deliver_batch_to(deps, key, messages, &subscribers).await
}

pub(crate) async fn deliver_batch_to(
    deps: &Deps,
    key: &ChannelKey,
    messages: &[StoredMessage],
    subscribers: &[ConnectionId],
) -> Result<Report, echo_core::store::StoreError> {
    if subscribers.is_empty() || messages.is_empty() {
        return Ok(Report::default());
    }
    let started = std::time::Instant::now();
    let frames: Vec<Frame> = messages
        .iter()
        .map(|m| Frame::text(ServerFrame::delivery(m.clone()).to_json()))
        .collect();
    let failures = deps.gateway.post_many_frames(subscribers, &frames).await;
    let mut report = Report {
        subscribers: subscribers.len(),
        delivered: subscribers.len() - failures.len(),
        ..Report::default()
    };
    let seq = messages[0].seq;
    for (id, error) in failures {
        match error {
            GatewayError::Gone => {
                // Removing twice is harmless: removal is idempotent, and returns the
                // connection's subscriptions only once.
                match deps.connections.remove_connection(&id).await {
                    Ok(removed) => {
                        report.stale_removed += 1;
                        if let Some((record, channels)) = removed {
                            let now_ms =
                                echo_core::clock::Clock::now_ms(&echo_core::clock::SystemClock);
                            deps.departures.departed(&record, &channels, now_ms).await;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(connection_id = %id, error = %e, "could not remove stale connection");
                    }
                }
            }
            other => {
                report.failed += 1;
                tracing::warn!(connection_id = %id, channel = %key, seq, error = %other, "delivery failed");
            }
        }
    }
    deps.metrics.record(Metric::Fanout {
        channel: key.channel.as_str(),
        seq,
        delivered: report.delivered * messages.len(),
        failed: report.failed,
        stale_removed: report.stale_removed,
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
    });
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
        self.dispatch_batch(key, std::slice::from_ref(message))
            .await
    }

    async fn dispatch_batch(
        &self,
        key: &ChannelKey,
        messages: &[StoredMessage],
    ) -> Result<(), DispatchError> {
        deliver_batch(&self.0, key, messages)
            .await
            .map(|report| {
                tracing::debug!(channel = %key, first_seq = messages.first().map(|m| m.seq), messages = messages.len(), ?report, "delivered");
            })
            .map_err(|e| DispatchError(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use echo_core::store::ConnectionRecords;
    use echo_core::store::Subscriptions;

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

    use std::sync::Mutex;

    use echo_core::auth::Claims;
    use echo_core::channel::{AppId, ChannelName};
    use echo_core::gateway::{ConnectionInfo, Frame};
    use echo_core::store::ConnectionRecord;
    use echo_core::store::memory::MemoryStore;

    /// Records posts (and their seqs); `gone` ids answer 410.
    #[derive(Default)]
    struct Recorder {
        posted: Mutex<Vec<String>>,
        seqs: Mutex<Vec<(String, u64)>>,
        gone: Vec<String>,
    }

    #[async_trait]
    impl Gateway for Recorder {
        async fn post(&self, id: &ConnectionId, frame: &Frame) -> Result<(), GatewayError> {
            if self.gone.contains(&id.0) {
                return Err(GatewayError::Gone);
            }
            self.posted.lock().unwrap().push(id.0.clone());
            let v: serde_json::Value = serde_json::from_slice(frame.bytes()).unwrap();
            let seq = v["seq"].as_u64().unwrap();
            self.seqs.lock().unwrap().push((id.0.clone(), seq));
            Ok(())
        }
        async fn close(&self, _: &ConnectionId) -> Result<(), GatewayError> {
            Ok(())
        }
        async fn info(&self, _: &ConnectionId) -> Result<ConnectionInfo, GatewayError> {
            Err(GatewayError::Gone)
        }
    }

    /// A store with connections `c0`.. subscribed to channel `c` of app `a`.
    async fn subscribed(n: usize) -> (Arc<MemoryStore>, ChannelKey) {
        let app = AppId::new("a").unwrap();
        let key = ChannelKey::new(app.clone(), ChannelName::new("c").unwrap());
        let store = Arc::new(MemoryStore::new());
        for i in 0..n {
            let id = ConnectionId(format!("c{i}"));
            store
                .put_connection(ConnectionRecord {
                    id: id.clone(),
                    claims: Claims::new(app.clone(), "u", 4_000_000_000),
                    connected_at: 0,
                    expires_at: 4_000_000_000,
                })
                .await
                .unwrap();
            store.subscribe(&id, &key, 10).await.unwrap();
        }
        (store, key)
    }

    #[tokio::test]
    async fn a_batch_reaches_every_subscriber_in_seq_order_and_a_gone_one_is_removed_once() {
        let (store, key) = subscribed(3).await;
        let gateway = Arc::new(Recorder {
            gone: vec!["c1".into()],
            ..Recorder::default()
        });
        let inline = Inline(Deps {
            subscriptions: store.clone(),
            connections: store.clone(),
            gateway: gateway.clone(),
            metrics: Arc::new(echo_core::metrics::NoMetrics),
            departures: Arc::new(echo_core::presence::NoDepartures),
        });
        let messages: Vec<StoredMessage> = (1..=3).map(stored).collect();
        inline.dispatch_batch(&key, &messages).await.unwrap();
        let seqs = gateway.seqs.lock().unwrap().clone();
        for id in ["c0", "c2"] {
            let got: Vec<u64> = seqs
                .iter()
                .filter(|(c, _)| c == id)
                .map(|(_, s)| *s)
                .collect();
            assert_eq!(got, [1, 2, 3], "{id}");
        }
        assert!(seqs.iter().all(|(c, _)| c != "c1"));
        let mut left = store.subscribers(&key).await.unwrap();
        left.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(left, [ConnectionId("c0".into()), ConnectionId("c2".into())]);
    }

    #[derive(Default)]
    struct Batches(Mutex<Vec<Vec<String>>>);

    #[async_trait]
    impl Handoff for Batches {
        async fn hand_off(
            &self,
            _: &ChannelKey,
            _: &StoredMessage,
            connections: Vec<ConnectionId>,
        ) -> Result<(), HandoffError> {
            self.0
                .lock()
                .unwrap()
                .push(connections.into_iter().map(|c| c.0).collect());
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_large_channel_is_handed_off_in_batches_and_stale_connections_removed() {
        let (store, key) = subscribed(5).await;
        let gateway = Arc::new(Recorder::default());
        let deps = Deps {
            subscriptions: store.clone(),
            connections: store.clone(),
            gateway: gateway.clone(),
            metrics: Arc::new(echo_core::metrics::NoMetrics),
            departures: Arc::new(echo_core::presence::NoDepartures),
        };
        let message = StoredMessage {
            channel: ChannelName::new("c").unwrap(),
            seq: 1,
            id: "m".into(),
            data: serde_json::json!(1),
            from: "u".into(),
            ts: 0,
        };
        let handoff = Batches::default();
        let report = fan_out(&deps, &handoff, &key, &message, None, 2)
            .await
            .unwrap();
        assert_eq!(report.delivered, 2, "this invocation delivers one batch");
        let mut everyone: Vec<String> = gateway.posted.lock().unwrap().clone();
        let handed = handoff.0.lock().unwrap().clone();
        assert_eq!(handed.len(), 2);
        everyone.extend(handed.concat());
        everyone.sort();
        assert_eq!(everyone, ["c0", "c1", "c2", "c3", "c4"]);

        // A handed-over batch is delivered as given; a gone subscriber is removed.
        let gateway = Arc::new(Recorder {
            gone: vec!["c3".into()],
            ..Recorder::default()
        });
        let deps = Deps {
            subscriptions: store.clone(),
            connections: store.clone(),
            gateway: gateway.clone(),
            metrics: Arc::new(echo_core::metrics::NoMetrics),
            departures: Arc::new(echo_core::presence::NoDepartures),
        };
        let batch = vec![ConnectionId("c3".into()), ConnectionId("c4".into())];
        let report = fan_out(&deps, &handoff, &key, &message, Some(batch), 2)
            .await
            .unwrap();
        assert_eq!((report.delivered, report.stale_removed), (1, 1));
        assert_eq!(store.subscribers(&key).await.unwrap().len(), 4);
    }

    /// Counts what is handed to the fan-out Lambda, by seq.
    #[derive(Default)]
    struct HandedOver(Mutex<Vec<u64>>);

    #[async_trait]
    impl Dispatcher for HandedOver {
        async fn dispatch(&self, _: &ChannelKey, m: &StoredMessage) -> Result<(), DispatchError> {
            self.0.lock().unwrap().push(m.seq);
            Ok(())
        }
    }

    fn stored(seq: u64) -> StoredMessage {
        StoredMessage {
            channel: ChannelName::new("c").unwrap(),
            seq,
            id: format!("m{seq}"),
            data: serde_json::json!(seq),
            from: "u".into(),
            ts: 0,
        }
    }

    #[tokio::test]
    async fn a_small_channel_is_delivered_after_the_answer_and_a_large_one_handed_over() {
        let (store, key) = subscribed(3).await;
        let direct = |max: usize, budget: std::time::Duration| {
            let gateway = Arc::new(Recorder::default());
            let handed = Arc::new(HandedOver::default());
            let d = Direct::new(
                Deps {
                    subscriptions: store.clone(),
                    connections: store.clone(),
                    gateway: gateway.clone(),
                    metrics: Arc::new(echo_core::metrics::NoMetrics),
                    departures: Arc::new(echo_core::presence::NoDepartures),
                },
                handed.clone(),
                max,
                budget,
            );
            (d, gateway, handed)
        };
        let second = std::time::Duration::from_secs(1);

        // Three subscribers, up to five delivered directly: nothing is posted until the handler
        // has answered, then each subscriber gets both messages in order.
        let (d, gateway, handed) = direct(5, second);
        d.dispatch(&key, &stored(1)).await.unwrap();
        d.dispatch(&key, &stored(2)).await.unwrap();
        assert!(d.has_pending());
        assert!(gateway.posted.lock().unwrap().is_empty());
        let report = d.deliver_pending().await;
        assert_eq!((report.subscribers, report.delivered), (3, 3));
        assert!(!d.has_pending());
        let seqs = gateway.seqs.lock().unwrap().clone();
        for id in ["c0", "c1", "c2"] {
            let got: Vec<u64> = seqs
                .iter()
                .filter(|(c, _)| c == id)
                .map(|(_, s)| *s)
                .collect();
            assert_eq!(got, [1, 2], "{id}");
        }
        assert!(handed.0.lock().unwrap().is_empty());

        // Up to two: the channel of three goes to the fan-out Lambda at once.
        let (d, gateway, handed) = direct(2, second);
        d.dispatch(&key, &stored(3)).await.unwrap();
        assert!(!d.has_pending());
        assert_eq!(*handed.0.lock().unwrap(), [3]);
        assert!(gateway.posted.lock().unwrap().is_empty());

        // A spent budget hands what is pending over instead.
        let (d, gateway, handed) = direct(5, std::time::Duration::ZERO);
        d.dispatch(&key, &stored(4)).await.unwrap();
        assert_eq!(d.deliver_pending().await.delivered, 0);
        assert_eq!(*handed.0.lock().unwrap(), [4]);
        assert!(gateway.posted.lock().unwrap().is_empty());
    }
}
