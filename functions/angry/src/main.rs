//! The `angry` function as a Lambda (`cargo lambda build --features lambda`, or
//! `cargo lambda watch --features lambda` to serve it on the Lambda Invoke API locally).

#[tokio::main]
async fn main() -> Result<(), echo_function_runtime::Error> {
    echo_function_runtime::run(echo_fn_angry::transform).await
}
