//! Echo functions: the contract they implement and the chain that runs them.
//!
//! A function receives a [`FunctionInput`] and returns a [`FunctionOutput`]. The JSON is the same
//! whether the function runs in-process in the local edge or as a Lambda:
//!
//! ```json
//! {"app":"chat-demo","channel":"angry","message":{"id":"m1","data":{"text":"hi"},"from":"alice","ts":1700000000000}}
//! ```
//!
//! and it answers `{"action":"continue","data":...}` to pass the (possibly new) data on, or
//! `{"action":"drop","reason":"..."}` to stop the message.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::associations::{ChannelPolicy, OnError};
use crate::channel::{AppId, ChannelName};

/// What a function receives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionInput {
    pub app: AppId,
    pub channel: ChannelName,
    pub message: FunctionMessage,
}

/// The message as a function sees it: `data` is the output of the previous function in the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionMessage {
    pub id: String,
    pub data: Value,
    pub from: String,
    pub ts: u64,
}

/// What a function answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase", deny_unknown_fields)]
pub enum FunctionOutput {
    /// Pass `data` to the next function, or deliver it if this was the last one.
    Continue { data: Value },
    /// Stop the message: nothing is delivered and the publisher's ack says `dropped`.
    Drop {
        #[serde(default)]
        reason: Option<String>,
    },
}

impl FunctionOutput {
    pub fn cont(data: Value) -> Self {
        Self::Continue { data }
    }

    pub fn drop(reason: impl Into<String>) -> Self {
        Self::Drop {
            reason: Some(reason.into()),
        }
    }
}

/// A function's own failure, as its code reports it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct FunctionError(pub String);

impl FunctionError {
    pub fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

/// Why invoking a function failed.
#[derive(Debug, Error)]
pub enum InvokeError {
    #[error("no function named {0:?}")]
    Unknown(String),
    #[error("function failed: {0}")]
    Failed(String),
    #[error("function did not answer within {0:?}")]
    TimedOut(Duration),
    #[error("function answered something that is not a valid function output: {0}")]
    InvalidOutput(String),
    #[error("function output is {size} bytes, over the {max}-byte message limit")]
    OutputTooLarge { size: usize, max: usize },
    #[error("could not reach the function: {0}")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Runs a function by name.
///
/// Implementations: in-process (the local edge's built-in functions), the Lambda Invoke API over
/// HTTP (`cargo lambda watch` locally), and Lambda through the AWS SDK. Invocations are
/// independent: a function may run more than once for one message if the caller retries.
#[async_trait]
pub trait FunctionInvoker: Send + Sync + 'static {
    async fn invoke(
        &self,
        name: &str,
        input: &FunctionInput,
    ) -> Result<FunctionOutput, InvokeError>;

    /// Whether a function of this name can be invoked; associations naming others are refused.
    fn knows(&self, name: &str) -> bool;
}

/// How a chain ended.
#[derive(Debug)]
pub enum ChainOutcome {
    /// Deliver this data. `degraded` names the function that failed when the policy is `pass`.
    Deliver {
        data: Value,
        degraded: Option<(String, InvokeError)>,
    },
    Dropped {
        function: String,
        reason: Option<String>,
    },
    /// A function failed under the `reject` policy: deliver nothing.
    Failed {
        function: String,
        error: InvokeError,
    },
}

/// One function's run, for metrics and logs.
#[derive(Debug, Clone)]
pub struct FunctionRun {
    pub function: String,
    pub elapsed: Duration,
    pub ok: bool,
}

/// Runs `policy`'s functions in order on `input`, each under the policy's timeout, applying
/// `on_error` to the first failure. `max_bytes` bounds the encoded size of each function's data.
pub async fn run_chain(
    invoker: &dyn FunctionInvoker,
    policy: &ChannelPolicy,
    mut input: FunctionInput,
    max_bytes: usize,
    runs: &mut Vec<FunctionRun>,
) -> ChainOutcome {
    for name in &policy.functions {
        let started = Instant::now();
        let result = match tokio::time::timeout(policy.timeout, invoker.invoke(name, &input)).await
        {
            Ok(r) => r,
            Err(_) => Err(InvokeError::TimedOut(policy.timeout)),
        }
        .and_then(|out| check_size(out, max_bytes));
        runs.push(FunctionRun {
            function: name.clone(),
            elapsed: started.elapsed(),
            ok: result.is_ok(),
        });
        match result {
            Ok(FunctionOutput::Continue { data }) => input.message.data = data,
            Ok(FunctionOutput::Drop { reason }) => {
                return ChainOutcome::Dropped {
                    function: name.clone(),
                    reason,
                };
            }
            Err(error) => {
                tracing::warn!(function = %name, channel = %input.channel, error = %error, "function failed");
                return match policy.on_error {
                    OnError::Reject => ChainOutcome::Failed {
                        function: name.clone(),
                        error,
                    },
                    OnError::Pass => ChainOutcome::Deliver {
                        data: input.message.data,
                        degraded: Some((name.clone(), error)),
                    },
                };
            }
        }
    }
    ChainOutcome::Deliver {
        data: input.message.data,
        degraded: None,
    }
}

fn check_size(out: FunctionOutput, max: usize) -> Result<FunctionOutput, InvokeError> {
    if let FunctionOutput::Continue { data } = &out {
        let size = serde_json::to_vec(data)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if size > max {
            return Err(InvokeError::OutputTooLarge { size, max });
        }
    }
    Ok(out)
}

/// Applies `f` to `data.text` when `data` is an object with a string `text`, leaving everything
/// else as it is: the shape the demo functions work on (`{"text": "...", "name": "..."}`).
pub fn map_text(mut data: Value, f: impl FnOnce(&str) -> String) -> Value {
    if let Some(Value::String(text)) = data.get_mut("text") {
        *text = f(text);
    }
    data
}

/// Parses a function's raw JSON answer, with an error that says what was wrong.
pub fn parse_output(bytes: &[u8]) -> Result<FunctionOutput, InvokeError> {
    serde_json::from_slice(bytes).map_err(|e| InvokeError::InvalidOutput(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::associations::ChannelPolicy;
    use serde_json::json;

    struct Fns;

    #[async_trait]
    impl FunctionInvoker for Fns {
        async fn invoke(
            &self,
            name: &str,
            input: &FunctionInput,
        ) -> Result<FunctionOutput, InvokeError> {
            let text = input.message.data.as_str().unwrap_or_default();
            match name {
                "upper" => Ok(FunctionOutput::cont(json!(text.to_uppercase()))),
                "bang" => Ok(FunctionOutput::cont(json!(format!("{text}!")))),
                "drop" => Ok(FunctionOutput::drop("no")),
                "fail" => Err(InvokeError::Failed("boom".into())),
                "huge" => Ok(FunctionOutput::cont(json!("x".repeat(100)))),
                "hang" => std::future::pending().await,
                other => Err(InvokeError::Unknown(other.into())),
            }
        }
        fn knows(&self, _: &str) -> bool {
            true
        }
    }

    fn input() -> FunctionInput {
        FunctionInput {
            app: AppId::new("a").unwrap(),
            channel: ChannelName::new("c").unwrap(),
            message: FunctionMessage {
                id: "1".into(),
                data: json!("hi"),
                from: "u".into(),
                ts: 0,
            },
        }
    }

    async fn run(fns: &[&str], on_error: OnError) -> ChainOutcome {
        let policy = ChannelPolicy {
            functions: fns.iter().map(|s| s.to_string()).collect(),
            on_error,
            timeout: Duration::from_millis(50),
        };
        run_chain(&Fns, &policy, input(), 64, &mut Vec::new()).await
    }

    #[tokio::test]
    async fn functions_run_in_order() {
        match run(&["upper", "bang"], OnError::Reject).await {
            ChainOutcome::Deliver {
                data,
                degraded: None,
            } => assert_eq!(data, json!("HI!")),
            other => panic!("{other:?}"),
        }
        match run(&["bang", "upper"], OnError::Reject).await {
            ChainOutcome::Deliver { data, .. } => assert_eq!(data, json!("HI!")),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn drop_stops_the_chain() {
        assert!(matches!(
            run(&["upper", "drop", "bang"], OnError::Pass).await,
            ChainOutcome::Dropped { function, reason: Some(r) } if function == "drop" && r == "no"
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn failures_follow_the_policy() {
        assert!(matches!(
            run(&["upper", "fail"], OnError::Reject).await,
            ChainOutcome::Failed { function, .. } if function == "fail"
        ));
        match run(&["upper", "hang", "bang"], OnError::Pass).await {
            ChainOutcome::Deliver {
                data,
                degraded: Some((f, InvokeError::TimedOut(_))),
            } => {
                assert_eq!(data, json!("HI"));
                assert_eq!(f, "hang");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            run(&["huge"], OnError::Reject).await,
            ChainOutcome::Failed {
                error: InvokeError::OutputTooLarge { .. },
                ..
            }
        ));
    }

    #[test]
    fn outputs_parse_strictly() {
        assert_eq!(
            parse_output(br#"{"action":"continue","data":1}"#).unwrap(),
            FunctionOutput::cont(json!(1))
        );
        assert_eq!(
            parse_output(br#"{"action":"drop"}"#).unwrap(),
            FunctionOutput::Drop { reason: None }
        );
        assert!(parse_output(br#"{"action":"explode"}"#).is_err());
        assert!(parse_output(b"not json").is_err());
    }
}
