//! Runs an Echo function as a Lambda: the payload is a
//! [`FunctionInput`](echo_core::function::FunctionInput) and the answer a
//! [`FunctionOutput`](echo_core::function::FunctionOutput), exactly the JSON the local edge
//! passes in-process.
//!
//! A transform's [`FunctionError`] becomes a Lambda function error, which the caller treats as a
//! failed function under the channel's `onError` policy.

use echo_core::function::{FunctionError, FunctionInput, FunctionOutput};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};

pub use lambda_runtime::Error;

/// Serves `transform` on the Lambda Runtime API until the runtime stops.
pub async fn run(
    transform: fn(FunctionInput) -> Result<FunctionOutput, FunctionError>,
) -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_target(false)
        .without_time()
        .init();
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<FunctionInput>| async move {
            let message_id = event.payload.message.id.clone();
            transform(event.payload).map_err(|e| {
                tracing::warn!(message_id, error = %e, "function failed");
                Diagnostic {
                    error_type: "EchoFunctionError".to_owned(),
                    error_message: e.0,
                }
            })
        },
    ))
    .await
}
