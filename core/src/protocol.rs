//! The wire protocol: JSON text frames.
//!
//! Client frames carry an `action` (what API Gateway routes on, `$request.body.action`); server
//! frames carry a `type`. Parsing is strict and every refusal is a [`ProtocolError`] with an
//! [`ErrorCode`] and a message that says what to fix; it never closes the connection.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use thiserror::Error;

use crate::channel::ChannelName;
use crate::message::StoredMessage;

/// Longest client-chosen message id, in bytes.
pub const MAX_CLIENT_ID_LEN: usize = 128;
/// Largest `limit` a `history` request may ask for.
pub const MAX_HISTORY_LIMIT: u32 = 1000;
/// `limit` of a `history` request that does not give one.
pub const DEFAULT_HISTORY_LIMIT: u32 = 100;

/// The actions a client may send. These are also the route keys of the WebSocket API; anything
/// else goes to `$default`.
pub const ACTIONS: [&str; 5] = ["subscribe", "unsubscribe", "publish", "history", "ping"];

/// A frame from a client, parsed and validated.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientFrame {
    /// Receive the channel's messages from now on; with `since`, first replay stored messages
    /// whose seq is greater than `since`.
    Subscribe {
        channel: ChannelName,
        since: Option<u64>,
    },
    Unsubscribe {
        channel: ChannelName,
    },
    /// Publish `data` (any JSON) through the channel's functions to its subscribers. `id` is the
    /// client's own id for the message, echoed in the ack; Echo makes one up when absent.
    Publish {
        channel: ChannelName,
        data: Value,
        id: Option<String>,
    },
    /// Stored messages with seq greater than `since` (default 0), oldest first, at most `limit`.
    History {
        channel: ChannelName,
        since: u64,
        limit: u32,
    },
    Ping,
}

impl ClientFrame {
    /// The `id` of a frame that is refused without being parsed (it is too large), so that the
    /// error can name the request it answers. `None` when the text has no string `id`.
    pub fn request_id(text: &str) -> Option<String> {
        #[derive(Deserialize)]
        struct IdOnly {
            id: Option<String>,
        }
        serde_json::from_str::<IdOnly>(text)
            .ok()?
            .id
            .filter(|id| !id.is_empty() && id.len() <= MAX_CLIENT_ID_LEN)
    }

    pub fn action(&self) -> &'static str {
        match self {
            Self::Subscribe { .. } => "subscribe",
            Self::Unsubscribe { .. } => "unsubscribe",
            Self::Publish { .. } => "publish",
            Self::History { .. } => "history",
            Self::Ping => "ping",
        }
    }

    /// Parses a text frame. Unknown fields are refused so that typos surface instead of being
    /// silently ignored.
    pub fn parse(text: &str) -> Result<Self, ProtocolError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| ProtocolError::bad_request(format!("frame is not valid JSON: {e}")))?;
        let Value::Object(mut obj) = value else {
            return Err(ProtocolError::bad_request(
                "frame must be a JSON object with an \"action\" field",
            ));
        };
        // Recover the publish id early so that even a refused publish can be correlated.
        let id = match obj.get("id") {
            Some(Value::String(s)) if s.len() <= MAX_CLIENT_ID_LEN => Some(s.clone()),
            _ => None,
        };
        let action = match obj.remove("action") {
            Some(Value::String(a)) => a,
            Some(_) => return Err(ProtocolError::bad_request("\"action\" must be a string")),
            None => {
                return Err(ProtocolError::bad_request(
                    "frame has no \"action\"; expected one of subscribe, unsubscribe, publish, history, ping",
                ));
            }
        };
        let frame = match action.as_str() {
            "subscribe" => {
                let f: SubscribeFields = fields(obj)?;
                Self::Subscribe {
                    channel: f.channel,
                    since: f.since,
                }
            }
            "unsubscribe" => {
                let f: ChannelFields = fields(obj)?;
                Self::Unsubscribe { channel: f.channel }
            }
            "publish" => {
                let f: PublishFields = fields(obj).map_err(|e| e.with_id(id.clone()))?;
                if let Some(id) = &f.id
                    && (id.is_empty() || id.len() > MAX_CLIENT_ID_LEN)
                {
                    return Err(ProtocolError::bad_request(format!(
                        "\"id\" must be 1 to {MAX_CLIENT_ID_LEN} bytes"
                    )));
                }
                let Some(data) = f.data else {
                    return Err(ProtocolError::bad_request("publish needs \"data\"").with_id(id));
                };
                Self::Publish {
                    channel: f.channel,
                    data,
                    id: f.id,
                }
            }
            "history" => {
                let f: HistoryFields = fields(obj)?;
                let limit = f.limit.unwrap_or(DEFAULT_HISTORY_LIMIT);
                if limit == 0 || limit > MAX_HISTORY_LIMIT {
                    return Err(ProtocolError::bad_request(format!(
                        "\"limit\" must be 1 to {MAX_HISTORY_LIMIT}"
                    )));
                }
                Self::History {
                    channel: f.channel,
                    since: f.since.unwrap_or(0),
                    limit,
                }
            }
            "ping" => {
                let _: NoFields = fields(obj)?;
                Self::Ping
            }
            other => {
                return Err(ProtocolError::bad_request(format!(
                    "unknown action {:?}; expected one of subscribe, unsubscribe, publish, history, ping",
                    truncate(other, 64)
                )));
            }
        };
        Ok(frame)
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn fields<T: serde::de::DeserializeOwned>(obj: Map<String, Value>) -> Result<T, ProtocolError> {
    serde_json::from_value(Value::Object(obj))
        .map_err(|e| ProtocolError::bad_request(format!("invalid frame: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoFields {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelFields {
    channel: ChannelName,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscribeFields {
    channel: ChannelName,
    since: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishFields {
    channel: ChannelName,
    // Option so that `"data": null` is accepted while a missing `data` is not.
    #[serde(default, deserialize_with = "present")]
    data: Option<Value>,
    id: Option<String>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryFields {
    channel: ChannelName,
    since: Option<u64>,
    limit: Option<u32>,
}

/// A frame Echo sends to a client.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServerFrame {
    /// The subscription is in place. `seq` is the channel's latest sequence number (0 for a channel
    /// that never had a message); every `message` after this one has a greater seq.
    Subscribed {
        channel: ChannelName,
        seq: u64,
    },
    Unsubscribed {
        channel: ChannelName,
    },
    Message(StoredMessage),
    /// A publish was accepted (`seq` set) or dropped by a function (`dropped` and `reason` set).
    Ack(Ack),
    History {
        channel: ChannelName,
        messages: Vec<StoredMessage>,
    },
    Pong,
    Error(ErrorFrame),
}

impl ServerFrame {
    /// The frame as JSON text. Serializing these types cannot fail (string keys, no maps with
    /// non-string keys); should it ever, an `internal` error frame is returned instead.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(
                r#"{{"type":"error","code":"internal","message":"could not encode frame: {}"}}"#,
                e.to_string().replace('"', "'")
            )
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ack {
    pub id: String,
    pub channel: ChannelName,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dropped: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorFrame {
    pub code: ErrorCode,
    pub message: String,
    /// The id of the publish this error answers, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The channel the refused frame named, when it named a valid one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<ChannelName>,
}

/// The closed set of error codes in `error` frames. Codes are stable; messages are for humans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is malformed, names an unknown action, lacks or mistypes a field, or names an
    /// invalid channel. Fix the frame; do not resend it as is.
    BadRequest,
    /// The token is missing, invalid or expired. Only seen when connecting (as HTTP 401).
    Unauthorized,
    /// The token does not allow this (channel permissions, `$status` for non-admins, publishing
    /// to a reserved channel). Do not retry with the same token.
    Forbidden,
    /// The frame or the message after functions exceeds the size limit. Do not resend as is.
    TooLarge,
    /// Too many frames too fast. Retry after a pause.
    RateLimited,
    /// A per-connection limit (such as the number of subscriptions) is reached: free some first.
    /// When connecting (as HTTP 503), the edge holds all the connections it may: retry later.
    LimitExceeded,
    /// A function on the channel failed or timed out and the channel's policy is `reject`:
    /// nothing was delivered. Retrying may succeed if the failure was transient.
    FunctionFailed,
    /// Echo failed (storage, delivery). The frame may be retried; publishes are not known to be
    /// delivered.
    Internal,
}

impl ErrorCode {
    /// Every error code, in the order of the enum.
    pub const ALL: [ErrorCode; 8] = [
        Self::BadRequest,
        Self::Unauthorized,
        Self::Forbidden,
        Self::TooLarge,
        Self::RateLimited,
        Self::LimitExceeded,
        Self::FunctionFailed,
        Self::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::TooLarge => "too_large",
            Self::RateLimited => "rate_limited",
            Self::LimitExceeded => "limit_exceeded",
            Self::FunctionFailed => "function_failed",
            Self::Internal => "internal",
        }
    }
}

/// A refused frame: what goes back to the client as an `error` frame.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("{code:?}: {message}")]
pub struct ProtocolError {
    pub code: ErrorCode,
    pub message: String,
    pub id: Option<String>,
    pub channel: Option<ChannelName>,
}

impl ProtocolError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            id: None,
            channel: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    pub fn with_id(mut self, id: Option<String>) -> Self {
        if self.id.is_none() {
            self.id = id;
        }
        self
    }

    pub fn with_channel(mut self, channel: &ChannelName) -> Self {
        self.channel = Some(channel.clone());
        self
    }

    pub fn to_frame(&self) -> ServerFrame {
        ServerFrame::Error(ErrorFrame {
            code: self.code,
            message: self.message.clone(),
            id: self.id.clone(),
            channel: self.channel.clone(),
        })
    }
}

/// WebSocket close codes Echo uses, in three ranges:
///
/// - 1000–2999: the WebSocket protocol's own (RFC 6455), with the meaning they have there.
/// - 4000–4499: Echo's, after which a client reconnects (with backoff, resubscribing with
///   `since`).
/// - 4500–4999: Echo's, after which a client does not reconnect on its own.
///
/// A client reconnects after any code but 1000 and 4500–4999 ([`reconnects_after`]), so a code
/// added later in either of Echo's ranges is understood by older clients. A close frame's reason
/// is at most [`MAX_CLOSE_REASON_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum CloseCode {
    /// Closed on request. Not reconnected: whoever asked for the close decides what follows.
    Normal = 1000,
    /// The edge is shutting down, the connection was idle too long, or it reached its maximum age
    /// (API Gateway: 10 minutes idle, 2 hours). Reconnect, resubscribing with `since`.
    GoingAway = 1001,
    /// A frame the transport could not take (a binary frame too large to answer). Reconnect, and do
    /// not resend it.
    MessageTooBig = 1009,
    /// The edge failed. Reconnect with backoff.
    InternalError = 1011,
    /// The client read too slowly and its outbound queue filled up. Reconnect and resubscribe with
    /// `since` to recover what was missed.
    SlowConsumer = 4008,
    /// Closed through the management API (`DELETE /@connections/{id}`). Not reconnected unless the
    /// app asks for it.
    ClosedByServer = 4500,
}

/// The most bytes a close frame's reason carries (125 bytes of payload less the code).
pub const MAX_CLOSE_REASON_BYTES: usize = 123;

/// `reason` cut to what a close frame carries, on a character boundary.
pub fn close_reason(reason: &str) -> &str {
    let mut end = reason.len().min(MAX_CLOSE_REASON_BYTES);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

/// Echo's close codes after which a client reconnects.
pub const RECONNECT_RANGE: std::ops::RangeInclusive<u16> = 4000..=4499;
/// Echo's close codes after which a client does not reconnect on its own.
pub const TERMINAL_RANGE: std::ops::RangeInclusive<u16> = 4500..=4999;

/// Whether a client reconnects after a close with `code`, known to it or not.
pub fn reconnects_after(code: u16) -> bool {
    code != CloseCode::Normal.code() && !TERMINAL_RANGE.contains(&code)
}

impl CloseCode {
    /// Every close code, in the order of the enum.
    pub const ALL: [CloseCode; 6] = [
        Self::Normal,
        Self::GoingAway,
        Self::MessageTooBig,
        Self::InternalError,
        Self::SlowConsumer,
        Self::ClosedByServer,
    ];

    pub fn code(self) -> u16 {
        self as u16
    }

    /// The code's name in the protocol's codes fixture.
    pub fn name(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::GoingAway => "going_away",
            Self::MessageTooBig => "message_too_big",
            Self::InternalError => "internal_error",
            Self::SlowConsumer => "slow_consumer",
            Self::ClosedByServer => "closed_by_server",
        }
    }
}

/// The protocol's codes as JSON: `tests/fixtures/protocol-codes.json`, which a core test keeps
/// equal to this and both clients' tests read.
pub fn codes_fixture() -> Value {
    serde_json::json!({
        "errorCodes": ErrorCode::ALL.map(ErrorCode::as_str),
        "closeCodes": CloseCode::ALL.map(|c| serde_json::json!({
            "name": c.name(),
            "code": c.code(),
            "reconnect": reconnects_after(c.code()),
        })),
        "closeRanges": {
            "reconnect": [RECONNECT_RANGE.start(), RECONNECT_RANGE.end()],
            "terminal": [TERMINAL_RANGE.start(), TERMINAL_RANGE.end()],
        },
        "maxCloseReasonBytes": MAX_CLOSE_REASON_BYTES,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(text: &str) -> ProtocolError {
        ClientFrame::parse(text).unwrap_err()
    }

    #[test]
    fn parses_every_action() {
        assert_eq!(
            ClientFrame::parse(r#"{"action":"subscribe","channel":"a","since":3}"#).unwrap(),
            ClientFrame::Subscribe {
                channel: ChannelName::new("a").unwrap(),
                since: Some(3)
            }
        );
        assert_eq!(
            ClientFrame::parse(r#"{"action":"publish","channel":"a","data":null}"#).unwrap(),
            ClientFrame::Publish {
                channel: ChannelName::new("a").unwrap(),
                data: Value::Null,
                id: None
            }
        );
        assert_eq!(
            ClientFrame::parse(r#"{"action":"history","channel":"a"}"#).unwrap(),
            ClientFrame::History {
                channel: ChannelName::new("a").unwrap(),
                since: 0,
                limit: DEFAULT_HISTORY_LIMIT
            }
        );
        assert_eq!(
            ClientFrame::parse(r#"{"action":"ping"}"#).unwrap(),
            ClientFrame::Ping
        );
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        assert!(err("{").message.contains("not valid JSON"));
        assert!(err("[1]").message.contains("JSON object"));
        assert!(err(r#"{"channel":"a"}"#).message.contains("no \"action\""));
        assert!(
            err(r#"{"action":"jump"}"#)
                .message
                .contains("unknown action")
        );
        assert!(
            err(r#"{"action":"subscribe"}"#)
                .message
                .contains("missing field `channel`")
        );
        assert!(
            err(r#"{"action":"subscribe","channel":"a","colour":1}"#)
                .message
                .contains("unknown field `colour`")
        );
        assert!(
            err(r#"{"action":"subscribe","channel":"a b"}"#)
                .message
                .contains("contains ' '")
        );
        assert!(
            err(r#"{"action":"subscribe","channel":"a","since":-1}"#)
                .message
                .contains("invalid")
        );
        let e = err(r#"{"action":"publish","channel":"a","id":"m1"}"#);
        assert_eq!(e.id.as_deref(), Some("m1"));
        assert!(e.message.contains("needs \"data\""));
        assert!(
            err(r#"{"action":"history","channel":"a","limit":0}"#)
                .message
                .contains("limit")
        );
        let deep = "[".repeat(1000) + &"]".repeat(1000);
        assert_eq!(err(&deep).code, ErrorCode::BadRequest);
    }

    #[test]
    fn server_frames_have_a_type() {
        let f = ServerFrame::Ack(Ack {
            id: "m1".into(),
            channel: ChannelName::new("a").unwrap(),
            seq: None,
            dropped: true,
            reason: Some("rude".into()),
        });
        assert_eq!(
            serde_json::from_str::<Value>(&f.to_json()).unwrap(),
            json!({"type":"ack","id":"m1","channel":"a","dropped":true,"reason":"rude"})
        );
        assert_eq!(ServerFrame::Pong.to_json(), r#"{"type":"pong"}"#);
        let e = ProtocolError::new(ErrorCode::FunctionFailed, "boom").to_frame();
        assert_eq!(
            e.to_json(),
            r#"{"type":"error","code":"function_failed","message":"boom"}"#
        );
    }

    /// Run with `ECHO_WRITE_FIXTURES=1` to write the fixture after changing a code.
    #[test]
    fn the_codes_fixture_is_written_from_the_enums() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/protocol-codes.json"
        );
        let want = format!("{:#}\n", codes_fixture());
        if std::env::var_os("ECHO_WRITE_FIXTURES").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert_eq!(
            have, want,
            "{path} differs from core's codes: run ECHO_WRITE_FIXTURES=1 cargo test -p echo-core codes_fixture"
        );
    }

    #[test]
    fn close_codes_sit_in_their_ranges() {
        for c in CloseCode::ALL {
            let code = c.code();
            assert!(
                (1000..=2999).contains(&code)
                    || RECONNECT_RANGE.contains(&code)
                    || TERMINAL_RANGE.contains(&code),
                "{c:?}"
            );
        }
        assert!(reconnects_after(CloseCode::SlowConsumer.code()));
        assert!(reconnects_after(4499) && reconnects_after(1006));
        assert!(!reconnects_after(CloseCode::ClosedByServer.code()));
        assert!(!reconnects_after(4999) && !reconnects_after(1000));
        let long = "é".repeat(100);
        assert_eq!(close_reason(&long).len(), 122, "whole characters only");
        assert_eq!(close_reason("short"), "short");
        for (i, e) in ErrorCode::ALL.iter().enumerate() {
            assert!(!ErrorCode::ALL[..i].contains(e), "{e:?} twice");
        }
    }
}
