//! Frames from clients: the actions, parsed strictly.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::ProtocolError;
use crate::channel::ChannelName;

/// Longest client-chosen message id, in bytes.
pub const MAX_CLIENT_ID_LEN: usize = 128;
/// Largest `limit` a `history` request may ask for.
pub const MAX_HISTORY_LIMIT: u32 = 1000;
/// The most bytes of messages the replay of one `subscribe` with `since` carries (with at most
/// [`MAX_HISTORY_LIMIT`] messages); the client reads the rest with `history`.
pub const MAX_REPLAY_BYTES: usize = 1024 * 1024;
/// `limit` of a `history` request that does not give one.
pub const DEFAULT_HISTORY_LIMIT: u32 = 100;

/// The actions a client may send. These are also the route keys of the WebSocket API; anything
/// else goes to `$default`.
pub const ACTIONS: [&str; 7] = [
    "subscribe",
    "unsubscribe",
    "publish",
    "history",
    "presence",
    "ping",
    "refresh",
];

/// The actions, as error messages list them.
const EXPECTED: &str =
    "expected one of subscribe, unsubscribe, publish, history, presence, ping, refresh";

/// A frame from a client, parsed and validated.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientFrame {
    /// Receive the channel's messages from now on; with `since`, first replay stored messages
    /// whose seq is greater than `since`. With `presence`, also the channel's `join` and `leave`
    /// events.
    Subscribe {
        channel: ChannelName,
        since: Option<u64>,
        presence: bool,
    },
    Unsubscribe {
        channel: ChannelName,
    },
    /// Publish `data` (any JSON) through the channel's functions to its subscribers. `id` is the
    /// client's own id for the message, echoed in the ack; Echo makes one up when absent.
    /// `order` numbers the connection's publishes on the channel from 1: Echo commits them in
    /// that order even when their frames are handled at once (as API Gateway may).
    Publish {
        channel: ChannelName,
        data: Value,
        id: Option<String>,
        order: Option<u64>,
    },
    /// Stored messages with seq greater than `since` (default 0), oldest first, at most `limit`.
    History {
        channel: ChannelName,
        since: u64,
        limit: u32,
    },
    /// The channel's members, in `sub` order, those after `after` when given.
    Presence {
        channel: ChannelName,
        after: Option<String>,
    },
    Ping,
    /// Replace the connection's token with a new one for the same app and user, before or
    /// shortly after the old one expires, without reconnecting.
    Refresh {
        token: String,
    },
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
            Self::Presence { .. } => "presence",
            Self::Ping => "ping",
            Self::Refresh { .. } => "refresh",
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
                return Err(ProtocolError::bad_request(format!(
                    "frame has no \"action\"; {EXPECTED}"
                )));
            }
        };
        let frame = match action.as_str() {
            "subscribe" => {
                let f: SubscribeFields = fields(obj)?;
                Self::Subscribe {
                    channel: f.channel,
                    since: f.since,
                    presence: f.presence,
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
                if f.order == Some(0) {
                    return Err(ProtocolError::bad_request(
                        "\"order\" counts a connection's publishes on a channel from 1",
                    )
                    .with_id(id));
                }
                Self::Publish {
                    channel: f.channel,
                    data,
                    id: f.id,
                    order: f.order,
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
            "presence" => {
                let f: PresenceFields = fields(obj)?;
                Self::Presence {
                    channel: f.channel,
                    after: f.after,
                }
            }
            "ping" => {
                let _: NoFields = fields(obj)?;
                Self::Ping
            }
            "refresh" => {
                let f: RefreshFields = fields(obj)?;
                Self::Refresh { token: f.token }
            }
            other => {
                return Err(ProtocolError::bad_request(format!(
                    "unknown action {:?}; {EXPECTED}",
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
    #[serde(default)]
    presence: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PresenceFields {
    channel: ChannelName,
    after: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishFields {
    channel: ChannelName,
    // Option so that `"data": null` is accepted while a missing `data` is not.
    #[serde(default, deserialize_with = "present")]
    data: Option<Value>,
    id: Option<String>,
    order: Option<u64>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshFields {
    token: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryFields {
    channel: ChannelName,
    since: Option<u64>,
    limit: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ErrorCode;

    fn err(text: &str) -> ProtocolError {
        ClientFrame::parse(text).unwrap_err()
    }

    #[test]
    fn parses_every_action() {
        assert_eq!(
            ClientFrame::parse(r#"{"action":"subscribe","channel":"a","since":3}"#).unwrap(),
            ClientFrame::Subscribe {
                channel: ChannelName::new("a").unwrap(),
                since: Some(3),
                presence: false,
            }
        );
        assert_eq!(
            ClientFrame::parse(r#"{"action":"subscribe","channel":"a","presence":true}"#).unwrap(),
            ClientFrame::Subscribe {
                channel: ChannelName::new("a").unwrap(),
                since: None,
                presence: true,
            }
        );
        assert_eq!(
            ClientFrame::parse(r#"{"action":"presence","channel":"a","after":"bob"}"#).unwrap(),
            ClientFrame::Presence {
                channel: ChannelName::new("a").unwrap(),
                after: Some("bob".into()),
            }
        );
        assert_eq!(
            ClientFrame::parse(r#"{"action":"publish","channel":"a","data":null}"#).unwrap(),
            ClientFrame::Publish {
                channel: ChannelName::new("a").unwrap(),
                data: Value::Null,
                id: None,
                order: None,
            }
        );
        assert_eq!(
            ClientFrame::parse(r#"{"action":"publish","channel":"a","data":1,"order":7}"#).unwrap(),
            ClientFrame::Publish {
                channel: ChannelName::new("a").unwrap(),
                data: Value::from(1),
                id: None,
                order: Some(7),
            }
        );
        assert!(
            ClientFrame::parse(r#"{"action":"publish","channel":"a","data":1,"order":0}"#).is_err()
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
}
