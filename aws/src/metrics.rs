//! CloudWatch Embedded Metric Format: metrics written as JSON log lines, which CloudWatch Logs
//! turns into metrics in the `Echo` namespace with the dimension `Service` (what the dashboard
//! and alarms in `template.yaml` read), and for per-app series `Service` and `App`.

use echo_core::metrics::{Metric, Metrics};
use serde_json::{Value, json};

pub const NAMESPACE: &str = "Echo";

/// Writes EMF lines to standard output, where Lambda sends them to CloudWatch Logs.
#[derive(Debug, Clone, Copy)]
pub struct Emf {
    /// The `Service` dimension: `message-handler`, `fanout`, `connect-handler`.
    pub service: &'static str,
}

impl Emf {
    /// One EMF document with `values` as (name, unit, value), and extra properties (logged, not
    /// dimensions).
    pub fn document(
        &self,
        now_ms: u64,
        values: &[(&str, &str, f64)],
        properties: &[(&str, Value)],
    ) -> Value {
        let mut doc = json!({
            "_aws": {
                "Timestamp": now_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [["Service"]],
                    "Metrics": values.iter().map(|(name, unit, _)| json!({"Name": name, "Unit": unit})).collect::<Vec<_>>(),
                }],
            },
            "Service": self.service,
        });
        for (name, _, value) in values {
            doc[*name] = json!(value);
        }
        for (name, value) in properties {
            doc[*name] = value.clone();
        }
        doc
    }

    pub fn emit(&self, values: &[(&str, &str, f64)], properties: &[(&str, Value)]) {
        println!("{}", self.document(now_ms(), values, properties));
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Metrics for Emf {
    fn record(&self, metric: Metric<'_>) {
        match metric {
            Metric::MessagePublished => self.emit(&[("MessagesPublished", "Count", 1.0)], &[]),
            Metric::MessageDropped => self.emit(&[("MessagesDropped", "Count", 1.0)], &[]),
            Metric::MessageDuplicate => self.emit(&[("MessagesDuplicate", "Count", 1.0)], &[]),
            Metric::FunctionRun {
                function,
                elapsed_ms,
                ok,
            } => self.emit(
                &[
                    ("FunctionLatency", "Milliseconds", elapsed_ms),
                    ("FunctionErrors", "Count", if ok { 0.0 } else { 1.0 }),
                ],
                &[("Function", json!(function))],
            ),
            Metric::FunctionPublishRefused { function } => self.emit(
                &[("FunctionPublishesRefused", "Count", 1.0)],
                &[("Function", function.into())],
            ),
            Metric::RateLimited => self.emit(&[("RateLimited", "Count", 1.0)], &[]),
            Metric::AfterPublish { function, ok } => self.emit(
                &[
                    ("AfterPublishInvocations", "Count", 1.0),
                    ("AfterPublishErrors", "Count", if ok { 0.0 } else { 1.0 }),
                ],
                &[("Function", json!(function))],
            ),
            Metric::Fanout {
                channel,
                seq,
                delivered,
                failed,
                stale_removed,
                elapsed_ms,
            } => self.emit(
                &[
                    ("MessagesDelivered", "Count", delivered as f64),
                    ("FanoutDuration", "Milliseconds", elapsed_ms),
                    ("FanoutFailures", "Count", failed as f64),
                    ("StaleConnectionsRemoved", "Count", stale_removed as f64),
                ],
                &[("Channel", json!(channel)), ("Seq", json!(seq))],
            ),
            // API Gateway refuses upgrades itself on AWS, and counts them in its own metrics.
            Metric::ConnectionRefused { .. } => {}
            Metric::AppConnect { app, accepted } => {
                let mut doc = self.document(
                    now_ms(),
                    &[
                        ("AppConnects", "Count", if accepted { 1.0 } else { 0.0 }),
                        (
                            "AppConnectsRefused",
                            "Count",
                            if accepted { 0.0 } else { 1.0 },
                        ),
                    ],
                    &[],
                );
                // Per app as well as per service: the App dimension.
                doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] =
                    json!([["Service"], ["Service", "App"]]);
                doc["App"] = json!(app);
                println!("{doc}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_follow_the_embedded_metric_format() {
        let doc = Emf { service: "fanout" }.document(
            1_700_000_000_000,
            &[
                ("MessagesDelivered", "Count", 3.0),
                ("FanoutDuration", "Milliseconds", 12.5),
            ],
            &[("Channel", json!("app/room"))],
        );
        assert_eq!(
            doc,
            json!({
                "_aws": {"Timestamp": 1_700_000_000_000u64, "CloudWatchMetrics": [{
                    "Namespace": "Echo",
                    "Dimensions": [["Service"]],
                    "Metrics": [{"Name": "MessagesDelivered", "Unit": "Count"}, {"Name": "FanoutDuration", "Unit": "Milliseconds"}],
                }]},
                "Service": "fanout",
                "MessagesDelivered": 3.0,
                "FanoutDuration": 12.5,
                "Channel": "app/room",
            })
        );
    }
}
