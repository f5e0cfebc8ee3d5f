//! A function Lambda for the faithful-mode tests: passes the message on after sleeping
//! `data.sleepMs` milliseconds (at most 2 s), so that one publisher's messages take chains of
//! different durations.

use std::time::Duration;

use echo_core::function::{FunctionError, FunctionInput, FunctionOutput};

fn sleepy(input: FunctionInput) -> Result<FunctionOutput, FunctionError> {
    let ms = input.message.data["sleepMs"]
        .as_u64()
        .unwrap_or(0)
        .min(2000);
    // A Lambda instance handles one invocation at a time: blocking it is what a slow call does.
    std::thread::sleep(Duration::from_millis(ms));
    Ok(FunctionOutput::cont(input.message.data))
}

#[tokio::main]
async fn main() -> Result<(), echo_function_runtime::Error> {
    echo_function_runtime::run(sleepy).await
}
