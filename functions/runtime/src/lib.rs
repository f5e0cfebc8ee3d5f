//! Runs an Echo function as a Lambda: the payload is a
//! [`FunctionInput`](echo_core::function::FunctionInput) and the answer a
//! [`FunctionOutput`](echo_core::function::FunctionOutput), exactly the JSON the local edge
//! passes in-process.
//!
//! A transform's [`FunctionError`] becomes a Lambda function error, which the caller treats as a
//! failed function under the channel's `onError` policy.
//!
//! Run with `--input FILE`, the same binary applies the transform once to the file and prints
//! the answer instead of serving Lambda invocations (`echoctl functions test` does this). The
//! file holds a whole function input (`{"app","channel","message"}`), or just the message's
//! `data`.

use echo_core::function::{FunctionError, FunctionInput, FunctionOutput};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};

pub use lambda_runtime::Error;

/// Serves `transform` on the Lambda Runtime API until the runtime stops; with `--input FILE`,
/// applies it once to the file instead.
pub async fn run(
    transform: fn(FunctionInput) -> Result<FunctionOutput, FunctionError>,
) -> Result<(), Error> {
    if let Some(path) = input_file() {
        let output = run_once(transform, &std::fs::read_to_string(path)?)?;
        println!("{}", serde_json::to_string_pretty(&output)?);
        return Ok(());
    }
    init_logs();
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

/// Serves a hook function (see [`echo_core::hook`]: any JSON in, its answer out) on the Lambda
/// Runtime API; with `--input FILE`, runs it once on the file instead.
pub async fn run_hook(
    hook: fn(serde_json::Value) -> Result<serde_json::Value, FunctionError>,
) -> Result<(), Error> {
    if let Some(path) = input_file() {
        let input: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
        let output = hook(input).map_err(|e| e.0)?;
        println!("{}", serde_json::to_string_pretty(&output)?);
        return Ok(());
    }
    init_logs();
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            hook(event.payload).map_err(|e| {
                tracing::warn!(error = %e, "hook failed");
                Diagnostic {
                    error_type: "EchoFunctionError".to_owned(),
                    error_message: e.0,
                }
            })
        },
    ))
    .await
}

/// The file of `--input FILE`, when the binary was run that way.
fn input_file() -> Option<String> {
    let mut args = std::env::args().skip(1);
    match (args.next(), args.next(), args.next()) {
        (Some(flag), Some(path), None) if flag == "--input" => Some(path),
        _ => None,
    }
}

/// Logs as JSON lines, as CloudWatch reads them.
fn init_logs() {
    tracing_subscriber::fmt()
        .json()
        .with_target(false)
        .without_time()
        .init();
}

/// Applies `transform` to `text`: a whole [`FunctionInput`], or the `data` of a test message.
pub fn run_once(
    transform: fn(FunctionInput) -> Result<FunctionOutput, FunctionError>,
    text: &str,
) -> Result<FunctionOutput, Error> {
    let input = FunctionInput::from_sample(serde_json::from_str(text)?)?;
    Ok(transform(input).map_err(|e| e.0)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use echo_core::function::map_text;

    fn shout(input: FunctionInput) -> Result<FunctionOutput, FunctionError> {
        if input.message.data.is_null() {
            return Err(FunctionError("no data".into()));
        }
        Ok(FunctionOutput::cont(map_text(input.message.data, |t| {
            t.to_uppercase()
        })))
    }

    #[test]
    fn runs_once_on_data_or_a_whole_input() {
        let out = run_once(shout, r#"{"text":"hi"}"#).unwrap();
        assert_eq!(out, FunctionOutput::cont(serde_json::json!({"text": "HI"})));
        let whole = r#"{"app":"a","channel":"c","message":{"id":"m","data":{"text":"yo"},"from":"u","ts":1}}"#;
        assert_eq!(
            run_once(shout, whole).unwrap(),
            FunctionOutput::cont(serde_json::json!({"text": "YO"}))
        );
        assert_eq!(run_once(shout, "null").unwrap_err().to_string(), "no data");
        assert!(run_once(shout, "{").is_err());
    }
}
