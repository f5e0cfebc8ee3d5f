//! One read of a channel's history, bounded by a number of messages and by their encoded size,
//! so that a page always fits the frame that carries it.

use crate::message::StoredMessage;

/// The most one read may return: at most `messages` messages whose encoded sizes, each counted
/// with one byte for the comma between them, sum to at most `bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit {
    pub messages: usize,
    pub bytes: usize,
}

impl PageLimit {
    /// At most `messages` messages, whatever their size.
    pub fn count(messages: usize) -> Self {
        Self {
            messages,
            bytes: usize::MAX,
        }
    }
}

/// Messages oldest first; `more` when the channel has messages after the last one that the
/// limit left out (read on with `since` set to the last seq).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryPage {
    pub messages: Vec<StoredMessage>,
    pub more: bool,
}

/// Builds a page as a store walks its messages in seq order. The first message is always taken,
/// whatever its size: a message too large for any page must reach the caller, which refuses it
/// with an error that names it, rather than the channel's history stopping silently before it.
#[derive(Debug)]
pub struct PageBuilder {
    limit: PageLimit,
    bytes: usize,
    page: HistoryPage,
}

impl PageBuilder {
    pub fn new(limit: PageLimit) -> Self {
        Self {
            limit,
            bytes: 0,
            page: HistoryPage::default(),
        }
    }

    /// Whether the next message, `size` bytes encoded, goes on the page. Once this says no, the
    /// page is full: it is marked `more` and the store stops walking.
    pub fn has_room(&mut self, size: usize) -> bool {
        let taken = self.page.messages.len();
        let fits = taken < self.limit.messages
            && (taken == 0 || self.bytes.saturating_add(size + 1) <= self.limit.bytes);
        if !fits {
            self.page.more = true;
        }
        fits
    }

    /// Adds a message [`has_room`](Self::has_room) made room for.
    pub fn push(&mut self, message: StoredMessage, size: usize) {
        self.bytes = self.bytes.saturating_add(size + 1);
        self.page.messages.push(message);
    }

    pub fn finish(self) -> HistoryPage {
        self.page
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::ChannelName;
    use serde_json::json;

    fn message(seq: u64) -> StoredMessage {
        StoredMessage {
            channel: ChannelName::new("a").unwrap(),
            seq,
            id: format!("m{seq}"),
            data: json!(seq),
            from: "alice".into(),
            ts: 1,
        }
    }

    fn walk(limit: PageLimit, sizes: &[usize]) -> HistoryPage {
        let mut b = PageBuilder::new(limit);
        for (i, &size) in sizes.iter().enumerate() {
            if !b.has_room(size) {
                break;
            }
            b.push(message(i as u64 + 1), size);
        }
        b.finish()
    }

    #[test]
    fn a_page_stops_at_the_count_or_the_bytes_and_says_there_is_more() {
        let all = walk(PageLimit::count(5), &[10, 10, 10]);
        assert_eq!((all.messages.len(), all.more), (3, false));
        let by_count = walk(PageLimit::count(2), &[10, 10, 10]);
        assert_eq!((by_count.messages.len(), by_count.more), (2, true));
        let limit = PageLimit {
            messages: 10,
            bytes: 22,
        };
        let by_bytes = walk(limit, &[10, 10, 10]);
        assert_eq!((by_bytes.messages.len(), by_bytes.more), (2, true));
    }

    #[test]
    fn the_first_message_is_taken_whatever_its_size() {
        let limit = PageLimit {
            messages: 10,
            bytes: 5,
        };
        let page = walk(limit, &[100, 1]);
        assert_eq!(page.messages.len(), 1);
        assert!(page.more);
    }
}
