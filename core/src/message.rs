//! Messages as published, stored and delivered.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::channel::ChannelName;

/// The sender recorded on messages Echo itself publishes (`$status` events).
pub const SYSTEM_SENDER: &str = "$echo";

/// A message about to be committed to a channel: it has passed the functions but has no seq yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewMessage {
    /// The publisher's id for the message, or one Echo made up; echoed in the ack.
    pub id: String,
    pub data: Value,
    /// The publisher's user id (JWT `sub`), or [`SYSTEM_SENDER`].
    pub from: String,
    /// When Echo accepted the publish, in milliseconds since the Unix epoch.
    pub ts: u64,
}

/// A committed message: what subscribers receive and history returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredMessage {
    pub channel: ChannelName,
    /// Strictly increasing per channel, starting at 1, never reused.
    pub seq: u64,
    pub id: String,
    pub data: Value,
    pub from: String,
    pub ts: u64,
}

impl StoredMessage {
    pub fn new(channel: ChannelName, seq: u64, msg: NewMessage) -> Self {
        Self {
            channel,
            seq,
            id: msg.id,
            data: msg.data,
            from: msg.from,
            ts: msg.ts,
        }
    }
}
