//! Committing messages to channels: sequence, history, then delivery, in order.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use thiserror::Error;

use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{Mutex, MutexGuard, OwnedMutexGuard, mpsc, oneshot};

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
///
/// The channel's appends, in the order they were handed to the store, go to one sequencer task
/// that awaits them all and dispatches them in seq order. When a group commit completes, the
/// sequencer wakes once and finds all of its messages stored: they go out as one batch, and
/// those stored while a batch is being delivered go out together in the next. The busier the
/// channel, the larger its batches, and no commit waits for another task to take its turn.
#[derive(Debug, Default)]
struct Turn {
    /// Held while dispatching, and by a [`Hold`].
    state: Arc<Mutex<TurnState>>,
    /// `state.next` has been read from the store.
    started: std::sync::atomic::AtomicBool,
    /// The sequencer's queue, once it runs. It stops when the turnstile is forgotten.
    sequencer: std::sync::Mutex<Option<mpsc::UnboundedSender<InFlight>>>,
}

#[derive(Debug, Default)]
struct TurnState {
    /// The next seq to dispatch; `None` until read from the store.
    next: Option<u64>,
}

type Completion = oneshot::Sender<Result<StoredMessage, StoreError>>;

/// An append handed to the store, on its way to the sequencer.
struct InFlight {
    append: std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<StoredMessage, StoreError>> + Send>,
    >,
    /// The caller's completion.
    finished: Completion,
    /// Keeps the turnstile remembered until the message is dispatched.
    turn: Arc<Turn>,
}

impl InFlight {
    /// The append's result, with what the sequencer needs once it is in.
    fn completion(
        self,
    ) -> impl std::future::Future<Output = (Result<StoredMessage, StoreError>, Completion, Arc<Turn>)>
    {
        let Self {
            append,
            finished,
            turn,
        } = self;
        append.map(move |r| (r, finished, turn))
    }
}

impl std::fmt::Debug for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InFlight { .. }")
    }
}

/// An append the store has completed, waiting for its seq's turn.
struct Stored {
    message: StoredMessage,
    finished: Completion,
    turn: Arc<Turn>,
}

/// Takes the stored messages from `next` on, in seq order, up to the first gap; with `skip`,
/// from the first stored one. A message whose seq was skipped over, should it come after all,
/// goes out first, late rather than never.
fn next_batch(
    state: &mut TurnState,
    stored: &mut BTreeMap<u64, Stored>,
    skip: bool,
) -> Vec<Stored> {
    if skip {
        state.next = stored.keys().next().copied().or(state.next);
    }
    let mut batch = Vec::new();
    while let Some(entry) = stored.first_entry() {
        if state.next.is_some_and(|next| *entry.key() < next) {
            batch.push(entry.remove());
        } else {
            break;
        }
    }
    while let Some(next) = state.next {
        let Some(entry) = stored.remove(&next) else {
            break;
        };
        batch.push(entry);
        state.next = Some(next + 1);
    }
    batch
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
                let (finished, committed) = oneshot::channel();
                {
                    // Handed to the store and queued for the sequencer together: the sequencer
                    // hears of appends in the order the store took them.
                    let mut sequencer = turn.sequencer.lock().unwrap_or_else(|p| p.into_inner());
                    let queue = sequencer.get_or_insert_with(|| {
                        let (tx, rx) = mpsc::unbounded_channel();
                        tokio::spawn(self.clone().sequence(key.clone(), turn.state.clone(), rx));
                        tx
                    });
                    let append = self.history.clone().append_started(key.clone(), message);
                    // The sequencer runs until every sender is gone, so this cannot fail; were
                    // it to, the caller hears that the commit was abandoned.
                    let _ = queue.send(InFlight {
                        append,
                        finished,
                        turn: turn.clone(),
                    });
                }
                self.release(key, turn);
                Ok(Box::pin(async move {
                    committed
                        .await
                        .map_err(|_| StoreError::Backend("the commit was abandoned".into()))?
                }))
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
        // Checked without the turnstile first: it is held while every batch is dispatched.
        if turn.started.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(());
        }
        let mut state = turn.state.lock().await;
        if state.next.is_none() {
            state.next = Some(self.history.latest_seq(key).await? + 1);
        }
        turn.started
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// A channel's sequencer: awaits the channel's appends and dispatches the stored messages in
    /// seq order, every consecutive one stored by then in one batch. Ends once the turnstile is
    /// forgotten and everything queued is dispatched.
    async fn sequence(
        self: Arc<Self>,
        key: ChannelKey,
        state: Arc<Mutex<TurnState>>,
        mut queue: mpsc::UnboundedReceiver<InFlight>,
    ) {
        let mut appending = FuturesUnordered::new();
        let mut stored: BTreeMap<u64, Stored> = BTreeMap::new();
        let mut open = true;
        // Armed while stored messages wait for an earlier seq.
        let patience = tokio::time::sleep(TURN_PATIENCE);
        tokio::pin!(patience);
        let mut waiting = false;
        loop {
            tokio::select! {
                biased;
                Some((result, finished, turn)) = appending.next(), if !appending.is_empty() => {
                    self.take(&key, result, finished, turn, &mut stored);
                    // Taken and dispatched under one hold of the turnstile: a hold sees a batch
                    // either not taken or out.
                    let mut guard = state.lock().await;
                    // Everything else completed by now (the rest of the same commit; while a
                    // hold kept the turnstile, all that was stored meanwhile).
                    while let Ok(in_flight) = queue.try_recv() {
                        appending.push(in_flight.completion());
                    }
                    while let Some(Some((result, finished, turn))) = appending.next().now_or_never() {
                        self.take(&key, result, finished, turn, &mut stored);
                    }
                    let batch = next_batch(&mut guard, &mut stored, false);
                    let progressed = !batch.is_empty();
                    self.dispatch_stored(&key, batch).await;
                    drop(guard);
                    // Patience counts time without progress while messages wait.
                    if stored.is_empty() {
                        waiting = false;
                    } else if progressed || !waiting {
                        waiting = true;
                        patience.as_mut().reset(tokio::time::Instant::now() + TURN_PATIENCE);
                    }
                }
                received = queue.recv(), if open => match received {
                    Some(in_flight) => appending.push(in_flight.completion()),
                    None => open = false,
                },
                () = &mut patience, if waiting => {
                    // An earlier seq never came: go ahead rather than hold the channel up.
                    let mut guard = state.lock().await;
                    tracing::error!(channel = %key, waiting_for = ?guard.next, "dispatching out of turn");
                    let batch = next_batch(&mut guard, &mut stored, true);
                    self.dispatch_stored(&key, batch).await;
                    drop(guard);
                    waiting = false;
                }
                else => break,
            }
        }
    }

    /// A completed append: stored, to wait for its turn, or its failure told to the caller.
    fn take(
        &self,
        key: &ChannelKey,
        result: Result<StoredMessage, StoreError>,
        finished: Completion,
        turn: Arc<Turn>,
        stored: &mut BTreeMap<u64, Stored>,
    ) {
        match result {
            Ok(message) => {
                stored.insert(
                    message.seq,
                    Stored {
                        message,
                        finished,
                        turn,
                    },
                );
            }
            Err(e) => {
                self.release(key, turn);
                let _ = finished.send(Err(e));
            }
        }
    }

    /// Dispatches `batch` (under the turnstile) and tells each caller.
    async fn dispatch_stored(&self, key: &ChannelKey, batch: Vec<Stored>) {
        let mut messages = Vec::with_capacity(batch.len());
        let mut callers = Vec::with_capacity(batch.len());
        // Every message of a batch holds the same turnstile.
        let mut turn = None;
        for s in batch {
            messages.push(s.message);
            callers.push(s.finished);
            turn = Some(s.turn);
        }
        if let (Some(first), Some(last)) = (messages.first(), messages.last())
            && let Err(e) = self.dispatcher.dispatch_batch(key, &messages).await
        {
            let (first, last) = (first.seq, last.seq);
            tracing::error!(channel = %key, first, last, error = %e, "dispatch failed; messages are in history");
        }
        // Released once, before the callers hear, so that a caller sees an idle channel's
        // turnstile already forgotten.
        if let Some(turn) = turn {
            self.release(key, turn);
        }
        for (finished, message) in callers.into_iter().zip(messages) {
            let _ = finished.send(Ok(message));
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

    fn key() -> ChannelKey {
        ChannelKey::new(AppId::new("a").unwrap(), ChannelName::new("c").unwrap())
    }

    /// A pipelined publisher over `store`, dispatching to `dispatcher`.
    fn pipelined(store: Arc<MemoryStore>, dispatcher: Arc<dyn Dispatcher>) -> Arc<Publisher> {
        Arc::new(Publisher::with_ordering(
            store,
            dispatcher,
            Ordering::Pipelined,
        ))
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
        let key = key();
        let store = Arc::new(MemoryStore::new());
        // Two earlier messages: dispatch numbering continues from the store.
        store.append(&key, message(0)).await.unwrap();
        store.append(&key, message(0)).await.unwrap();
        let recorder = Arc::new(Recorder::default());
        let publisher = pipelined(store, recorder.clone());
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
        let key = key();
        let recorder = Arc::new(Recorder::default());
        let publisher = pipelined(Arc::new(MemoryStore::new()), recorder.clone());
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

    /// Records the size of each batch.
    #[derive(Default)]
    struct Batches(std::sync::Mutex<Vec<Vec<u64>>>);

    #[async_trait]
    impl Dispatcher for Batches {
        async fn dispatch(&self, _: &ChannelKey, m: &StoredMessage) -> Result<(), DispatchError> {
            self.0.lock().unwrap().push(vec![m.seq]);
            Ok(())
        }

        async fn dispatch_batch(
            &self,
            _: &ChannelKey,
            messages: &[StoredMessage],
        ) -> Result<(), DispatchError> {
            self.0
                .lock()
                .unwrap()
                .push(messages.iter().map(|m| m.seq).collect());
            Ok(())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn messages_stored_while_dispatch_waits_go_out_as_one_batch() {
        let key = key();
        let batches = Arc::new(Batches::default());
        let publisher = pipelined(Arc::new(MemoryStore::new()), batches.clone());
        let (hold, _) = publisher.hold(&key).await.unwrap();
        let mut commits = Vec::new();
        for i in 0..10 {
            commits.push(publisher.begin(&key, message(i)).await.unwrap());
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(batches.0.lock().unwrap().is_empty(), "held");
        drop(hold);
        for (i, c) in commits.into_iter().enumerate() {
            assert_eq!(c.await.unwrap().seq, i as u64 + 1);
        }
        assert_eq!(
            *batches.0.lock().unwrap(),
            vec![(1..=10).collect::<Vec<_>>()]
        );
        // Nothing in flight: the channel's turnstile is forgotten.
        assert!(publisher.turns.lock().unwrap().is_empty());
    }
}
