//! The Lambda behind the HTTP API (API Gateway HTTP API, payload format 2.0): the request as
//! `lambda_http` gives it, answered by the same code as on the local edge.

use std::sync::Arc;

use echo_aws::associations::CachedAssociations;
use echo_aws::dispatcher::LambdaFanout;
use echo_aws::invoker::LambdaInvoker;
use echo_aws::lambda::Resources;
use echo_aws::metrics::Emf;
use echo_core::auth::TokenVerifier;
use echo_core::clock::SystemClock;
use echo_core::limits::Limits;
use echo_core::publish::Publisher;
use lambda_http::{Body, Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let r = Resources::load(&[
        "ECHO_JWT_SECRET",
        "ECHO_FANOUT_FUNCTION",
        "ECHO_MANAGEMENT_ENDPOINT",
    ])
    .await?;
    let (config, store, lambda) = (&r.config, r.store.clone(), r.lambda());
    let fanout = LambdaFanout::new(lambda.clone(), config.fanout_function.clone());
    let deps = message_handler::Deps {
        connections: store.clone(),
        publisher: Arc::new(Publisher::new(store.clone(), Arc::new(fanout))),
        associations: Arc::new(CachedAssociations::new(
            store,
            config.associations_cache,
            |_| true,
        )),
        invoker: Arc::new(LambdaInvoker::new(lambda, config.function_prefix.clone())),
        gateway: Arc::new(config.management_api(&r.sdk)),
        clock: Arc::new(SystemClock),
        limits: Limits::default(),
        metrics: Arc::new(Emf {
            service: "http-api",
        }),
        // The HTTP API's stage throttling (HttpThrottlingRateLimit) bounds the request rate.
        limiter: Arc::new(echo_core::rate::Unlimited),
        store_rate: None,
        verifier: TokenVerifier::new(config.jwt_secret.as_bytes())?,
        frames_in_order: true,
        // A Lambda is frozen once it answers: asynchronous invocations, queued before the reply.
        after_publish: message_handler::AfterPublish::BeforeReply,
    };
    let deps = &deps;
    lambda_http::run(service_fn(move |request: Request| async move {
        let (parts, body) = request.into_parts();
        let body = match body {
            Body::Empty => bytes::Bytes::new(),
            Body::Text(t) => bytes::Bytes::from(t),
            Body::Binary(b) => bytes::Bytes::from(b),
            _ => bytes::Bytes::new(),
        };
        let response = http_api::handle(deps, http::Request::from_parts(parts, body)).await;
        let (parts, body) = response.into_parts();
        Ok::<_, Error>(lambda_http::Response::from_parts(parts, Body::Text(body)))
    }))
    .await
}
