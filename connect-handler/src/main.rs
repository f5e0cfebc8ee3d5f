//! The `$connect`/`$disconnect` Lambda, which also runs the sweep schedule's event.

use std::sync::Arc;

use echo_aws::associations::CachedAssociations;
use echo_aws::dispatcher::LambdaFanout;
use echo_aws::invoker::LambdaInvoker;
use echo_aws::lambda::Resources;
use echo_aws::metrics::Emf;
use echo_aws::relay::LambdaRelay;
use echo_core::after_presence::AfterPresence;
use echo_core::clock::SystemClock;
use echo_core::limits::Limits;
use echo_core::presence::Presence;
use echo_core::publish::Publisher;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let r = Resources::load(&[
        "ECHO_KEYS_SECRET",
        "ECHO_FANOUT_FUNCTION",
        "ECHO_RELAY_FUNCTION",
    ])
    .await?;
    let fanout = LambdaFanout::new(r.lambda(), r.config.fanout_function.clone());
    let publisher = Arc::new(Publisher::new(r.store.clone(), Arc::new(fanout)));
    let associations = Arc::new(CachedAssociations::new(
        r.store.clone(),
        r.config.associations_cache,
        |_| true,
    ));
    let invoker = Arc::new(LambdaInvoker::new(
        r.lambda(),
        r.config.function_prefix.clone(),
    ));
    // The leaves of connections that disconnect, handed to afterPresence before answering.
    let metrics = Arc::new(Emf {
        service: "connect-handler",
    });
    let after_presence = Arc::new(AfterPresence {
        associations: associations.clone(),
        invoker: invoker.clone(),
        metrics: metrics.clone(),
        background: false,
    });
    let deps = connect_handler::Deps {
        verifier: r.verifier()?,
        associations,
        invoker,
        relay: Arc::new(LambdaRelay::new(
            r.lambda(),
            r.config.relay_function.clone(),
        )),
        metrics,
        connections: r.store.clone(),
        refusals: r.store.clone(),
        presence: Arc::new(
            Presence::new(r.store.clone(), publisher.clone()).with_after(after_presence),
        ),
        publisher,
        clock: Arc::new(SystemClock),
        limits: Limits::default(),
    };
    let deps = &deps;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<connect_handler::Invocation>| async move {
            connect_handler::invoked(deps, &event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}
