//! The Lambda behind the action routes and `$default`. Its answer is the route response: API
//! Gateway sends the body back to the client. Every minute an EventBridge rule also invokes it
//! with `{"tick":{}}`, to run the schedules due.

use std::convert::Infallible;

use echo_aws::lambda::Resources;
use echo_core::rate::Allowance;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let r = Resources::load(&[
        "ECHO_KEYS_SECRET",
        "ECHO_FANOUT_FUNCTION",
        "ECHO_MANAGEMENT_ENDPOINT",
    ])
    .await?;
    // Each connection's frames are counted with its record.
    let allowance = Allowance::new(r.config.publish_rate, r.config.publish_burst);
    let handler = message_handler::lambda::handler(&r, allowance)?;
    let handler = &handler;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<message_handler::lambda::Invocation>| async move {
            let now_ms = handler.deps.clock.now_ms();
            Ok::<_, Infallible>(
                message_handler::lambda::invoked(handler, &event.payload, now_ms).await,
            )
        },
    ))
    .await
}
