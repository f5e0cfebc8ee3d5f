//! The frames Echo sends, as the client reads them, and the frames the client sends.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error_code::ErrorCode;
use crate::presence::Member;

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
    /// On an encrypted channel, in a history page: why the message could not be decrypted (its
    /// `data` is then null). Messages delivered to a subscription never carry one: those that
    /// do not decrypt are reported as [`Event::DecryptError`](crate::Event::DecryptError) instead.
    #[serde(skip)]
    pub decrypt_error: Option<crate::e2e::DecryptError>,
}

/// One page of a channel's history, oldest first. A page is cut to fit one frame (128 KB) as
/// well as by `limit`; `more` says messages follow the last one: ask again with its seq as
/// `since`.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPage {
    pub messages: Vec<Message>,
    pub more: bool,
}

/// A user's first subscription to a channel began (`join`) or its last ended (`leave`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct PresenceChange {
    pub(crate) channel: String,
    pub(crate) sub: String,
    pub(crate) ts: u64,
    pub(crate) seq: u64,
}

/// A frame from Echo.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ServerFrame {
    Subscribed {
        channel: String,
        seq: u64,
        /// With `since`: the last seq the replay carries; what follows it is read with history.
        #[serde(rename = "replayTo", default)]
        replay_to: Option<u64>,
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
        #[serde(default)]
        more: bool,
    },
    Join(PresenceChange),
    Leave(PresenceChange),
    Presence {
        channel: String,
        members: Vec<Member>,
        seq: u64,
        #[serde(default)]
        more: bool,
    },
    Pong,
    Refreshed {
        exp: u64,
    },
    Error {
        code: ErrorCode,
        message: String,
        id: Option<String>,
        channel: Option<String>,
    },
}

/// Whether the client reconnects after Echo closes the connection with `code`: after every code
/// but 1000 and Echo's terminal range, 4500–4999 (4000–4499 are Echo's codes to reconnect
/// after).
pub(crate) fn reconnects_after(code: u16) -> bool {
    code != 1000 && !(4500..=4999).contains(&code)
}

pub(crate) fn subscribe(channel: &str, since: Option<u64>, presence: bool) -> String {
    let mut frame = json!({"action": "subscribe", "channel": channel});
    if let Some(since) = since {
        frame["since"] = json!(since);
    }
    if presence {
        frame["presence"] = json!(true);
    }
    frame.to_string()
}

pub(crate) fn presence(channel: &str, after: Option<&str>) -> String {
    match after {
        Some(after) => json!({"action": "presence", "channel": channel, "after": after}),
        None => json!({"action": "presence", "channel": channel}),
    }
    .to_string()
}

pub(crate) fn unsubscribe(channel: &str) -> String {
    json!({"action": "unsubscribe", "channel": channel}).to_string()
}

pub(crate) fn publish(channel: &str, data: &Value, id: &str, order: u64) -> String {
    json!({"action": "publish", "channel": channel, "data": data, "id": id, "order": order})
        .to_string()
}

pub(crate) fn history(channel: &str, since: u64, limit: u32) -> String {
    json!({"action": "history", "channel": channel, "since": since, "limit": limit}).to_string()
}

pub(crate) fn refresh(token: &str) -> String {
    json!({"action": "refresh", "token": token}).to_string()
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
            r#"{"type":"join","channel":"a","sub":"u","ts":5,"seq":1}"#,
            r#"{"type":"presence","channel":"a","members":[{"sub":"u","connections":2}],"seq":1,"more":false}"#,
            r#"{"type":"error","code":"forbidden","message":"no","channel":"a"}"#,
            r#"{"type":"error","code":"from_the_future","message":"?"}"#,
        ];
        for f in frames {
            let parsed: Result<ServerFrame, _> = serde_json::from_str(f);
            assert!(parsed.is_ok(), "{f}: {parsed:?}");
        }
        let unknown: ServerFrame = serde_json::from_str(frames[frames.len() - 1]).unwrap();
        assert!(matches!(
            unknown,
            ServerFrame::Error {
                code: ErrorCode::Other,
                ..
            }
        ));
    }

    /// The protocol's codes as Echo's core writes them.
    fn codes() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/protocol-codes.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn knows_every_error_code_of_the_protocol() {
        let codes = codes();
        let names = codes["errorCodes"].as_array().unwrap();
        assert!(!names.is_empty());
        for name in names {
            let code: ErrorCode = serde_json::from_value(name.clone()).unwrap();
            assert_ne!(code, ErrorCode::Other, "{name}");
            assert_eq!(code.to_string(), name.as_str().unwrap());
        }
        // And no code of its own beyond them (and `Other`).
        let variants = [
            ErrorCode::BadRequest,
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::TooLarge,
            ErrorCode::RateLimited,
            ErrorCode::LimitExceeded,
            ErrorCode::FunctionFailed,
            ErrorCode::Internal,
            ErrorCode::TokenExpired,
            ErrorCode::SessionEnded,
        ];
        assert_eq!(variants.len(), names.len());
    }

    #[test]
    fn reconnects_after_the_close_codes_the_protocol_says() {
        let codes = codes();
        for c in codes["closeCodes"].as_array().unwrap() {
            let code = c["code"].as_u64().unwrap() as u16;
            assert_eq!(
                reconnects_after(code),
                c["reconnect"].as_bool().unwrap(),
                "{c}"
            );
        }
        let range = |name: &str| {
            let r = &codes["closeRanges"][name];
            (r[0].as_u64().unwrap() as u16, r[1].as_u64().unwrap() as u16)
        };
        let (from, to) = range("reconnect");
        assert!(reconnects_after(from) && reconnects_after(to));
        let (from, to) = range("terminal");
        assert!(!reconnects_after(from) && !reconnects_after(to));
        assert!(reconnects_after(from - 1) && reconnects_after(to + 1));
    }
}
