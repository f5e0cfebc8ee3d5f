//! The `ticker` scheduled function as a Lambda (`cargo lambda build`, or `cargo lambda watch` to
//! serve it on the Lambda Invoke API locally).

#[tokio::main]
async fn main() -> Result<(), echo_function_runtime::Error> {
    echo_function_runtime::run_hook(echo_fn_ticker::tick).await
}
