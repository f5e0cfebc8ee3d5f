//! Committing messages to channels: sequence, history, then delivery, in order.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use thiserror::Error;

use tokio::sync::{Mutex, MutexGuard, OwnedMutexGuard, oneshot};

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

    /// Hands over several consecutive messages of one channel, in seq order: those that became
    /// ready together (one group commit). The default hands them over one by one, every one
    /// even after a failure, and returns the first failure.
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

/// A channel's dispatch turnstile (pipelined ordering).
#[derive(Debug, Default)]
struct Turn {
    state: Arc<Mutex<TurnState>>,
}

#[derive(Debug, Default)]
struct TurnState {
    /// The next seq to dispatch; `None` until read from the store.
    next: Option<u64>,
    /// Stored messages waiting for an earlier one, each with its committer's signal.
    ready: BTreeMap<u64, (StoredMessage, oneshot::Sender<()>)>,
}

/// A commit under way: resolves to the stored message once it is dispatched.
pub type Committing =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<StoredMessage, StoreError>> + Send>>;

/// How long a dispatch waits for the previous seq before going ahead (that message stays in
/// history; subscribers fill the gap from there). Only a bug or a stalled task gets here.
const TURN_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// Commits messages to channels.
pub struct Publisher {
    pub history: Arc<dyn HistoryStore>,
    pub dispatcher: Arc<dyn Dispatcher>,
    pub locks: ChannelLocks,
    ordering: Ordering,
    turns: std::sync::Mutex<HashMap<ChannelKey, Arc<Turn>>>,
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
        turn: Option<Arc<Turn>>,
        guard: Option<OwnedMutexGuard<TurnState>>,
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
                publisher.release(key, turn);
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
            locks: ChannelLocks::default(),
            ordering,
            turns: std::sync::Mutex::new(HashMap::new()),
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
            Ordering::Serial => {
                let _guard = self.locks.lock(key).await;
                let stored = self.history.append(key, message).await?;
                self.dispatch(key, &stored).await;
                Ok(Box::pin(std::future::ready(Ok(stored))))
            }
            Ordering::Pipelined => {
                let turn = self.turn(key);
                self.first_turn(key, &turn).await?;
                let append = self.history.clone().append_started(key.clone(), message);
                // The rest runs on its own task: a caller that goes away must not leave the
                // channel's turnstile waiting for a seq that never comes.
                let this = self.clone();
                let key = key.clone();
                let done = tokio::spawn(async move {
                    let stored = append.await;
                    if let Ok(stored) = &stored {
                        this.dispatch_in_turn(&key, &turn, stored.clone()).await;
                    }
                    this.release(&key, turn);
                    stored
                });
                Ok(Box::pin(
                    async move { done.await.map_err(StoreError::backend)? },
                ))
            }
        }
    }

    async fn dispatch(&self, key: &ChannelKey, stored: &StoredMessage) {
        if let Err(e) = self.dispatcher.dispatch(key, stored).await {
            tracing::error!(channel = %key, seq = stored.seq, error = %e, "dispatch failed; message is in history");
        }
    }

    fn turn(&self, key: &ChannelKey) -> Arc<Turn> {
        let mut turns = self.turns.lock().unwrap_or_else(|p| p.into_inner());
        turns.entry(key.clone()).or_default().clone()
    }

    /// Forgets an idle channel's turnstile (it is re-read from the store when next used).
    fn release(&self, key: &ChannelKey, turn: Arc<Turn>) {
        let mut turns = self.turns.lock().unwrap_or_else(|p| p.into_inner());
        drop(turn);
        if turns.get(key).is_some_and(|t| Arc::strong_count(t) == 1) {
            turns.remove(key);
        }
    }

    /// Before the channel's first store in this process: the next seq to dispatch.
    async fn first_turn(&self, key: &ChannelKey, turn: &Turn) -> Result<(), StoreError> {
        let mut state = turn.state.lock().await;
        if state.next.is_none() {
            state.next = Some(self.history.latest_seq(key).await? + 1);
        }
        Ok(())
    }

    /// Queues `stored` for dispatch; whoever holds the turnstile when the next seq is ready
    /// dispatches every consecutive ready message at once, so subscribers' writers find them
    /// together and send them in one write.
    async fn dispatch_in_turn(&self, key: &ChannelKey, turn: &Turn, stored: StoredMessage) {
        let seq = stored.seq;
        let (done_tx, done) = oneshot::channel();
        {
            let mut state = turn.state.lock().await;
            state.ready.insert(seq, (stored, done_tx));
            self.dispatch_ready(key, &mut state, false).await;
        }
        if tokio::time::timeout(TURN_PATIENCE, done).await.is_err() {
            // An earlier seq never came: go ahead rather than hold the channel up.
            let mut state = turn.state.lock().await;
            if state.ready.contains_key(&seq) {
                tracing::error!(channel = %key, seq, waiting_for = ?state.next, "dispatching out of turn");
                self.dispatch_ready(key, &mut state, true).await;
            }
        }
    }

    /// Dispatches ready messages from `next` on, in order; with `skip`, from the first ready one.
    async fn dispatch_ready(&self, key: &ChannelKey, state: &mut TurnState, skip: bool) {
        if skip {
            state.next = state.ready.keys().next().copied().or(state.next);
        }
        // Every message ready in seq order from the next one goes out as one batch.
        let mut batch = Vec::new();
        let mut dones = Vec::new();
        while let Some(next) = state.next {
            let Some((stored, done)) = state.ready.remove(&next) else {
                break;
            };
            batch.push(stored);
            dones.push(done);
            state.next = Some(next + 1);
        }
        if let (Some(first), Some(last)) = (batch.first(), batch.last())
            && let Err(e) = self.dispatcher.dispatch_batch(key, &batch).await
        {
            let (first, last) = (first.seq, last.seq);
            tracing::error!(channel = %key, first, last, error = %e, "dispatch failed; messages are in history");
        }
        for done in dones {
            let _ = done.send(());
        }
    }

    /// Holds the channel still: no message is dispatched to it (and, with serial ordering, none
    /// is committed) until the hold drops. Returns the seq of the last message dispatched: a
    /// subscription put in place under the hold gets exactly the messages after it live, so a
    /// replay up to it neither overlaps nor leaves a gap.
    pub async fn hold(&self, key: &ChannelKey) -> Result<(Hold<'_>, u64), StoreError> {
        match self.ordering {
            Ordering::Serial => {
                let guard = self.locks.lock(key).await;
                let seq = self.history.latest_seq(key).await?;
                Ok((
                    Hold {
                        _held: HoldInner::Lock { _guard: guard },
                    },
                    seq,
                ))
            }
            Ordering::Pipelined => {
                let turn = self.turn(key);
                self.first_turn(key, &turn).await?;
                let guard = turn.state.clone().lock_owned().await;
                let seq = guard.next.map_or(0, |n| n.saturating_sub(1));
                Ok((
                    Hold {
                        _held: HoldInner::Turn {
                            publisher: self,
                            key: key.clone(),
                            turn: Some(turn),
                            guard: Some(guard),
                        },
                    },
                    seq,
                ))
            }
        }
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
        self: &Arc<Self>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::{AppId, ChannelName};
    use crate::store::memory::MemoryStore;

    /// Records dispatched seqs, yielding in between so that commits interleave.
    #[derive(Default)]
    struct Recorder(std::sync::Mutex<Vec<u64>>);

    #[async_trait]
    impl Dispatcher for Recorder {
        async fn dispatch(&self, _: &ChannelKey, m: &StoredMessage) -> Result<(), DispatchError> {
            tokio::task::yield_now().await;
            self.0.lock().unwrap().push(m.seq);
            Ok(())
        }
    }

    fn message(i: usize) -> NewMessage {
        NewMessage {
            id: format!("m{i}"),
            data: serde_json::json!(i),
            from: "u".into(),
            ts: 1,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn pipelined_commits_are_dispatched_in_seq_order() {
        let key = ChannelKey::new(AppId::new("a").unwrap(), ChannelName::new("c").unwrap());
        let store = Arc::new(MemoryStore::new());
        // Two earlier messages: dispatch numbering continues from the store.
        store.append(&key, message(0)).await.unwrap();
        store.append(&key, message(0)).await.unwrap();
        let recorder = Arc::new(Recorder::default());
        let publisher = Arc::new(Publisher::with_ordering(
            store,
            recorder.clone(),
            Ordering::Pipelined,
        ));
        let commits: Vec<_> = (0..300)
            .map(|i| {
                let (publisher, key) = (publisher.clone(), key.clone());
                tokio::spawn(async move { publisher.commit(&key, message(i)).await.unwrap().seq })
            })
            .collect();
        let mut seqs = Vec::new();
        for c in commits {
            seqs.push(c.await.unwrap());
        }
        seqs.sort_unstable();
        assert_eq!(seqs, (3..=302).collect::<Vec<_>>());
        assert_eq!(*recorder.0.lock().unwrap(), (3..=302).collect::<Vec<_>>());
        let (_hold, seq) = publisher.hold(&key).await.unwrap();
        assert_eq!(seq, 302, "the last dispatched seq");
        assert!(publisher.turns.lock().unwrap().len() <= 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hold_stops_dispatch_until_dropped() {
        let key = ChannelKey::new(AppId::new("a").unwrap(), ChannelName::new("c").unwrap());
        let recorder = Arc::new(Recorder::default());
        let publisher = Arc::new(Publisher::with_ordering(
            Arc::new(MemoryStore::new()),
            recorder.clone(),
            Ordering::Pipelined,
        ));
        let (hold, seq) = publisher.hold(&key).await.unwrap();
        assert_eq!(seq, 0);
        let commit = tokio::spawn({
            let (publisher, key) = (publisher.clone(), key.clone());
            async move { publisher.commit(&key, message(1)).await.unwrap() }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(recorder.0.lock().unwrap().is_empty(), "held");
        drop(hold);
        assert_eq!(commit.await.unwrap().seq, 1);
        assert_eq!(*recorder.0.lock().unwrap(), vec![1]);
    }
}
