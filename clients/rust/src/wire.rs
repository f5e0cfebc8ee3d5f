//! The frames Echo sends, as the client reads them, and the frames the client sends.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A message delivered on a channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub channel: String,
    /// Strictly increasing per channel; the client uses it to recover and de-duplicate.
    pub seq: u64,
    /// The id the publisher gave (or Echo made up).
    pub id: String,
    /// The data as the channel's functions left it.
    pub data: Value,
    /// The publisher's user id (`sub`).
    pub from: String,
    /// When Echo accepted it, in milliseconds since the epoch.
    pub ts: u64,
}

/// Echo's error codes. The set is closed on the server; `Other` keeps the client working if a
/// newer server adds one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    TooLarge,
    RateLimited,
    LimitExceeded,
    FunctionFailed,
    Internal,
    #[serde(other)]
    Other,
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadRequest => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::TooLarge => "too_large",
            Self::RateLimited => "rate_limited",
            Self::LimitExceeded => "limit_exceeded",
            Self::FunctionFailed => "function_failed",
            Self::Internal => "internal",
            Self::Other => "other",
        })
    }
}

/// A frame from Echo.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ServerFrame {
    Subscribed {
        channel: String,
        seq: u64,
    },
    Unsubscribed {
        channel: String,
    },
    Message(Message),
    Ack {
        id: String,
        seq: Option<u64>,
        #[serde(default)]
        dropped: bool,
        reason: Option<String>,
    },
    History {
        channel: String,
        messages: Vec<Message>,
    },
    Pong,
    Error {
        code: ErrorCode,
        message: String,
        id: Option<String>,
        channel: Option<String>,
    },
}

pub(crate) fn subscribe(channel: &str, since: Option<u64>) -> String {
    match since {
        Some(since) => json!({"action": "subscribe", "channel": channel, "since": since}),
        None => json!({"action": "subscribe", "channel": channel}),
    }
    .to_string()
}

pub(crate) fn unsubscribe(channel: &str) -> String {
    json!({"action": "unsubscribe", "channel": channel}).to_string()
}

pub(crate) fn publish(channel: &str, data: &Value, id: &str) -> String {
    json!({"action": "publish", "channel": channel, "data": data, "id": id}).to_string()
}

pub(crate) fn history(channel: &str, since: u64, limit: u32) -> String {
    json!({"action": "history", "channel": channel, "since": since, "limit": limit}).to_string()
}

pub(crate) fn ping() -> String {
    json!({"action": "ping"}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_server_frame() {
        let frames = [
            r#"{"type":"subscribed","channel":"a","seq":3}"#,
            r#"{"type":"unsubscribed","channel":"a"}"#,
            r#"{"type":"message","channel":"a","seq":4,"id":"m","data":{"t":1},"from":"u","ts":5}"#,
            r#"{"type":"ack","id":"m","channel":"a","seq":4}"#,
            r#"{"type":"ack","id":"m","channel":"a","dropped":true,"reason":"no"}"#,
            r#"{"type":"history","channel":"a","messages":[]}"#,
            r#"{"type":"pong"}"#,
            r#"{"type":"error","code":"forbidden","message":"no","channel":"a"}"#,
            r#"{"type":"error","code":"from_the_future","message":"?"}"#,
        ];
        for f in frames {
            let parsed: Result<ServerFrame, _> = serde_json::from_str(f);
            assert!(parsed.is_ok(), "{f}: {parsed:?}");
        }
        let unknown: ServerFrame = serde_json::from_str(frames[8]).unwrap();
        assert!(matches!(
            unknown,
            ServerFrame::Error {
                code: ErrorCode::Other,
                ..
            }
        ));
    }
}
