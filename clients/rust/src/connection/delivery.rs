//! Delivery in seq order, each message once: duplicates dropped, early arrivals held briefly for
//! the messages before them, gaps then filled from history page by page, and what history no
//! longer has reported as a gap.
//!
//! On AWS each message is fanned out by its own invocation, so two messages of a channel can
//! arrive in either order; a moment's wait usually brings the missing one. Only when it does not
//! (the hold runs out) is history asked.

use std::collections::BTreeMap;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Task;
use super::conn::Waiter;
use super::presence::PresenceState;
use crate::events::Event;
use crate::wire::{self, Message};

/// The most messages one history request asks for, as Echo caps it.
pub(super) const HISTORY_PAGE: u32 = 1000;

/// A subscription as the connection task keeps it.
pub(super) struct Sub {
    pub(super) messages: mpsc::Sender<Message>,
    /// The last seq delivered: anything at or below it is a duplicate, anything beyond `+ 1` a gap.
    pub(super) last_seq: u64,
    /// The highest seq known to exist (from `subscribed` and from messages): a replay cut short
    /// leaves the rest to read from history.
    pub(super) latest: u64,
    /// Messages that came after a gap, waiting for it to close.
    pub(super) waiting: BTreeMap<u64, Message>,
    /// Since when a gap has been waited for, before asking history.
    pub(super) held_since: Option<Instant>,
    /// A history page to fill the gap has been asked for.
    pub(super) filling: bool,
    /// With presence: the member list kept.
    pub(super) presence: Option<PresenceState>,
}

impl Sub {
    pub(super) fn new(
        messages: mpsc::Sender<Message>,
        last_seq: u64,
        latest: u64,
        presence: Option<PresenceState>,
    ) -> Self {
        Self {
            messages,
            last_seq,
            latest,
            waiting: BTreeMap::new(),
            held_since: None,
            filling: false,
            presence,
        }
    }

    /// Forgets what waits: the connection is gone and the resubscription replays from
    /// `last_seq`.
    pub(super) fn reset(&mut self) {
        self.waiting.clear();
        self.held_since = None;
        self.filling = false;
        if let Some(p) = &mut self.presence {
            p.reset();
        }
    }

    /// Takes the messages that now follow `last_seq` without a gap.
    fn contiguous(&mut self) -> Vec<Message> {
        let mut ready = Vec::new();
        while let Some(entry) = self.waiting.first_entry() {
            let seq = *entry.key();
            if seq <= self.last_seq {
                entry.remove();
            } else if seq == self.last_seq + 1 {
                self.last_seq = seq;
                ready.push(entry.remove());
            } else {
                break;
            }
        }
        ready
    }
}

impl Task {
    /// Echo said `seq` is the channel's latest and that the replay which follows ends at
    /// `replay_to`: when that is short of `seq`, read the rest from history.
    pub(super) async fn caught_up(&mut self, channel: &str, seq: u64, replay_to: Option<u64>) {
        let Some(sub) = self.subs.get_mut(channel) else {
            return;
        };
        sub.latest = sub.latest.max(seq);
        if !sub.filling && replay_to.is_some_and(|to| to < seq) {
            // The replay that follows lands in the buffer; the pages read from the last seq
            // delivered cover it too, so it does not matter which arrives first.
            sub.filling = true;
            sub.held_since = None;
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

    /// When the earliest hold runs out, if any subscription is holding.
    pub(super) fn hold_deadline(&self) -> Option<Instant> {
        let hold = self.setup.options.reorder_hold;
        self.subs
            .values()
            .flat_map(|s| [s.held_since, s.presence.as_ref().and_then(|p| p.held_since)])
            .flatten()
            .min()
            .map(|t| t + hold)
    }

    /// Holds that ran out: the missing messages did not come, so history is asked.
    pub(super) async fn holds_expired(&mut self) {
        let hold = self.setup.options.reorder_hold;
        let now = Instant::now();
        let mut due = Vec::new();
        let mut lists = Vec::new();
        for (channel, sub) in &mut self.subs {
            if sub.held_since.is_some_and(|t| t + hold <= now) {
                sub.held_since = None;
                sub.filling = true;
                due.push((channel.clone(), sub.last_seq));
            }
            if let Some(p) = &mut sub.presence
                && p.held_since.is_some_and(|t| t + hold <= now)
            {
                p.held_since = None;
                lists.push(channel.clone());
            }
        }
        for (channel, since) in due {
            self.fill(&channel, since).await;
        }
        for channel in lists {
            self.sync_presence(&channel).await;
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
        if sub.filling || message.seq > sub.last_seq + 1 {
            sub.waiting.insert(message.seq, message);
            if !sub.filling && sub.held_since.is_none() {
                sub.held_since = Some(Instant::now());
            }
            return;
        }
        sub.last_seq = message.seq;
        let mut ready = vec![message];
        ready.extend(sub.contiguous());
        if sub.waiting.is_empty() {
            sub.held_since = None;
        }
        self.hand_over(&channel, ready).await;
    }

    /// A history page for a gap arrived: deliver what is now contiguous; ask for the next page,
    /// or report what history no longer has.
    pub(super) async fn filled(&mut self, channel: &str, page: Vec<Message>, more: bool) {
        let Some(sub) = self.subs.get_mut(channel) else {
            return;
        };
        if !sub.filling {
            return;
        }
        // The page holds every stored message after the seq asked for up to its last one: what
        // is missing in that range is gone. Without `more`, that is everything. (A page that
        // says `more` but is empty would be asked again forever; it counts as the end.)
        let covered = match page.last() {
            Some(last) if more => last.seq,
            _ => u64::MAX,
        };
        let more = more && !page.is_empty();
        for m in page {
            if m.seq > sub.last_seq {
                sub.latest = sub.latest.max(m.seq);
                sub.waiting.insert(m.seq, m);
            }
        }
        let mut ready = sub.contiguous();
        let mut gaps = Vec::new();
        while let Some(&next) = sub.waiting.keys().next().filter(|&&next| next <= covered) {
            gaps.push((sub.last_seq + 1, next - 1));
            sub.last_seq = next - 1;
            ready.extend(sub.contiguous());
        }
        if !more && sub.last_seq < sub.latest {
            // History ends before the latest seq known to exist: the rest is gone too.
            gaps.push((sub.last_seq + 1, sub.latest));
            sub.last_seq = sub.latest;
        }
        let since = sub.last_seq;
        sub.filling = more && (!sub.waiting.is_empty() || sub.last_seq < sub.latest);
        for (from, to) in gaps {
            self.emit(Event::Gap {
                channel: channel.to_owned(),
                from,
                to,
            });
        }
        self.hand_over(channel, ready).await;
        if self.subs.get(channel).is_some_and(|s| s.filling) {
            self.fill(channel, since).await;
        }
    }

    /// Hands messages in order to the subscription's receiver; a receiver that is gone ends the
    /// subscription.
    async fn hand_over(&mut self, channel: &str, ready: Vec<Message>) {
        let Some(messages) = self.subs.get(channel).map(|s| s.messages.clone()) else {
            return;
        };
        let keys = self.setup.ciphers.get(channel);
        for mut m in ready {
            if let Some(keys) = &keys {
                match crate::e2e::decrypt(keys, channel, &m.data) {
                    Ok(data) => m.data = data,
                    Err(error) => {
                        tracing::debug!(channel, seq = m.seq, %error, "could not decrypt");
                        self.emit(Event::DecryptError {
                            channel: channel.to_owned(),
                            seq: m.seq,
                            id: m.id,
                            error,
                        });
                        continue;
                    }
                }
            }
            if messages.send(m).await.is_err() {
                self.forget(channel).await;
                return;
            }
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
