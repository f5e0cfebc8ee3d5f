//! The Lambda behind the action routes and `$default`. Its answer is the route response: API
//! Gateway sends the body back to the client.

use std::convert::Infallible;
use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use echo_aws::associations::CachedAssociations;
use echo_aws::dispatcher::LambdaFanout;
use echo_aws::invoker::LambdaInvoker;
use echo_aws::lambda::Resources;
use echo_aws::metrics::Emf;
use echo_core::auth::TokenVerifier;
use echo_core::clock::SystemClock;
use echo_core::limits::Limits;
use echo_core::publish::Publisher;
use echo_core::rate::Allowance;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
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
            service: "message-handler",
        }),
        // Invocations share nothing: the allowance is counted with the connection's record.
        limiter: Arc::new(echo_core::rate::Unlimited),
        store_rate: Allowance::new(config.publish_rate, config.publish_burst),
        verifier: TokenVerifier::new(config.jwt_secret.as_bytes())?,
        // API Gateway may invoke the handler for one connection's frames at once.
        frames_in_order: false,
        // A Lambda is frozen once it answers: asynchronous invocations, queued before the reply.
        after_publish: message_handler::AfterPublish::BeforeReply,
    };
    let deps = &deps;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| async move {
            Ok::<_, Infallible>(message_handler::handle(deps, &event.payload).await)
        },
    ))
    .await
}
