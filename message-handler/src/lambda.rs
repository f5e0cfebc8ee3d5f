//! The handler's ports on AWS, as the Lambdas that run it (this crate's and the HTTP API's) set
//! them up once per container: DynamoDB, Lambda fan-out and functions, the management API, EMF.

use std::sync::Arc;

use echo_aws::associations::CachedAssociations;
use echo_aws::dispatcher::LambdaFanout;
use echo_aws::invoker::LambdaInvoker;
use echo_aws::lambda::Resources;
use echo_aws::metrics::Emf;
use echo_core::admission::InStoreAdmission;
use echo_core::after_presence::AfterPresence;
use echo_core::clock::SystemClock;
use echo_core::limits::Limits;
use echo_core::presence::Presence;
use echo_core::publish::Publisher;
use echo_core::rate::Allowance;

use crate::{AfterPublish, Deps};

/// The handler's dependencies over `r`, its metrics under the `Service` dimension `service`.
/// `allowance` counts each connection's frames in its DynamoDB item (WebSocket frames; `None`:
/// no limit); the handler never counts in process, since invocations share nothing, and API
/// Gateway may hand one connection's frames to concurrent invocations, so ordered publishes take
/// their turns through the store ([`InStoreAdmission`]).
pub fn deps(
    r: &Resources,
    service: &'static str,
    allowance: Option<Allowance>,
) -> Result<Deps, echo_core::auth::WeakSecret> {
    let (config, store, lambda) = (&r.config, r.store.clone(), r.lambda());
    let store_for_admission = store.clone();
    let fanout = LambdaFanout::new(lambda.clone(), config.fanout_function.clone());
    let publisher = Arc::new(Publisher::new(store.clone(), Arc::new(fanout)));
    let associations: Arc<CachedAssociations> = Arc::new(CachedAssociations::new(
        store.clone(),
        config.associations_cache,
        |_| true,
    ));
    let invoker = Arc::new(LambdaInvoker::new(lambda, config.function_prefix.clone()));
    let metrics = Arc::new(Emf { service });
    let after_presence = Arc::new(AfterPresence {
        associations: associations.clone(),
        invoker: invoker.clone(),
        metrics: metrics.clone(),
        // A Lambda is frozen once it answers: asynchronous invocations, queued before the reply.
        background: false,
    });
    Ok(Deps {
        connections: store.clone(),
        presence: Arc::new(
            Presence::new(store.clone(), publisher.clone()).with_after(after_presence),
        ),
        publisher,
        associations,
        invoker,
        gateway: Arc::new(config.management_api(&r.sdk)),
        clock: Arc::new(SystemClock),
        limits: Limits {
            dedup_window_secs: config.dedup_window_secs,
            ..Limits::default()
        },
        metrics,
        admission: Arc::new(InStoreAdmission::new(store_for_admission, allowance)),
        verifier: r.verifier()?,
        // A Lambda is frozen once it answers: asynchronous invocations, queued before the reply.
        after_publish: AfterPublish::BeforeReply,
    })
}

/// What the message handler Lambda is invoked with: API Gateway's `MESSAGE` events, the
/// schedules' minute tick `{"tick":{}}`, or what `onConnect` functions published, from the connect
/// handler (`{"relay":{...}}`).
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
pub enum Invocation {
    Tick {
        tick: crate::schedule::TickEvent,
    },
    Relay {
        relay: echo_core::function::relay::Relayed,
    },
    Gateway(Box<aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest>),
}

/// What it answers: API Gateway's response, or what a tick ran.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
pub enum Answer {
    Gateway(Box<aws_lambda_events::apigw::ApiGatewayProxyResponse>),
    Ticked(crate::schedule::Ticked),
    /// A relay's answer: `{}`.
    Relayed(serde_json::Map<String, serde_json::Value>),
}

/// Handles an invocation.
pub async fn invoked(deps: &Deps, invocation: &Invocation, now_ms: u64) -> Answer {
    match invocation {
        Invocation::Gateway(event) => Answer::Gateway(Box::new(crate::handle(deps, event).await)),
        Invocation::Tick { .. } => Answer::Ticked(crate::schedule::tick(deps, now_ms).await),
        Invocation::Relay { relay } => {
            crate::publish_relayed(deps, relay.clone()).await;
            Answer::Relayed(serde_json::Map::new())
        }
    }
}
