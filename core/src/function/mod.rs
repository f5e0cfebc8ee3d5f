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
//!
//! This file is the contract; [`chain`] runs a channel's functions one after another, and
//! [`reference`] says how an association names a function.

pub mod chain;
pub mod reference;
pub mod relay;

pub use chain::{ChainOutcome, FunctionRun, run_chain};

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::channel::{AppId, ChannelName};

/// What a function receives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionInput {
    pub app: AppId,
    pub channel: ChannelName,
    pub message: FunctionMessage,
}

impl FunctionInput {
    /// An input from a sample's JSON, as `echoctl functions test` and a function's `--input`
    /// take it: a whole input (`{"app","channel","message"}`), or just the message's `data`, the
    /// rest then being `test`.
    pub fn from_sample(value: Value) -> Result<Self, serde_json::Error> {
        if value.get("message").is_some() && value.get("app").is_some() {
            return serde_json::from_value(value);
        }
        serde_json::from_value(serde_json::json!({
            "app": "test",
            "channel": "test",
            "message": {"id": "test", "data": value, "from": "test", "ts": 0}
        }))
    }
}

/// The message as a function sees it: `data` is the output of the previous function in the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionMessage {
    pub id: String,
    pub data: Value,
    pub from: String,
    pub ts: u64,
    /// The seq it was committed under: set for after-publish functions only, which see the
    /// message once it is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// Most messages one function answer may publish to other channels.
pub const MAX_PUBLICATIONS: usize = 10;
/// Most hops of messages that functions publish: a client's message may lead to messages that
/// lead to messages, three deep; what would go further is refused, so channels whose functions
/// publish to each other cannot loop.
pub const MAX_HOPS: u32 = 3;

/// A message a function publishes to another channel of its app, as from the function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Publication {
    pub channel: ChannelName,
    pub data: Value,
}

impl Publication {
    /// Whether one answer's `publish` list is within [`MAX_PUBLICATIONS`].
    pub fn check_count(publish: &[Publication]) -> Result<(), InvokeError> {
        match publish.len() {
            n if n > MAX_PUBLICATIONS => Err(InvokeError::InvalidOutput(format!(
                "an answer publishes at most {MAX_PUBLICATIONS} messages, not {n}"
            ))),
            _ => Ok(()),
        }
    }
}

/// What a function answers. Either answer may add `"publish":[{"channel":C,"data":D},...]`
/// (at most [`MAX_PUBLICATIONS`]): messages to other channels of the app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase", deny_unknown_fields)]
pub enum FunctionOutput {
    /// Pass `data` to the next function, or deliver it if this was the last one.
    Continue {
        data: Value,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        publish: Vec<Publication>,
    },
    /// Stop the message: nothing is delivered and the publisher's ack says `dropped`.
    Drop {
        #[serde(default)]
        reason: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        publish: Vec<Publication>,
    },
}

impl FunctionOutput {
    pub fn cont(data: Value) -> Self {
        Self::Continue {
            data,
            publish: Vec::new(),
        }
    }

    pub fn drop(reason: impl Into<String>) -> Self {
        Self::Drop {
            reason: Some(reason.into()),
            publish: Vec::new(),
        }
    }

    /// This answer, publishing `publish` as well.
    pub fn publishing(mut self, more: Vec<Publication>) -> Self {
        match &mut self {
            Self::Continue { publish, .. } | Self::Drop { publish, .. } => publish.extend(more),
        }
        self
    }

    /// The messages this answer publishes elsewhere.
    pub fn publications(&self) -> &[Publication] {
        match self {
            Self::Continue { publish, .. } | Self::Drop { publish, .. } => publish,
        }
    }
}

/// What a scheduled function answers: `{"publish":[...]}`, or `{}` for nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledOutput {
    #[serde(default)]
    pub publish: Vec<Publication>,
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
    /// The chain's functions together used up [`MAX_CHAIN_MS`](crate::associations::MAX_CHAIN_MS)
    /// before this one answered (or began).
    #[error("the channel's functions ran out of their {0:?} together")]
    ChainOutOfTime(Duration),
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

    /// Hands `input` to an after-publish function, whose answer nobody waits for or reads. On
    /// AWS an asynchronous invocation, which returns once Lambda has queued it and which Lambda
    /// may retry (so a function may see a message more than once; `message.id` and `seq` tell
    /// repeats apart); elsewhere the invocation itself, its answer ignored.
    async fn notify(&self, name: &str, input: &FunctionInput) -> Result<(), InvokeError> {
        self.invoke(name, input).await.map(|_| ())
    }

    /// Runs a hook function (see [`crate::hook`]): its input as JSON, its JSON answer back.
    async fn call(&self, name: &str, input: &Value) -> Result<Value, InvokeError>;

    /// Hands `input` to a function whose answer nobody waits for (after-presence functions), as
    /// [`notify`](Self::notify) does a message: on AWS an asynchronous invocation; elsewhere the
    /// call itself, its answer ignored.
    async fn notify_call(&self, name: &str, input: &Value) -> Result<(), InvokeError> {
        self.call(name, input).await.map(|_| ())
    }

    /// Whether a function of this name can be invoked; associations naming others are refused.
    fn knows(&self, name: &str) -> bool;
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
    use serde_json::json;

    #[test]
    fn outputs_parse_strictly() {
        assert_eq!(
            parse_output(br#"{"action":"continue","data":1}"#).unwrap(),
            FunctionOutput::cont(json!(1))
        );
        assert_eq!(
            parse_output(br#"{"action":"drop"}"#).unwrap(),
            FunctionOutput::Drop {
                reason: None,
                publish: Vec::new()
            }
        );
        let out = parse_output(
            br#"{"action":"continue","data":1,"publish":[{"channel":"audit","data":{"n":1}}]}"#,
        )
        .unwrap();
        assert_eq!(out.publications()[0].channel.as_str(), "audit");
        assert!(
            parse_output(
                br#"{"action":"continue","data":1,"publish":[{"channel":"a b","data":1}]}"#
            )
            .is_err()
        );
        assert!(parse_output(br#"{"action":"explode"}"#).is_err());
        assert!(parse_output(b"not json").is_err());
    }
}
