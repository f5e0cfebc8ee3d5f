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
    /// Set when the publisher gave the id: a message with the same id committed to the channel
    /// less than this many milliseconds before `ts` is this one, and the store answers
    /// [`StoreError::Duplicate`](crate::store::StoreError::Duplicate) instead of committing it
    /// again. `None` for ids Echo made up, which need no dedup.
    #[serde(skip)]
    pub dedup_window_ms: Option<u64>,
}

impl NewMessage {
    /// Whether a message with this message's id, first committed at `first_ts`, makes this one a
    /// duplicate.
    pub fn repeats(&self, first_ts: u64) -> bool {
        self.dedup_window_ms
            .is_some_and(|window| self.ts.saturating_sub(first_ts) < window)
    }

    /// The encoded length it will have once committed to `channel` with `seq`.
    pub fn stored_len(&self, channel: &ChannelName, seq: u64) -> usize {
        /// [`StoredMessage`] borrowed: the same fields in the same order.
        #[derive(Serialize)]
        struct Stored<'a> {
            channel: &'a ChannelName,
            seq: u64,
            id: &'a str,
            data: &'a Value,
            from: &'a str,
            ts: u64,
        }
        encoded_len(&Stored {
            channel,
            seq,
            id: &self.id,
            data: &self.data,
            from: &self.from,
            ts: self.ts,
        })
    }
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
    /// The length of the message encoded as JSON, as it appears in a `history` page.
    pub fn encoded_len(&self) -> usize {
        encoded_len(self)
    }

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

/// The length of `value` encoded as JSON, counted without building the text.
pub(crate) fn encoded_len(value: &impl Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing to a counter cannot fail, nor can encoding these types (string keys only).
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_stored_length_is_what_the_committed_message_encodes_to() {
        let message = NewMessage {
            id: "m\"1".into(),
            data: json!({"text": "héllo \u{1}", "n": [1, 2.5, null]}),
            from: "al\\ice".into(),
            ts: 1_795_459_582_512,
            dedup_window_ms: None,
        };
        let channel = ChannelName::new("room:1").unwrap();
        let predicted = message.stored_len(&channel, u64::MAX);
        let stored = StoredMessage::new(channel, u64::MAX, message);
        assert_eq!(predicted, serde_json::to_string(&stored).unwrap().len());
        assert_eq!(stored.encoded_len(), predicted);
    }
}
