//! The fan-out Lambda: delivers one committed message to its channel's subscribers through the
//! management API, splitting large channels across invocations.

use std::sync::Arc;
use std::time::Instant;

use echo_aws::dispatcher::{FanoutEvent, LambdaFanout};
use echo_aws::gateway::ManagementApi;
use echo_aws::lambda::Resources;
use echo_aws::metrics::Emf;
use echo_core::channel::ChannelKey;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};

struct Fanout {
    deps: fanout::Deps,
    next: LambdaFanout,
    batch_size: usize,
}

async fn handle(f: &Fanout, event: FanoutEvent) -> Result<fanout::Report, Diagnostic> {
    let started = Instant::now();
    let key = ChannelKey::decode(&event.channel).ok_or_else(|| Diagnostic {
        error_type: "BadFanoutEvent".into(),
        error_message: format!("{:?} is not an app/channel key", event.channel),
    })?;
    let store_error = |e: echo_core::store::StoreError| Diagnostic {
        error_type: "StoreError".into(),
        error_message: e.to_string(),
    };
    let mine = match event.connections {
        Some(ids) => ids,
        None => {
            let subscribers = f
                .deps
                .connections
                .subscribers(&key)
                .await
                .map_err(store_error)?;
            let mut batches = fanout::batches(subscribers, f.batch_size).into_iter();
            let first = batches.next().unwrap_or_default();
            for batch in batches {
                let handoff = FanoutEvent {
                    channel: event.channel.clone(),
                    message: event.message.clone(),
                    connections: Some(batch),
                };
                // A failed hand-off fails this invocation, which Lambda retries; subscribers
                // de-duplicate the repeats by seq.
                f.next.send(&handoff).await.map_err(|e| Diagnostic {
                    error_type: "FanoutHandoff".into(),
                    error_message: e.to_string(),
                })?;
            }
            first
        }
    };
    let report = fanout::deliver_to(&f.deps, &key, &event.message, &mine)
        .await
        .map_err(store_error)?;
    Emf { service: "fanout" }.emit(
        &[
            ("MessagesDelivered", "Count", report.delivered as f64),
            (
                "FanoutDuration",
                "Milliseconds",
                started.elapsed().as_secs_f64() * 1000.0,
            ),
            ("FanoutFailures", "Count", report.failed as f64),
            (
                "StaleConnectionsRemoved",
                "Count",
                report.stale_removed as f64,
            ),
        ],
        &[
            ("Channel", serde_json::json!(event.channel)),
            ("Seq", serde_json::json!(event.message.seq)),
        ],
    );
    tracing::info!(
        channel = %key,
        seq = event.message.seq,
        subscribers = report.subscribers,
        delivered = report.delivered,
        stale_removed = report.stale_removed,
        failed = report.failed,
        duration_ms = started.elapsed().as_millis() as u64,
        "fan-out done"
    );
    Ok(report)
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let r = Resources::load(&["ECHO_MANAGEMENT_ENDPOINT", "ECHO_FANOUT_FUNCTION"]).await?;
    let f = Fanout {
        deps: fanout::Deps {
            connections: r.store.clone(),
            gateway: Arc::new(ManagementApi::new(
                r.config.management_client(&r.sdk),
                r.config.fanout_concurrency,
            )),
        },
        next: LambdaFanout::new(r.lambda(), r.config.fanout_function.clone()),
        batch_size: r.config.fanout_batch_size,
    };
    let f = &f;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<FanoutEvent>| async move { handle(f, event.payload).await },
    ))
    .await
}
