//! Committing messages to channels: sequence, history, then delivery, in order.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use async_trait::async_trait;
use thiserror::Error;
use tokio::sync::{Mutex, MutexGuard};

use crate::channel::ChannelKey;
use crate::message::{NewMessage, StoredMessage};
use crate::store::{HistoryStore, StoreError};

/// Hands committed messages to fan-out.
///
/// Locally this delivers in-process before returning, which with [`Publisher`]'s channel lock
/// gives subscribers every channel's messages in seq order. On AWS it invokes the fan-out Lambda
/// asynchronously; there, order is restored by clients from `seq`.
#[async_trait]
pub trait Dispatcher: Send + Sync + 'static {
    async fn dispatch(
        &self,
        key: &ChannelKey,
        message: &StoredMessage,
    ) -> Result<(), DispatchError>;
}

#[derive(Debug, Error)]
#[error("could not hand the message to fan-out: {0}")]
pub struct DispatchError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

const STRIPES: usize = 64;

/// A fixed set of locks, one chosen per channel: bounded memory however many channels exist.
#[derive(Debug)]
pub struct ChannelLocks {
    stripes: Vec<Mutex<()>>,
}

impl Default for ChannelLocks {
    fn default() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }
}

impl ChannelLocks {
    pub async fn lock(&self, key: &ChannelKey) -> MutexGuard<'_, ()> {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        self.stripes[(h.finish() as usize) % STRIPES].lock().await
    }
}

/// Commits messages to channels.
pub struct Publisher {
    pub history: Arc<dyn HistoryStore>,
    pub dispatcher: Arc<dyn Dispatcher>,
    pub locks: ChannelLocks,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Publisher { .. }")
    }
}

impl Publisher {
    pub fn new(history: Arc<dyn HistoryStore>, dispatcher: Arc<dyn Dispatcher>) -> Self {
        Self {
            history,
            dispatcher,
            locks: ChannelLocks::default(),
        }
    }

    /// Assigns the next seq, stores the message durably, then dispatches it. Once this returns
    /// `Ok` the message is in history: a failed dispatch is logged, and subscribers recover the
    /// message with `subscribe since` or `history`.
    pub async fn commit(
        &self,
        key: &ChannelKey,
        message: NewMessage,
    ) -> Result<StoredMessage, StoreError> {
        let _guard = self.locks.lock(key).await;
        let stored = self.history.append(key, message).await?;
        if let Err(e) = self.dispatcher.dispatch(key, &stored).await {
            tracing::error!(channel = %key, seq = stored.seq, error = %e, "dispatch failed; message is in history");
        }
        Ok(stored)
    }

    /// Holds the channel's lock: no message is committed to it until the guard drops. Subscribing
    /// with replay takes it so that the replay and live messages neither overlap nor leave a gap.
    pub async fn lock(&self, key: &ChannelKey) -> MutexGuard<'_, ()> {
        self.locks.lock(key).await
    }
}

/// A presence event on an app's `$status` channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusEvent {
    Connected,
    Disconnected,
    Subscribed,
    Unsubscribed,
}

impl StatusEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
            Self::Subscribed => "subscribed",
            Self::Unsubscribed => "unsubscribed",
        }
    }
}

impl Publisher {
    /// Publishes a presence event to the app's `$status` channel. Failures are logged, not
    /// returned: presence must never make a connect, subscribe or disconnect fail.
    pub async fn status(
        &self,
        app: &crate::channel::AppId,
        event: StatusEvent,
        connection: &crate::ids::ConnectionId,
        user: &str,
        channel: Option<&crate::channel::ChannelName>,
        now_ms: u64,
    ) {
        let mut data = serde_json::json!({
            "event": event.as_str(),
            "connectionId": connection.as_str(),
            "user": user,
        });
        if let Some(channel) = channel {
            data["channel"] = serde_json::Value::String(channel.to_string());
        }
        let key = ChannelKey::new(app.clone(), crate::channel::ChannelName::status());
        let message = NewMessage {
            id: crate::ids::random_hex(8),
            data,
            from: crate::message::SYSTEM_SENDER.to_owned(),
            ts: now_ms,
        };
        if let Err(e) = self.commit(&key, message).await {
            tracing::warn!(app = %app, event = event.as_str(), error = %e, "could not publish status event");
        }
    }
}
