//! The sizes of the frames that carry messages. Every frame Echo sends must fit the message limit
//! (API Gateway's 128 KB): a message is accepted only if the largest frame that will ever carry it
//! fits, and history pages are cut to fit.

use super::ServerFrame;
use crate::channel::ChannelName;
use crate::message::NewMessage;

/// The bytes a `history` frame on `channel` takes around its messages (with `"more":false`,
/// the longer of the two).
pub fn history_overhead(channel: &ChannelName) -> usize {
    ServerFrame::History {
        channel: channel.clone(),
        messages: Vec::new(),
        more: false,
    }
    .to_json()
    .len()
}

/// The largest frame that can carry `message` once committed to `channel`: a `history` page
/// holding it alone, with the widest seq. (Its `message` frame is smaller: the `type` and
/// `channel` it adds are shorter than the page around it.)
pub fn largest_frame_len(channel: &ChannelName, message: &NewMessage) -> usize {
    history_overhead(channel) + message.stored_len(channel, u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::StoredMessage;
    use serde_json::json;

    #[test]
    fn the_largest_frame_bounds_both_frames_that_carry_a_message() {
        let channel = ChannelName::new("c".repeat(128)).unwrap();
        let message = NewMessage {
            id: "m".repeat(128),
            data: json!({"text": "x".repeat(1000)}),
            from: "u".repeat(256),
            ts: u64::MAX,
            dedup_window_ms: None,
        };
        let bound = largest_frame_len(&channel, &message);
        let stored = StoredMessage::new(channel.clone(), u64::MAX, message);
        let delivered = ServerFrame::Message(stored.clone()).to_json().len();
        let page = ServerFrame::History {
            channel,
            messages: vec![stored],
            more: false,
        }
        .to_json()
        .len();
        assert_eq!(bound, page);
        assert!(delivered <= bound, "{delivered} > {bound}");
    }
}
