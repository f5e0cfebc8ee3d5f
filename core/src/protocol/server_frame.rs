//! Frames Echo sends: each carries a `type`.

use serde::Serialize;

use super::ErrorCode;
use crate::channel::ChannelName;
use crate::message::StoredMessage;

/// A frame Echo sends to a client.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServerFrame {
    /// The subscription is in place. `seq` is the channel's latest sequence number (0 for a channel
    /// that never had a message); every `message` after this one has a greater seq. When the
    /// subscribe asked for a replay, `replay_to` is the last seq it carries: messages after it up
    /// to `seq` are read with `history`.
    Subscribed {
        channel: ChannelName,
        seq: u64,
        #[serde(rename = "replayTo", skip_serializing_if = "Option::is_none")]
        replay_to: Option<u64>,
    },
    Unsubscribed {
        channel: ChannelName,
    },
    Message(StoredMessage),
    /// A publish was accepted (`seq` set) or dropped by a function (`dropped` and `reason` set).
    Ack(Ack),
    /// A page of history; `more` when messages after the last one were left out (by `limit`
    /// or by the frame size): ask again with `since` set to the last seq.
    History {
        channel: ChannelName,
        messages: Vec<StoredMessage>,
        more: bool,
    },
    Pong,
    /// A `refresh` was accepted: the connection now runs on the new token, until `exp`
    /// (seconds since the epoch).
    Refreshed {
        exp: u64,
    },
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ProtocolError;
    use serde_json::{Value, json};

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
}
