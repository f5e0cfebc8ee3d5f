//! The local edge's metrics, in Prometheus' text format (`GET /metrics` on the management port):
//! the same [`Metric`] observations the Lambdas write as CloudWatch Embedded Metric Format on AWS,
//! kept by `metrics-exporter-prometheus`'s recorder.
//!
//! | Metric | Kind | From |
//! | --- | --- | --- |
//! | `echo_messages_published_total` | counter | a message committed |
//! | `echo_messages_dropped_total` | counter | a function dropped a message |
//! | `echo_messages_duplicate_total` | counter | a publish repeated an id within the dedup window |
//! | `echo_messages_delivered_total` | counter | messages posted to subscribers |
//! | `echo_fanout_failures_total`, `echo_stale_connections_removed_total` | counter | fan-out |
//! | `echo_fanout_duration_seconds` | histogram | one batch's posts |
//! | `echo_function_duration_seconds{function}` | histogram | each function run |
//! | `echo_function_errors_total{function}` | counter | a function failed or timed out |
//! | `echo_function_publishes_refused_total{function}` | counter | a message a function published elsewhere was refused (a 4th hop, a reserved channel) or failed |
//! | `echo_rate_limited_total` | counter | a frame refused with `rate_limited` |
//! | `echo_after_publish_total{function,outcome}` | counter | a message handed to an after-publish function (`ok`, `failed`) |
//! | `echo_connections_refused_total{reason}` | counter | an upgrade refused (401, 503) |
//! | `echo_app_connects_total{app,outcome}` | counter | a connect of an app, `accepted` or `refused` (its `maxConnections`) |
//! | `echo_connections` | gauge | client connections held now |

use std::time::Duration;

use echo_core::metrics::{Metric, Metrics};
use metrics::{Counter, Histogram, Key, Label, Level, Metadata, Recorder};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

/// Histogram buckets in seconds: 1 ms to 25 s, the longest a channel's functions may take.
const BUCKETS: [f64; 13] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 10.0, 25.0,
];

/// How often recorded histogram samples are folded into their buckets when nobody scrapes, so
/// that they do not pile up in memory.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, None);

/// Every series' `# HELP` text (the table above, as Prometheus shows it).
const COUNTERS: [(&str, &str); 12] = [
    (
        "echo_messages_published_total",
        "Messages committed to a channel.",
    ),
    (
        "echo_messages_dropped_total",
        "Messages a function dropped before they were committed.",
    ),
    (
        "echo_messages_duplicate_total",
        "Publishes that repeated an id committed within the dedup window, not committed again.",
    ),
    (
        "echo_messages_delivered_total",
        "Messages posted to subscribers by fan-out.",
    ),
    (
        "echo_fanout_failures_total",
        "Posts to subscribers that failed for a reason other than a gone connection.",
    ),
    (
        "echo_stale_connections_removed_total",
        "Connections fan-out found gone and removed.",
    ),
    (
        "echo_function_errors_total",
        "Function runs that failed or timed out, by function.",
    ),
    (
        "echo_function_publishes_refused_total",
        "Messages functions published elsewhere that were refused or failed, by function.",
    ),
    (
        "echo_rate_limited_total",
        "Frames refused with rate_limited.",
    ),
    (
        "echo_after_publish_total",
        "Messages handed to after-publish functions, by function and outcome.",
    ),
    (
        "echo_connections_refused_total",
        "WebSocket upgrades refused, by reason.",
    ),
    (
        "echo_app_connects_total",
        "Connects that reached the connect handler, by app and outcome (refused: the app held its maxConnections).",
    ),
];
const HISTOGRAMS: [(&str, &str); 2] = [
    (
        "echo_function_duration_seconds",
        "How long each function run took, by function.",
    ),
    (
        "echo_fanout_duration_seconds",
        "How long one fan-out batch's posts took.",
    ),
];
const GAUGES: [(&str, &str); 1] = [("echo_connections", "Client connections held now.")];

/// The recorder, and the handles of the metrics recorded on every message.
pub struct Prometheus {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    published: Counter,
    dropped: Counter,
    duplicates: Counter,
    delivered: Counter,
    fanout_failures: Counter,
    stale_removed: Counter,
    fanout_seconds: Histogram,
    rate_limited: Counter,
}

impl Prometheus {
    pub fn new() -> Self {
        // Buckets for every `_seconds` histogram (a builder without them renders summaries).
        // Only empty buckets are refused, which these are not.
        let recorder = match PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &BUCKETS)
        {
            Ok(builder) => builder.build_recorder(),
            Err(_) => PrometheusBuilder::new().build_recorder(),
        };
        for (name, help) in COUNTERS {
            recorder.describe_counter(name.into(), None, help.into());
        }
        for (name, help) in HISTOGRAMS {
            recorder.describe_histogram(name.into(), Some(metrics::Unit::Seconds), help.into());
        }
        for (name, help) in GAUGES {
            recorder.describe_gauge(name.into(), None, help.into());
        }
        let handle = recorder.handle();
        let counter =
            |name: &'static str| recorder.register_counter(&Key::from_static_name(name), &METADATA);
        Self {
            published: counter("echo_messages_published_total"),
            dropped: counter("echo_messages_dropped_total"),
            duplicates: counter("echo_messages_duplicate_total"),
            delivered: counter("echo_messages_delivered_total"),
            fanout_failures: counter("echo_fanout_failures_total"),
            stale_removed: counter("echo_stale_connections_removed_total"),
            rate_limited: counter("echo_rate_limited_total"),
            fanout_seconds: recorder.register_histogram(
                &Key::from_static_name("echo_fanout_duration_seconds"),
                &METADATA,
            ),
            handle,
            recorder,
        }
    }

    /// The text exposition, with `connections` as the current number of client connections.
    pub fn render(&self, connections: usize) -> String {
        self.recorder
            .register_gauge(&Key::from_static_name("echo_connections"), &METADATA)
            .set(connections as f64);
        self.handle.render()
    }

    /// Folds recorded histogram samples into their buckets; see [`UPKEEP_EVERY`].
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    fn labelled(&self, name: &'static str, label: &'static str, value: &str) -> Key {
        Key::from_parts(name, vec![Label::new(label, value.to_owned())])
    }
}

impl Default for Prometheus {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics for Prometheus {
    fn record(&self, metric: Metric<'_>) {
        match metric {
            Metric::MessagePublished => self.published.increment(1),
            Metric::MessageDropped => self.dropped.increment(1),
            Metric::MessageDuplicate => self.duplicates.increment(1),
            Metric::FunctionRun {
                function,
                elapsed_ms,
                ok,
            } => {
                let key = self.labelled("echo_function_duration_seconds", "function", function);
                self.recorder
                    .register_histogram(&key, &METADATA)
                    .record(elapsed_ms / 1000.0);
                if !ok {
                    let key = self.labelled("echo_function_errors_total", "function", function);
                    self.recorder.register_counter(&key, &METADATA).increment(1);
                }
            }
            Metric::FunctionPublishRefused { function } => {
                let key = self.labelled(
                    "echo_function_publishes_refused_total",
                    "function",
                    function,
                );
                self.recorder.register_counter(&key, &METADATA).increment(1);
            }
            Metric::RateLimited => self.rate_limited.increment(1),
            Metric::Fanout {
                delivered,
                failed,
                stale_removed,
                elapsed_ms,
                ..
            } => {
                self.delivered.increment(delivered as u64);
                self.fanout_failures.increment(failed as u64);
                self.stale_removed.increment(stale_removed as u64);
                self.fanout_seconds.record(elapsed_ms / 1000.0);
            }
            Metric::AfterPublish { function, ok } => {
                let outcome = if ok { "ok" } else { "failed" };
                let key = Key::from_parts(
                    "echo_after_publish_total",
                    vec![
                        Label::new("function", function.to_owned()),
                        Label::new("outcome", outcome),
                    ],
                );
                self.recorder.register_counter(&key, &METADATA).increment(1);
            }
            Metric::ConnectionRefused { reason } => {
                let key = self.labelled("echo_connections_refused_total", "reason", reason);
                self.recorder.register_counter(&key, &METADATA).increment(1);
            }
            Metric::AppConnect { app, accepted } => {
                let outcome = if accepted { "accepted" } else { "refused" };
                let key = Key::from_parts(
                    "echo_app_connects_total",
                    vec![
                        Label::new("app", app.to_owned()),
                        Label::new("outcome", outcome),
                    ],
                );
                self.recorder.register_counter(&key, &METADATA).increment(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_render_as_prometheus_text() {
        let p = Prometheus::new();
        p.record(Metric::MessagePublished);
        p.record(Metric::FunctionRun {
            function: "angry",
            elapsed_ms: 3.0,
            ok: false,
        });
        p.record(Metric::ConnectionRefused {
            reason: "unauthorized",
        });
        let text = p.render(7);
        for line in [
            "echo_messages_published_total 1",
            "echo_function_errors_total{function=\"angry\"} 1",
            "echo_function_duration_seconds_bucket{function=\"angry\",le=\"0.005\"} 1",
            "echo_function_duration_seconds_count{function=\"angry\"} 1",
            "echo_connections_refused_total{reason=\"unauthorized\"} 1",
            "echo_connections 7",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }
}
