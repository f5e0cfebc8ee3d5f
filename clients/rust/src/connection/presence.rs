//! Presence subscriptions' member lists: read in full (every page) whenever the subscription is
//! confirmed, then kept by the `join` and `leave` events after the list's seq, applied in seq
//! order. An event after a gap waits the reorder hold for the ones before it; if they do not
//! come, the list is read again. A list read again is compared with the one kept and the
//! differences are reported as joins and leaves without a seq.

use std::collections::BTreeMap;

use tokio::time::Instant;

use super::Task;
use super::conn::Waiter;
use crate::error::Error;
use crate::events::Event;
use crate::presence::{Member, PresenceList, SharedMembers};
use crate::wire::{self, PresenceChange};

/// A subscription's presence, as the connection task keeps it.
pub(super) struct PresenceState {
    pub(super) members: SharedMembers,
    /// The first list has arrived.
    pub(super) known: bool,
    /// The seq of the last event applied (or of the list).
    pub(super) seq: u64,
    /// Events after a gap, or that came while the list is read, by seq.
    pub(super) held: BTreeMap<u64, (bool, PresenceChange)>,
    /// Since when a gap has been waited for.
    pub(super) held_since: Option<Instant>,
    /// The list is being read.
    pub(super) syncing: bool,
}

impl PresenceState {
    pub(super) fn new(members: SharedMembers) -> Self {
        Self {
            members,
            known: false,
            seq: 0,
            held: BTreeMap::new(),
            held_since: None,
            syncing: false,
        }
    }

    pub(super) fn reset(&mut self) {
        self.held.clear();
        self.held_since = None;
        self.syncing = false;
    }
}

/// What a page of members adds to a list being read; `Some(after)` when another page follows.
fn take_page(
    list: &mut PresenceList,
    members: Vec<Member>,
    seq: u64,
    more: bool,
    first: bool,
) -> Option<String> {
    // Events after the first page's seq are applied on top of the whole list.
    if first {
        list.seq = seq;
    }
    list.members.extend(members);
    match list.members.last() {
        Some(last) if more => Some(last.sub.clone()),
        _ => None,
    }
}

impl Task {
    /// Reads the channel's member list again, for its presence subscription.
    pub(super) async fn sync_presence(&mut self, channel: &str) {
        let Some(p) = self.subs.get_mut(channel).and_then(|s| s.presence.as_mut()) else {
            return;
        };
        p.syncing = true;
        p.held_since = None;
        if let Some(conn) = &mut self.conn {
            conn.wait(
                channel,
                Waiter::Sync {
                    list: PresenceList::default(),
                },
            );
            conn.send(wire::presence(channel, None)).await;
        }
    }

    /// A `presence` page: for the caller's request, or for a list being kept.
    pub(super) async fn presence_page(
        &mut self,
        waiter: Waiter,
        channel: String,
        members: Vec<Member>,
        seq: u64,
        more: bool,
    ) {
        let (mut list, sync, reply) = match waiter {
            Waiter::Presence { list, reply } => (list, false, Some(reply)),
            Waiter::Sync { list } => (list, true, None),
            _ => return,
        };
        let first = list.channel.is_empty();
        list.channel.clone_from(&channel);
        let Some(after) = take_page(&mut list, members, seq, more, first) else {
            match reply {
                Some(reply) => drop(reply.send(Ok(list))),
                None if sync => self.synced(&channel, list).await,
                None => {}
            }
            return;
        };
        let Some(conn) = &mut self.conn else {
            if let Some(reply) = reply {
                let _ = reply.send(Err(Error::Disconnected));
            }
            return;
        };
        let waiter = match reply {
            Some(reply) => Waiter::Presence { list, reply },
            None => Waiter::Sync { list },
        };
        conn.wait(&channel, waiter);
        conn.send(wire::presence(&channel, Some(&after))).await;
    }

    /// A list was read again: report what changed since the one kept, then apply what waited.
    async fn synced(&mut self, channel: &str, list: PresenceList) {
        let Some(p) = self.subs.get_mut(channel).and_then(|s| s.presence.as_mut()) else {
            return;
        };
        p.syncing = false;
        p.known = true;
        p.seq = list.seq;
        let fresh: BTreeMap<String, u32> = list
            .members
            .into_iter()
            .map(|m| (m.sub, m.connections))
            .collect();
        let old = std::mem::replace(
            &mut *p.members.lock().unwrap_or_else(|e| e.into_inner()),
            fresh.clone(),
        );
        let ts = now_ms();
        let mut events = Vec::new();
        for sub in old.keys().filter(|s| !fresh.contains_key(*s)) {
            events.push(Event::Leave {
                channel: channel.to_owned(),
                sub: sub.clone(),
                ts,
                seq: None,
            });
        }
        for sub in fresh.keys().filter(|s| !old.contains_key(*s)) {
            events.push(Event::Join {
                channel: channel.to_owned(),
                sub: sub.clone(),
                ts,
                seq: None,
            });
        }
        for event in events {
            self.emit(event);
        }
        self.drain_presence(channel);
    }

    /// A `join` (`joined`) or `leave` frame.
    pub(super) fn presence_event(&mut self, joined: bool, change: PresenceChange) {
        let channel = change.channel.clone();
        let Some(p) = self
            .subs
            .get_mut(&channel)
            .and_then(|s| s.presence.as_mut())
        else {
            return;
        };
        if p.known && change.seq <= p.seq {
            return;
        }
        p.held.insert(change.seq, (joined, change));
        if !p.syncing {
            self.drain_presence(&channel);
        }
    }

    /// Applies the held events that follow the last one applied; starts the hold on a gap.
    fn drain_presence(&mut self, channel: &str) {
        let Some(p) = self.subs.get_mut(channel).and_then(|s| s.presence.as_mut()) else {
            return;
        };
        let mut events = Vec::new();
        while let Some((joined, change)) = p.held.remove(&(p.seq + 1)) {
            p.seq = change.seq;
            let mut members = p.members.lock().unwrap_or_else(|e| e.into_inner());
            // A join of a user already there (as the list said) changes nothing.
            let changed = if joined {
                !members.contains_key(&change.sub)
                    && members.insert(change.sub.clone(), 1).is_none()
            } else {
                members.remove(&change.sub).is_some()
            };
            drop(members);
            if !changed {
                continue;
            }
            let (channel, sub, ts, seq) = (change.channel, change.sub, change.ts, Some(change.seq));
            events.push(if joined {
                Event::Join {
                    channel,
                    sub,
                    ts,
                    seq,
                }
            } else {
                Event::Leave {
                    channel,
                    sub,
                    ts,
                    seq,
                }
            });
        }
        let seq = p.seq;
        p.held.retain(|s, _| *s > seq);
        if p.held.is_empty() {
            p.held_since = None;
        } else if p.held_since.is_none() {
            p.held_since = Some(Instant::now());
        }
        for event in events {
            self.emit(event);
        }
    }

    /// A presence list could not be read: report it, and try again after the hold.
    pub(super) fn sync_failed(&mut self, channel: &str, error: Error) {
        if let Some(p) = self.subs.get_mut(channel).and_then(|s| s.presence.as_mut()) {
            p.syncing = false;
            p.held_since = Some(Instant::now());
        }
        self.emit(Event::Error {
            channel: Some(channel.to_owned()),
            error,
        });
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
