//! The fan-out Lambda: delivers one committed message to its channel's subscribers through the
//! management API, splitting large channels across invocations.

use std::sync::Arc;
use std::time::Instant;

use echo_aws::associations::CachedAssociations;
use echo_aws::dispatcher::{FanoutEvent, LambdaFanout};
use echo_aws::invoker::LambdaInvoker;
use echo_aws::lambda::Resources;
use echo_aws::metrics::Emf;
use echo_core::after_presence::AfterPresence;
use echo_core::channel::ChannelKey;
use echo_core::ids::ConnectionId;
use echo_core::message::StoredMessage;
use echo_core::presence::Presence;
use echo_core::publish::Publisher;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};

struct Fanout {
    deps: fanout::Deps,
    next: LambdaHandoff,
    batch_size: usize,
}

/// Hands a batch to another invocation of this function (an asynchronous invoke).
struct LambdaHandoff(LambdaFanout);

#[async_trait::async_trait]
impl fanout::Handoff for LambdaHandoff {
    async fn hand_off(
        &self,
        key: &ChannelKey,
        message: &StoredMessage,
        connections: Vec<ConnectionId>,
    ) -> Result<(), fanout::HandoffError> {
        let event = FanoutEvent {
            channel: key.encode(),
            message: message.clone(),
            connections: Some(connections),
        };
        self.0.send(&event).await.map_err(fanout::HandoffError::new)
    }
}

async fn handle(f: &Fanout, event: FanoutEvent) -> Result<fanout::Report, Diagnostic> {
    let started = Instant::now();
    let key = ChannelKey::decode(&event.channel).ok_or_else(|| Diagnostic {
        error_type: "BadFanoutEvent".into(),
        error_message: format!("{:?} is not an app/channel key", event.channel),
    })?;
    // A failed hand-off fails this invocation, which Lambda retries; subscribers de-duplicate
    // the repeats by seq.
    let report = fanout::fan_out(
        &f.deps,
        &f.next,
        &key,
        &event.message,
        event.connections.clone(),
        f.batch_size,
    )
    .await
    .map_err(|e| Diagnostic {
        error_type: match e {
            fanout::FanoutError::Store(_) => "StoreError",
            fanout::FanoutError::Handoff(_) => "FanoutHandoff",
        }
        .into(),
        error_message: e.to_string(),
    })?;
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
    // A connection found gone leaves its channels: the leaves are committed here and fanned out
    // by further invocations of this function.
    let fanout = LambdaFanout::new(r.lambda(), r.config.fanout_function.clone());
    let publisher = Arc::new(Publisher::new(r.store.clone(), Arc::new(fanout)));
    let f = Fanout {
        deps: fanout::Deps {
            subscriptions: r.store.clone(),
            connections: r.store.clone(),
            gateway: Arc::new(r.config.management_api(&r.sdk)),
            metrics: Arc::new(Emf { service: "fanout" }),
            departures: Arc::new(
                Presence::new(r.store.clone(), publisher).with_after(Arc::new(AfterPresence {
                    associations: Arc::new(CachedAssociations::new(
                        r.store.clone(),
                        r.config.associations_cache,
                        |_| true,
                    )),
                    invoker: Arc::new(LambdaInvoker::new(
                        r.lambda(),
                        r.config.function_prefix.clone(),
                    )),
                    metrics: Arc::new(Emf { service: "fanout" }),
                    background: false,
                })),
            ),
        },
        next: LambdaHandoff(LambdaFanout::new(
            r.lambda(),
            r.config.fanout_function.clone(),
        )),
        batch_size: r.config.fanout_batch_size,
    };
    let f = &f;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<FanoutEvent>| async move { handle(f, event.payload).await },
    ))
    .await
}
