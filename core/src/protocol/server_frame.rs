//! Frames Echo sends: each carries a `type`.

use serde::Serialize;

use super::error_code::ErrorCode;
use crate::channel::ChannelName;
use crate::member::Member;
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
    /// A user's first subscription to `channel` began (to subscribers with `presence`).
    Join(PresenceChange),
    /// A user's last subscription to `channel` ended.
    Leave(PresenceChange),
    /// A page of the channel's members, in `sub` order; `more` when members after the last one
    /// were left out: ask again with `after` set to the last `sub`. `seq` is the channel's last
    /// presence event when the page was read: events after it may not be in the page.
    Presence {
        channel: ChannelName,
        members: Vec<Member>,
        seq: u64,
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

/// A `join` or `leave`: user `sub` on `channel` at `ts` (milliseconds since the epoch). `seq`
/// numbers the channel's presence events from 1, apart from its messages' seqs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PresenceChange {
    pub channel: ChannelName,
    pub sub: String,
    pub ts: u64,
    pub seq: u64,
}

impl ServerFrame {
    /// The frame that delivers a committed message: a `message`, or for a message on a presence
    /// channel (one Echo committed there) the `join` or `leave` it records.
    pub fn delivery(message: StoredMessage) -> Self {
        match (message.channel.presence_of(), PresenceEvent::of(&message)) {
            (Some(channel), Some((event, sub))) => {
                let change = PresenceChange {
                    channel,
                    sub,
                    ts: message.ts,
                    seq: message.seq,
                };
                match event {
                    PresenceEvent::Join => Self::Join(change),
                    PresenceEvent::Leave => Self::Leave(change),
                }
            }
            _ => Self::Message(message),
        }
    }
}

/// What a message on a presence channel records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceEvent {
    Join,
    Leave,
}

impl PresenceEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Join => "join",
            Self::Leave => "leave",
        }
    }

    /// The message's data: `{"type": "join" | "leave", "sub": S}`.
    pub fn data(self, sub: &str) -> serde_json::Value {
        serde_json::json!({"type": self.as_str(), "sub": sub})
    }

    /// The event and user a presence channel's message records.
    fn of(message: &StoredMessage) -> Option<(Self, String)> {
        let event = match message.data.get("type")?.as_str()? {
            "join" => Self::Join,
            "leave" => Self::Leave,
            _ => return None,
        };
        Some((event, message.data.get("sub")?.as_str()?.to_owned()))
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
    /// The id was committed on the channel within the dedup window: `seq` is the first one's
    /// and nothing was committed again.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
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
            duplicate: false,
        });
        assert_eq!(
            serde_json::from_str::<Value>(&f.to_json()).unwrap(),
            json!({"type":"ack","id":"m1","channel":"a","dropped":true,"reason":"rude"})
        );
        let f = ServerFrame::Ack(Ack {
            id: "m1".into(),
            channel: ChannelName::new("a").unwrap(),
            seq: Some(3),
            dropped: false,
            reason: None,
            duplicate: true,
        });
        assert_eq!(
            serde_json::from_str::<Value>(&f.to_json()).unwrap(),
            json!({"type":"ack","id":"m1","channel":"a","seq":3,"duplicate":true})
        );
        assert_eq!(ServerFrame::Pong.to_json(), r#"{"type":"pong"}"#);
        let room = ChannelName::new("room").unwrap();
        let join = StoredMessage {
            channel: room.presence().unwrap(),
            seq: 4,
            id: "p".into(),
            data: PresenceEvent::Join.data("alice"),
            from: crate::message::SYSTEM_SENDER.into(),
            ts: 17,
        };
        assert_eq!(
            serde_json::from_str::<Value>(&ServerFrame::delivery(join).to_json()).unwrap(),
            json!({"type":"join","channel":"room","sub":"alice","ts":17,"seq":4})
        );
        let plain = StoredMessage {
            channel: room,
            seq: 1,
            id: "m".into(),
            data: json!({"type": "join", "sub": "x"}),
            from: "u".into(),
            ts: 1,
        };
        assert_eq!(
            ServerFrame::delivery(plain.clone()),
            ServerFrame::Message(plain)
        );
        let e = ProtocolError::new(ErrorCode::FunctionFailed, "boom").to_frame();
        assert_eq!(
            e.to_json(),
            r#"{"type":"error","code":"function_failed","message":"boom"}"#
        );
    }
}
