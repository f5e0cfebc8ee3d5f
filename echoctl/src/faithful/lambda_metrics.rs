//! What the Lambdas observed, on the edge's `GET /metrics` in `echoctl dev --faithful`. On AWS the
//! Lambdas write their metrics as CloudWatch Embedded Metric Format lines on standard output, and
//! CloudWatch Logs turns them into metrics; here echoctl reads the same lines from the Lambdas'
//! output and records each as the [`Metric`] the Lambda recorded, into the edge's registry.

use echo_core::metrics::{Metric, Metrics};
use serde_json::Value;

/// Records the metrics of `line` if it is an Embedded Metric Format document of Echo's
/// namespace; says whether it was.
pub fn record(line: &str, metrics: &dyn Metrics) -> bool {
    if !line.starts_with('{') || !line.contains("\"CloudWatchMetrics\"") {
        return false;
    }
    let Ok(doc) = serde_json::from_str::<Value>(line) else {
        return false;
    };
    let echo = doc["_aws"]["CloudWatchMetrics"]
        .as_array()
        .is_some_and(|d| d.iter().any(|d| d["Namespace"] == "Echo"));
    if !echo {
        return false;
    }
    let number = |name: &str| doc[name].as_f64();
    let text = |name: &str| doc[name].as_str().unwrap_or("");
    let count = |name: &str| number(name).unwrap_or(0.0).max(0.0) as usize;
    for _ in 0..count("MessagesPublished") {
        metrics.record(Metric::MessagePublished);
    }
    for _ in 0..count("MessagesDropped") {
        metrics.record(Metric::MessageDropped);
    }
    for _ in 0..count("MessagesDuplicate") {
        metrics.record(Metric::MessageDuplicate);
    }
    for _ in 0..count("RateLimited") {
        metrics.record(Metric::RateLimited);
    }
    if let Some(elapsed_ms) = number("FunctionLatency") {
        metrics.record(Metric::FunctionRun {
            function: text("Function"),
            elapsed_ms,
            ok: count("FunctionErrors") == 0,
        });
    }
    for _ in 0..count("FunctionPublishesRefused") {
        metrics.record(Metric::FunctionPublishRefused {
            function: text("Function"),
        });
    }
    if number("AfterPublishInvocations").is_some() {
        metrics.record(Metric::AfterPublish {
            function: text("Function"),
            ok: count("AfterPublishErrors") == 0,
        });
    }
    if let Some(elapsed_ms) = number("FanoutDuration") {
        metrics.record(Metric::Fanout {
            channel: text("Channel"),
            seq: doc["Seq"].as_u64().unwrap_or(0),
            delivered: count("MessagesDelivered"),
            failed: count("FanoutFailures"),
            stale_removed: count("StaleConnectionsRemoved"),
            elapsed_ms,
        });
    }
    if number("AppConnects").is_some() {
        metrics.record(Metric::AppConnect {
            app: text("App"),
            accepted: count("AppConnects") > 0,
        });
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Seen(Mutex<Vec<String>>);

    impl Metrics for Seen {
        fn record(&self, metric: Metric<'_>) {
            self.0.lock().unwrap().push(format!("{metric:?}"));
        }
    }

    /// Lines as the Lambdas write them (`echo_aws::metrics::Emf`).
    #[test]
    fn the_lambdas_lines_become_the_metrics_they_recorded() {
        let seen = Seen::default();
        let lines = [
            r#"{"MessagesPublished":1.0,"Service":"message-handler","_aws":{"CloudWatchMetrics":[{"Dimensions":[["Service"]],"Metrics":[{"Name":"MessagesPublished","Unit":"Count"}],"Namespace":"Echo"}],"Timestamp":1796630603903}}"#,
            r#"{"Function":"angry","FunctionErrors":1.0,"FunctionLatency":12.5,"Service":"message-handler","_aws":{"CloudWatchMetrics":[{"Dimensions":[["Service"]],"Metrics":[{"Name":"FunctionLatency","Unit":"Milliseconds"},{"Name":"FunctionErrors","Unit":"Count"}],"Namespace":"Echo"}],"Timestamp":1}}"#,
            r#"{"Channel":"chat-demo/angry","FanoutDuration":3.0,"FanoutFailures":0.0,"MessagesDelivered":5.0,"Seq":7,"Service":"fanout","StaleConnectionsRemoved":1.0,"_aws":{"CloudWatchMetrics":[{"Dimensions":[["Service"]],"Metrics":[{"Name":"MessagesDelivered","Unit":"Count"}],"Namespace":"Echo"}],"Timestamp":1}}"#,
            r#"{"App":"chat-demo","AppConnects":0.0,"AppConnectsRefused":1.0,"Service":"connect-handler","_aws":{"CloudWatchMetrics":[{"Dimensions":[["Service"],["Service","App"]],"Metrics":[{"Name":"AppConnects","Unit":"Count"}],"Namespace":"Echo"}],"Timestamp":1}}"#,
        ];
        for line in lines {
            assert!(record(line, &seen), "{line}");
        }
        for other in [
            r#"{"level":"ERROR","fields":{"message":"x"}}"#,
            "    Finished `dev` profile",
            r#"{"_aws":{"CloudWatchMetrics":[{"Namespace":"Other","Metrics":[]}]},"MessagesPublished":1}"#,
            r#"{"_aws":{"CloudWatchMetrics": not json"#,
        ] {
            assert!(!record(other, &seen), "{other}");
        }
        assert_eq!(
            *seen.0.lock().unwrap(),
            [
                "MessagePublished",
                r#"FunctionRun { function: "angry", elapsed_ms: 12.5, ok: false }"#,
                r#"Fanout { channel: "chat-demo/angry", seq: 7, delivered: 5, failed: 0, stale_removed: 1, elapsed_ms: 3.0 }"#,
                r#"AppConnect { app: "chat-demo", accepted: false }"#,
            ]
        );
    }
}
