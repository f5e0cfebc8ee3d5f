//! Metrics as a port: the handlers say what happened; on AWS it becomes CloudWatch Embedded
//! Metric Format, locally it is dropped.

/// One observation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric<'a> {
    /// A message was committed to a channel.
    MessagePublished,
    /// A function dropped a message.
    MessageDropped,
    /// A function ran; `ok` is false when it failed or timed out.
    FunctionRun {
        function: &'a str,
        elapsed_ms: f64,
        ok: bool,
    },
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
