//! The `$connect`/`$disconnect` Lambda.

use std::convert::Infallible;
use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use echo_aws::config::Config;
use echo_aws::dispatcher::LambdaFanout;
use echo_aws::store::dynamodb::DynamoStore;
use echo_core::auth::TokenVerifier;
use echo_core::clock::SystemClock;
use echo_core::limits::Limits;
use echo_core::publish::Publisher;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_target(false)
        .without_time()
        .init();
    let config = Config::from_env()?;
    config.require(&["ECHO_JWT_SECRET", "ECHO_FANOUT_FUNCTION"])?;
    let sdk = Config::sdk().await;
    let store = Arc::new(DynamoStore::new(
        echo_aws::DynamoClient::new(&sdk),
        config.tables(),
    ));
    let fanout = LambdaFanout::new(
        echo_aws::LambdaClient::new(&sdk),
        config.fanout_function.clone(),
    );
    let deps = connect_handler::Deps {
        verifier: TokenVerifier::new(config.jwt_secret.as_bytes())?,
        connections: store.clone(),
        publisher: Arc::new(Publisher::new(store, Arc::new(fanout))),
        clock: Arc::new(SystemClock),
        limits: Limits::default(),
    };
    let deps = &deps;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| async move {
            Ok::<_, Infallible>(connect_handler::handle(deps, &event.payload).await)
        },
    ))
    .await
}
