//! Presence: who is on a channel.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Deserialize;

/// A user on a channel (its token's `sub`) and how many of its connections are subscribed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Member {
    pub sub: String,
    pub connections: u32,
}

/// A channel's members, every page read, in `sub` order. `seq` is the channel's last presence
/// event the list includes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PresenceList {
    pub channel: String,
    pub members: Vec<Member>,
    pub seq: u64,
}

/// How to subscribe.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubscribeOptions {
    /// Replay stored messages with a greater seq first.
    pub since: Option<u64>,
    /// Keep the channel's member list ([`Subscription::members`](crate::Subscription::members))
    /// and report users joining and leaving ([`Event::Join`](crate::Event::Join),
    /// [`Event::Leave`](crate::Event::Leave)).
    pub presence: bool,
}

/// The member list a presence subscription keeps, shared with the connection task: user to
/// connections, as of the last list read (joins add a user with 1).
pub(crate) type SharedMembers = Arc<Mutex<BTreeMap<String, u32>>>;

pub(crate) fn snapshot(members: &SharedMembers) -> Vec<Member> {
    members
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(sub, connections)| Member {
            sub: sub.clone(),
            connections: *connections,
        })
        .collect()
}
