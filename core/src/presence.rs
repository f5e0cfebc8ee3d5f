//! Presence: who is on a channel.
//!
//! A user (a token's `sub`) joins a channel with its first subscribed connection and leaves with
//! its last, whether that subscription ends by `unsubscribe`, by `$disconnect` or because the
//! connection was found gone. Each join and leave is committed to the channel's presence channel
//! (`$presence:` and the name), so it has a seq there and goes through the same fan-out as
//! messages, to the connections that subscribed with `presence` (which are subscribed to the
//! presence channel too). The [`PresenceStore`] keeps the members; a `presence` request reads
//! them, with the presence channel's seq read first, so that a client applies the events after
//! it on top.

use std::sync::Arc;

use async_trait::async_trait;

use crate::after_presence::AfterPresence;
use crate::channel::{AppId, ChannelKey, ChannelName};
use crate::ids::{ConnectionId, random_hex};
use crate::message::{NewMessage, SYSTEM_SENDER};
use crate::protocol::PresenceEvent;
use crate::publish::{ChannelLocks, Publisher};
use crate::store::{ConnectionRecord, MembersPage, PresenceStore, StoreError};

/// Joins, leaves and member lists.
pub struct Presence {
    pub store: Arc<dyn PresenceStore>,
    pub publisher: Arc<Publisher>,
    /// Hands each committed event to the channel's after-presence functions.
    after: Option<Arc<AfterPresence>>,
    /// Held from a member change to its commit's start, so that one process commits a channel's
    /// presence events in the order the store changed.
    locks: ChannelLocks,
}

impl std::fmt::Debug for Presence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Presence { .. }")
    }
}

impl Presence {
    pub fn new(store: Arc<dyn PresenceStore>, publisher: Arc<Publisher>) -> Self {
        Self {
            store,
            publisher,
            after: None,
            locks: ChannelLocks::default(),
        }
    }

    /// Hands each committed join and leave to `after` too.
    pub fn with_after(mut self, after: Arc<AfterPresence>) -> Self {
        self.after = Some(after);
        self
    }

    /// Connection `id` of user `sub` subscribed to `channel`, until `expires_at` (seconds) at
    /// the latest; commits a `join` when it is the user's first there. Failures are logged, not
    /// returned: presence never makes a subscribe fail (the member list is read from the store,
    /// and a client that missed an event reads it again).
    #[allow(clippy::too_many_arguments)]
    pub async fn join(
        &self,
        app: &AppId,
        channel: &ChannelName,
        sub: &str,
        id: &ConnectionId,
        expires_at: u64,
        now_ms: u64,
    ) {
        let Some(keys) = Keys::of(app, channel) else {
            return;
        };
        self.change(&keys, PresenceEvent::Join, sub, now_ms, || {
            self.store.join(&keys.members, sub, id, expires_at)
        })
        .await;
    }

    /// Connection `id` of user `sub` is no longer subscribed to `channel`; commits a `leave`
    /// when it was the user's last there.
    pub async fn leave(
        &self,
        app: &AppId,
        channel: &ChannelName,
        sub: &str,
        id: &ConnectionId,
        now_ms: u64,
    ) {
        let Some(keys) = Keys::of(app, channel) else {
            return;
        };
        self.change(&keys, PresenceEvent::Leave, sub, now_ms, || {
            self.store.leave(&keys.members, sub, id)
        })
        .await;
    }

    async fn change<F>(
        &self,
        keys: &Keys,
        event: PresenceEvent,
        sub: &str,
        now_ms: u64,
        store_change: impl FnOnce() -> F,
    ) where
        F: std::future::Future<Output = Result<bool, StoreError>>,
    {
        let key = &keys.members;
        let committing = {
            let _turn = self.locks.lock(key).await;
            match store_change().await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    tracing::warn!(channel = %key, event = event.as_str(), error = %e, "could not record presence");
                    return;
                }
            }
            let message = NewMessage {
                id: random_hex(8),
                data: event.data(sub),
                from: SYSTEM_SENDER.to_owned(),
                ts: now_ms,
                dedup_window_ms: None,
            };
            self.publisher.begin(&keys.events, message).await
        };
        match async { committing?.await }.await {
            Ok(stored) => {
                if let Some(after) = &self.after {
                    after.committed(&key.app, &key.channel, &stored).await;
                }
            }
            Err(e) => {
                tracing::warn!(channel = %key, event = event.as_str(), error = %e, "could not publish presence event");
            }
        }
    }

    /// A page of `channel`'s members after `after`, at most `limit`, and the seq of the
    /// channel's last presence event, read before them.
    pub async fn members(
        &self,
        app: &AppId,
        channel: &ChannelName,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(MembersPage, u64), StoreError> {
        let Some(keys) = Keys::of(app, channel) else {
            return Ok((MembersPage::default(), 0));
        };
        let seq = self.publisher.history.latest_seq(&keys.events).await?;
        let page = self.store.members(&keys.members, after, limit).await?;
        Ok((page, seq))
    }
}

/// Where a channel's presence lives: its members, and its presence channel for the events.
struct Keys {
    members: ChannelKey,
    events: ChannelKey,
}

impl Keys {
    /// `None` for reserved channels, which have no presence.
    fn of(app: &AppId, channel: &ChannelName) -> Option<Self> {
        let events = ChannelKey::new(app.clone(), channel.presence()?);
        Some(Self {
            members: ChannelKey::new(app.clone(), channel.clone()),
            events,
        })
    }
}

/// Told when a connection is removed for good (its `$disconnect`, or fan-out finding it gone),
/// with the channels it was subscribed to: its presence there ends.
#[async_trait]
pub trait Departures: Send + Sync + 'static {
    async fn departed(&self, record: &ConnectionRecord, channels: &[ChannelKey], now_ms: u64);
}

#[async_trait]
impl Departures for Presence {
    async fn departed(&self, record: &ConnectionRecord, channels: &[ChannelKey], now_ms: u64) {
        let leaves = channels
            .iter()
            .filter(|k| !k.channel.is_reserved())
            .map(|key| {
                self.leave(
                    &key.app,
                    &key.channel,
                    &record.claims.sub,
                    &record.id,
                    now_ms,
                )
            });
        futures_util::future::join_all(leaves).await;
    }
}

/// Departures nobody hears of (tools and tests without presence).
pub struct NoDepartures;

#[async_trait]
impl Departures for NoDepartures {
    async fn departed(&self, _: &ConnectionRecord, _: &[ChannelKey], _: u64) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::StoredMessage;
    use crate::publish::{DispatchError, Dispatcher};
    use crate::store::MemoryStore;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<(ChannelKey, StoredMessage)>>);

    #[async_trait]
    impl Dispatcher for Recorder {
        async fn dispatch(&self, key: &ChannelKey, m: &StoredMessage) -> Result<(), DispatchError> {
            self.0.lock().unwrap().push((key.clone(), m.clone()));
            Ok(())
        }
    }

    #[tokio::test]
    async fn joins_and_leaves_are_committed_to_the_presence_channel_once_per_user() {
        let store = Arc::new(MemoryStore::new());
        let recorder = Arc::new(Recorder::default());
        let publisher = Arc::new(Publisher::new(store.clone(), recorder.clone()));
        let presence = Presence::new(store.clone(), publisher);
        let app = AppId::new("a").unwrap();
        let room = ChannelName::new("room").unwrap();
        let (c1, c2) = (ConnectionId::from("c1"), ConnectionId::from("c2"));
        let later = 4_000_000_000;
        presence.join(&app, &room, "alice", &c1, later, 10).await;
        presence.join(&app, &room, "alice", &c2, later, 11).await;
        presence.leave(&app, &room, "alice", &c1, 12).await;
        let (page, seq) = presence.members(&app, &room, None, 10).await.unwrap();
        let members: Vec<_> = page
            .members
            .iter()
            .map(|m| (m.sub.as_str(), m.connections))
            .collect();
        assert_eq!((members, seq), (vec![("alice", 1)], 1), "one join so far");
        let record = ConnectionRecord {
            id: c2.clone(),
            claims: crate::auth::Claims::new(app.clone(), "alice", later),
            connected_at: 0,
            expires_at: later,
        };
        let status = ChannelKey::new(app.clone(), ChannelName::status());
        let key = ChannelKey::new(app.clone(), room.clone());
        presence.departed(&record, &[key, status], 13).await;
        let committed = recorder.0.lock().unwrap().clone();
        let events: Vec<_> = committed
            .iter()
            .map(|(k, m)| {
                (
                    k.channel.as_str().to_owned(),
                    m.seq,
                    m.data["type"].clone(),
                    m.ts,
                )
            })
            .collect();
        assert_eq!(
            events,
            [
                ("$presence:room".to_owned(), 1, "join".into(), 10),
                ("$presence:room".to_owned(), 2, "leave".into(), 13),
            ]
        );
        let (page, seq) = presence.members(&app, &room, None, 10).await.unwrap();
        assert!(page.members.is_empty());
        assert_eq!(seq, 2);
    }
}
