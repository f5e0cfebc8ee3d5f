//! A subscription: one channel's messages, in seq order, each once.

use tokio::sync::mpsc;

use crate::presence::{Member, SharedMembers, snapshot};
use crate::wire::Message;

/// Messages of one channel, in seq order, each once.
#[derive(Debug)]
pub struct Subscription {
    pub(crate) channel: String,
    pub(crate) seq: u64,
    pub(crate) messages: mpsc::Receiver<Message>,
    pub(crate) members: Option<SharedMembers>,
}

impl Subscription {
    /// The next message; `None` once the subscription ended (unsubscribed, refused on
    /// resubscribe, or the client closed).
    pub async fn recv(&mut self) -> Option<Message> {
        self.messages.recv().await
    }

    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The channel's latest seq when the subscription was made.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// With presence: the channel's members, in `sub` order, as the client keeps them (empty
    /// until the first list arrived). `None` for a subscription without presence.
    pub fn members(&self) -> Option<Vec<Member>> {
        self.members.as_ref().map(snapshot)
    }
}
