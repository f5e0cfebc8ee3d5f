//! Delivery in seq order, each message once: duplicates dropped, gaps filled from history page
//! by page, and what history no longer has reported as a gap.

use std::collections::BTreeMap;

use tokio::sync::mpsc;

use super::Task;
use super::conn::Waiter;
use crate::events::Event;
use crate::wire::{self, Message};

/// The most messages one history request returns, as Echo caps it.
pub(super) const HISTORY_PAGE: u32 = 1000;

/// A subscription as the connection task keeps it.
pub(super) struct Sub {
    pub(super) messages: mpsc::Sender<Message>,
    /// The last seq delivered: anything at or below it is a duplicate, anything beyond `+ 1` a gap.
    pub(super) last_seq: u64,
    /// The highest seq known to exist (from `subscribed` and from messages): a replay capped at
    /// a page leaves the rest to read from history.
    pub(super) latest: u64,
    /// While a gap is being filled from history, messages that arrived after it.
    pub(super) filling: Option<BTreeMap<u64, Message>>,
}

impl Task {
    /// Echo said `seq` is the channel's latest and that the replay which follows ends at
    /// `replay_to`: when that is short of `seq`, read the rest from history.
    pub(super) async fn caught_up(&mut self, channel: &str, seq: u64, replay_to: Option<u64>) {
        let Some(sub) = self.subs.get_mut(channel) else {
            return;
        };
        sub.latest = sub.latest.max(seq);
        if sub.filling.is_none() && replay_to.is_some_and(|to| to < seq) {
            // The replay that follows lands in the buffer; the pages read from the last seq
            // delivered cover it too, so it does not matter which arrives first.
            sub.filling = Some(BTreeMap::new());
            let since = sub.last_seq;
            self.fill(channel, since).await;
        }
    }

    pub(super) async fn fill(&mut self, channel: &str, since: u64) {
        if let Some(conn) = &mut self.conn {
            conn.wait(channel, Waiter::Fill);
            conn.send(wire::history(channel, since, HISTORY_PAGE)).await;
        }
    }

    /// Delivers `message` to its subscription in seq order, once.
    pub(super) async fn deliver(&mut self, message: Message) {
        let channel = message.channel.clone();
        let Some(sub) = self.subs.get_mut(&channel) else {
            return;
        };
        sub.latest = sub.latest.max(message.seq);
        if message.seq <= sub.last_seq {
            return;
        }
        if let Some(waiting) = &mut sub.filling {
            waiting.insert(message.seq, message);
            return;
        }
        if message.seq > sub.last_seq + 1 {
            let since = sub.last_seq;
            sub.filling = Some(BTreeMap::from([(message.seq, message)]));
            self.fill(&channel, since).await;
            return;
        }
        sub.last_seq = message.seq;
        if sub.messages.send(message).await.is_err() {
            self.forget(&channel).await;
        }
    }

    /// A history page for a gap arrived: deliver what is now contiguous; ask for the next page,
    /// or report what history no longer has.
    pub(super) async fn filled(&mut self, channel: &str, page: Vec<Message>, more: bool) {
        let Some(sub) = self.subs.get_mut(channel) else {
            return;
        };
        let Some(mut waiting) = sub.filling.take() else {
            return;
        };
        for m in page {
            if m.seq > sub.last_seq {
                sub.latest = sub.latest.max(m.seq);
                waiting.insert(m.seq, m);
            }
        }
        let mut ready = Vec::new();
        let mut gaps = Vec::new();
        while let Some(entry) = waiting.first_entry() {
            let seq = *entry.key();
            if seq <= sub.last_seq {
                entry.remove();
                continue;
            }
            if seq > sub.last_seq + 1 {
                if more {
                    break;
                }
                gaps.push((sub.last_seq + 1, seq - 1));
            }
            ready.push(entry.remove());
            sub.last_seq = seq;
        }
        if waiting.is_empty() && sub.last_seq < sub.latest && !more {
            // History no longer has the end of the gap.
            gaps.push((sub.last_seq + 1, sub.latest));
            sub.last_seq = sub.latest;
        }
        let since = sub.last_seq;
        let still_filling = !waiting.is_empty() || sub.last_seq < sub.latest;
        if still_filling {
            sub.filling = Some(waiting);
        }
        let messages = sub.messages.clone();
        for (from, to) in gaps {
            self.emit(Event::Gap {
                channel: channel.to_owned(),
                from,
                to,
            });
        }
        for m in ready {
            if messages.send(m).await.is_err() {
                self.forget(channel).await;
                return;
            }
        }
        if still_filling {
            self.fill(channel, since).await;
        }
    }

    /// The caller dropped the subscription: unsubscribe.
    pub(super) async fn forget(&mut self, channel: &str) {
        self.subs.remove(channel);
        if let Some(conn) = &mut self.conn {
            conn.wait(channel, Waiter::Unsubscribe { reply: None });
            conn.send(wire::unsubscribe(channel)).await;
        }
    }
}
