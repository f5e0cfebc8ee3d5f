//! Committing messages to channels: sequence, history, then delivery, in order.
//!
//! - [`Publisher`]: assigns a channel's next seq, stores the message durably and hands it to a
//!   [`Dispatcher`], after every earlier message of the channel; [`Publisher::hold`] keeps a
//!   channel still while a subscription is put in place.
//! - `serial`: [`Ordering::Serial`], one commit per channel at a time under striped locks.
//! - `pipelined`: [`Ordering::Pipelined`], stores that proceed together and a per-channel
//!   sequencer task that dispatches them in seq order.

mod pipelined;
mod serial;

pub(crate) use serial::ChannelLocks;

use std::sync::Arc;

use async_trait::async_trait;
use thiserror::Error;
use tokio::sync::{MutexGuard, OwnedMutexGuard};

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

    /// Hands over several consecutive messages of one channel, in seq order: those stored by the
    /// time the previous batch was out (at least one group commit's worth under load). The
    /// default hands them over one by one, every one even after a failure, and returns the first
    /// failure.
    async fn dispatch_batch(
        &self,
        key: &ChannelKey,
        messages: &[StoredMessage],
    ) -> Result<(), DispatchError> {
        let mut first_error = None;
        for message in messages {
            if let Err(e) = self.dispatch(key, message).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

#[derive(Debug, Error)]
#[error("could not hand the message to fan-out: {0}")]
pub struct DispatchError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// How a [`Publisher`] keeps a channel's messages in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ordering {
    /// One commit per channel at a time: store, then dispatch, under the channel's lock. For
    /// processes that share a channel with others (the Lambdas), where order across processes is
    /// restored by clients from `seq`.
    Serial,
    /// For the one process that owns every channel (the local edge): stores of one channel
    /// proceed together (the store can group them into one durable write) and are dispatched
    /// strictly in seq order afterwards, so a busy channel is not limited to one store round
    /// trip per message.
    Pipelined,
}

/// A commit under way: resolves to the stored message once it is dispatched.
pub type Committing =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<StoredMessage, StoreError>> + Send>>;

/// Commits messages to channels.
pub struct Publisher {
    pub history: Arc<dyn HistoryStore>,
    pub dispatcher: Arc<dyn Dispatcher>,
    ordering: Ordering,
    /// Serial ordering's channel locks.
    locks: serial::ChannelLocks,
    /// Pipelined ordering's turnstiles, one per channel with a commit or hold under way.
    turns: pipelined::Turnstiles,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Publisher { .. }")
    }
}

/// Holds a channel still for subscribing (see [`Publisher::hold`]); released when dropped.
#[derive(Debug)]
pub struct Hold<'a> {
    _held: HoldInner<'a>,
}

#[derive(Debug)]
enum HoldInner<'a> {
    Lock {
        _guard: MutexGuard<'a, ()>,
    },
    Turn {
        publisher: &'a Publisher,
        key: ChannelKey,
        /// Keeps the turnstile in the map while held.
        turn: Option<Arc<pipelined::Turn>>,
        guard: Option<OwnedMutexGuard<pipelined::TurnState>>,
    },
}

impl Drop for HoldInner<'_> {
    fn drop(&mut self) {
        if let Self::Turn {
            publisher,
            key,
            turn,
            guard,
        } = self
        {
            drop(guard.take());
            if let Some(turn) = turn.take() {
                publisher.turns.release(key, turn);
            }
        }
    }
}

impl Publisher {
    /// A publisher with [`Ordering::Serial`].
    pub fn new(history: Arc<dyn HistoryStore>, dispatcher: Arc<dyn Dispatcher>) -> Self {
        Self::with_ordering(history, dispatcher, Ordering::Serial)
    }

    pub fn with_ordering(
        history: Arc<dyn HistoryStore>,
        dispatcher: Arc<dyn Dispatcher>,
        ordering: Ordering,
    ) -> Self {
        Self {
            history,
            dispatcher,
            ordering,
            locks: serial::ChannelLocks::default(),
            turns: pipelined::Turnstiles::default(),
        }
    }

    /// Assigns the next seq, stores the message durably, then dispatches it, after every earlier
    /// message of the channel. Once this returns `Ok` the message is in history: a failed
    /// dispatch is logged, and subscribers recover the message with `subscribe since` or
    /// `history`.
    pub async fn commit(
        self: &Arc<Self>,
        key: &ChannelKey,
        message: NewMessage,
    ) -> Result<StoredMessage, StoreError> {
        self.begin(key, message).await?.await
    }

    /// Starts a commit and returns its completion (the stored message, once dispatched). With
    /// pipelined ordering the message is handed to the store before this returns, so a caller
    /// that begins commits one after another gets seqs in that order while the stores and
    /// dispatches proceed together; with serial ordering the commit is complete on return.
    pub async fn begin(
        self: &Arc<Self>,
        key: &ChannelKey,
        message: NewMessage,
    ) -> Result<Committing, StoreError> {
        match self.ordering {
            Ordering::Serial => self.begin_serial(key, message).await,
            Ordering::Pipelined => self.begin_pipelined(key, message).await,
        }
    }

    /// Holds the channel still: no message is dispatched to it (and, with serial ordering, none
    /// is committed) until the hold drops. Returns the seq of the last message dispatched: a
    /// subscription put in place under the hold gets exactly the messages after it live, so a
    /// replay up to it neither overlaps nor leaves a gap.
    pub async fn hold(&self, key: &ChannelKey) -> Result<(Hold<'_>, u64), StoreError> {
        let (held, seq) = match self.ordering {
            Ordering::Serial => self.hold_serial(key).await?,
            Ordering::Pipelined => self.hold_pipelined(key).await?,
        };
        Ok((Hold { _held: held }, seq))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::channel::{AppId, ChannelName};

    pub(crate) fn key() -> ChannelKey {
        ChannelKey::new(AppId::new("a").unwrap(), ChannelName::new("c").unwrap())
    }

    pub(crate) fn message(i: usize) -> NewMessage {
        NewMessage {
            id: format!("m{i}"),
            data: serde_json::json!(i),
            from: "u".into(),
            ts: 1,
            dedup_window_ms: None,
        }
    }
}
