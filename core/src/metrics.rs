//! Metrics as a port: the handlers, fan-out and the edge say what happened; on AWS it becomes
//! CloudWatch Embedded Metric Format, on the local edge Prometheus metrics (`GET /metrics` on the
//! management port).

/// One observation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric<'a> {
    /// A message was committed to a channel.
    MessagePublished,
    /// A function dropped a message.
    MessageDropped,
    /// A publish repeated an id committed within the dedup window and was not committed again.
    MessageDuplicate,
    /// A function ran; `ok` is false when it failed or timed out.
    FunctionRun {
        function: &'a str,
        elapsed_ms: f64,
        ok: bool,
    },
    /// A message a function published elsewhere was refused (too many hops, a reserved channel,
    /// over the budget) or failed.
    FunctionPublishRefused { function: &'a str },
    /// A frame (publish, subscribe or unsubscribe) was refused with `rate_limited`.
    RateLimited,
    /// Fan-out posted a batch of a channel's messages to its subscribers.
    Fanout {
        channel: &'a str,
        /// The first message's seq.
        seq: u64,
        /// Messages delivered: subscribers reached times messages in the batch.
        delivered: usize,
        /// Posts that failed for another reason than the connection being gone.
        failed: usize,
        /// Connections found gone, whose records were removed.
        stale_removed: usize,
        elapsed_ms: f64,
    },
    /// An after-publish function was handed a message; `ok` is false when that failed (locally:
    /// the function failed; on AWS: Lambda did not take the asynchronous invocation).
    AfterPublish { function: &'a str, ok: bool },
    /// A WebSocket upgrade was refused before `$connect` completed: `unauthorized` (a bad
    /// token) or `limit_exceeded` (the edge holds its maximum of connections).
    ConnectionRefused { reason: &'a str },
    /// A connection of `app` was accepted, or refused because the app holds its
    /// `maxConnections`: the per-app series.
    AppConnect { app: &'a str, accepted: bool },
}

/// Where observations go. Recording must not fail or block.
pub trait Metrics: Send + Sync + 'static {
    fn record(&self, metric: Metric<'_>);
}

/// Discards everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoMetrics;

impl Metrics for NoMetrics {
    fn record(&self, _: Metric<'_>) {}
}
