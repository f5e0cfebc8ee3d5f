//! The handler's ports on AWS, as the Lambdas that run it (this crate's and the HTTP API's) set
//! them up once per container: DynamoDB, Lambda fan-out and functions, the management API, EMF.

use std::sync::Arc;

use aws_lambda_events::encodings::Body;
use echo_core::gateway::Frame;

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
use echo_core::publish::{Dispatcher, Publisher};
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
    let fanout = LambdaFanout::new(r.lambda(), r.config.fanout_function.clone());
    deps_with(r, service, allowance, Arc::new(fanout))
}

/// The message handler Lambda: [`deps`], with a small channel's messages delivered by the
/// handler itself once it has answered ([`fanout::Direct`]).
pub struct Handler {
    pub deps: Deps,
    direct: Option<Arc<fanout::Direct>>,
}

/// The message handler's [`Handler`] over `r`.
pub fn handler(
    r: &Resources,
    allowance: Option<Allowance>,
) -> Result<Handler, echo_core::auth::WeakSecret> {
    let config = &r.config;
    let fanout: Arc<dyn Dispatcher> = Arc::new(LambdaFanout::new(
        r.lambda(),
        config.fanout_function.clone(),
    ));
    if config.direct_max_subscribers == 0 {
        return Ok(Handler {
            deps: deps_with(r, SERVICE, allowance, fanout)?,
            direct: None,
        });
    }
    // A connection found gone leaves its channels; those leaves go through the fan-out Lambda,
    // as the fan-out Lambda's own do.
    let (associations, invoker, metrics) = shared(r, SERVICE);
    let departures = Presence::new(
        r.store.clone(),
        Arc::new(Publisher::new(r.store.clone(), fanout.clone())),
    )
    .with_after(after_presence(&associations, &invoker, &metrics));
    let direct = Arc::new(fanout::Direct::new(
        fanout::Deps {
            subscriptions: r.store.clone(),
            connections: r.store.clone(),
            gateway: Arc::new(config.management_api(&r.sdk)),
            metrics,
            departures: Arc::new(departures),
        },
        fanout,
        config.direct_max_subscribers,
        config.direct_budget,
    ));
    Ok(Handler {
        deps: deps_with(r, SERVICE, allowance, direct.clone())?,
        direct: Some(direct),
    })
}

/// The `Service` dimension of the message handler's metrics.
const SERVICE: &str = "message-handler";

/// What the handler's parts share: the associations, the functions' invoker, the metrics.
fn shared(
    r: &Resources,
    service: &'static str,
) -> (Arc<CachedAssociations>, Arc<LambdaInvoker>, Arc<Emf>) {
    let associations = Arc::new(CachedAssociations::new(
        r.store.clone(),
        r.config.associations_cache,
        |_| true,
    ));
    let invoker = Arc::new(LambdaInvoker::new(
        r.lambda(),
        r.config.function_prefix.clone(),
    ));
    (associations, invoker, Arc::new(Emf { service }))
}

fn after_presence(
    associations: &Arc<CachedAssociations>,
    invoker: &Arc<LambdaInvoker>,
    metrics: &Arc<Emf>,
) -> Arc<AfterPresence> {
    Arc::new(AfterPresence {
        associations: associations.clone(),
        invoker: invoker.clone(),
        metrics: metrics.clone(),
        // A Lambda is frozen once it answers: asynchronous invocations, queued before the reply.
        background: false,
    })
}

fn deps_with(
    r: &Resources,
    service: &'static str,
    allowance: Option<Allowance>,
    dispatcher: Arc<dyn Dispatcher>,
) -> Result<Deps, echo_core::auth::WeakSecret> {
    let (config, store) = (&r.config, r.store.clone());
    let store_for_admission = store.clone();
    let publisher = Arc::new(Publisher::new(store.clone(), dispatcher));
    let (associations, invoker, metrics) = shared(r, service);
    let after_presence = after_presence(&associations, &invoker, &metrics);
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

/// Handles an invocation. A small channel's messages it committed are delivered once it is done:
/// for a client's frame, with its answer posted to the client beside them (the route response
/// then carries nothing), so that the client never waits on delivery.
pub async fn invoked(handler: &Handler, invocation: &Invocation, now_ms: u64) -> Answer {
    let deps = &handler.deps;
    let answer = match invocation {
        Invocation::Gateway(event) => Answer::Gateway(Box::new(crate::handle(deps, event).await)),
        Invocation::Tick { .. } => Answer::Ticked(crate::schedule::tick(deps, now_ms).await),
        Invocation::Relay { relay } => {
            crate::publish_relayed(deps, relay.clone()).await;
            Answer::Relayed(serde_json::Map::new())
        }
    };
    let Some(direct) = handler.direct.as_ref().filter(|d| d.has_pending()) else {
        return answer;
    };
    // The answer goes out beside the deliveries, not before them: the client waits on neither.
    let (answer, ack) = match (answer, invocation) {
        (Answer::Gateway(mut response), Invocation::Gateway(event)) => {
            let connection = event.request_context.connection_id.as_deref();
            let ack = match (response.body.take(), connection) {
                (Some(Body::Text(text)), Some(id)) => {
                    Some((echo_core::ids::ConnectionId::from(id), Frame::text(text)))
                }
                _ => None,
            };
            (Answer::Gateway(response), ack)
        }
        (answer, _) => (answer, None),
    };
    let post_ack = async {
        if let Some((id, frame)) = &ack
            && let Err(e) = deps.gateway.post(id, frame).await
        {
            tracing::info!(connection_id = %id, error = %e, "could not post the answer");
        }
    };
    let ((), report) = futures_util::future::join(post_ack, direct.deliver_pending()).await;
    tracing::debug!(?report, "delivered directly");
    answer
}
