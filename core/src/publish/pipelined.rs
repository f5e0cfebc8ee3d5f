//! Pipelined ordering, for the one process that owns every channel (the local edge): a
//! channel's stores proceed together (the store can group them into one durable write) and its
//! sequencer task dispatches them strictly in seq order afterwards.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{Mutex, mpsc, oneshot};

use super::{Committing, HoldInner, Publisher};
use crate::channel::ChannelKey;
use crate::message::{NewMessage, StoredMessage};
use crate::store::StoreError;

/// How long a dispatch waits for the previous seq before going ahead (that message stays in
/// history; subscribers fill the gap from there). Only a bug or a stalled task gets here.
const TURN_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// A channel's dispatch turnstile (pipelined ordering).
///
/// The channel's appends, in the order they were handed to the store, go to one sequencer task
/// that awaits them all and dispatches them in seq order. When a group commit completes, the
/// sequencer wakes once and finds all of its messages stored: they go out as one batch, and
/// those stored while a batch is being delivered go out together in the next. The busier the
/// channel, the larger its batches, and no commit waits for another task to take its turn.
#[derive(Debug, Default)]
pub(super) struct Turn {
    /// Held while dispatching, and by a [`Hold`](super::Hold).
    state: Arc<Mutex<TurnState>>,
    /// `state.next` has been read from the store.
    started: std::sync::atomic::AtomicBool,
    /// The sequencer's queue, once it runs. It stops when the turnstile is forgotten.
    sequencer: std::sync::Mutex<Option<mpsc::UnboundedSender<InFlight>>>,
}

#[derive(Debug, Default)]
pub(super) struct TurnState {
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

/// The turnstiles of the channels with a commit or a hold under way; an idle channel's is
/// forgotten (and its next seq read from the store again when next used).
#[derive(Debug, Default)]
pub(super) struct Turnstiles(std::sync::Mutex<HashMap<ChannelKey, Arc<Turn>>>);

impl Turnstiles {
    fn get(&self, key: &ChannelKey) -> Arc<Turn> {
        let mut turns = self.0.lock().unwrap_or_else(|p| p.into_inner());
        turns.entry(key.clone()).or_default().clone()
    }

    /// Forgets an idle channel's turnstile.
    pub(super) fn release(&self, key: &ChannelKey, turn: Arc<Turn>) {
        let mut turns = self.0.lock().unwrap_or_else(|p| p.into_inner());
        drop(turn);
        if turns.get(key).is_some_and(|t| Arc::strong_count(t) == 1) {
            turns.remove(key);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl Publisher {
    /// Hands the message to the store and queues it for the channel's sequencer.
    pub(super) async fn begin_pipelined(
        self: &Arc<Self>,
        key: &ChannelKey,
        message: NewMessage,
    ) -> Result<Committing, StoreError> {
        let turn = self.turns.get(key);
        self.first_turn(key, &turn).await?;
        let (finished, committed) = oneshot::channel();
        {
            // Handed to the store and queued for the sequencer together: the sequencer hears
            // of appends in the order the store took them.
            let mut sequencer = turn.sequencer.lock().unwrap_or_else(|p| p.into_inner());
            let queue = sequencer.get_or_insert_with(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(self.clone().sequence(key.clone(), turn.state.clone(), rx));
                tx
            });
            let append = self.history.clone().append_started(key.clone(), message);
            // The sequencer runs until every sender is gone, so this cannot fail; were it to,
            // the caller hears that the commit was abandoned.
            let _ = queue.send(InFlight {
                append,
                finished,
                turn: turn.clone(),
            });
        }
        self.turns.release(key, turn);
        Ok(Box::pin(async move {
            committed
                .await
                .map_err(|_| StoreError::Backend("the commit was abandoned".into()))?
        }))
    }

    /// The channel's turnstile, held: nothing is dispatched until the hold drops.
    pub(super) async fn hold_pipelined(
        &self,
        key: &ChannelKey,
    ) -> Result<(HoldInner<'_>, u64), StoreError> {
        let turn = self.turns.get(key);
        self.first_turn(key, &turn).await?;
        let guard = turn.state.clone().lock_owned().await;
        let seq = guard.next.map_or(0, |n| n.saturating_sub(1));
        Ok((
            HoldInner::Turn {
                publisher: self,
                key: key.clone(),
                turn: Some(turn),
                guard: Some(guard),
            },
            seq,
        ))
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
                self.turns.release(key, turn);
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
            self.turns.release(key, turn);
        }
        for (finished, message) in callers.into_iter().zip(messages) {
            let _ = finished.send(Ok(message));
        }
    }
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;

    use super::*;
    use crate::publish::tests::{key, message};
    use crate::publish::{DispatchError, Dispatcher, Ordering};
    use crate::store::HistoryStore;
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

    /// A pipelined publisher over `store`, dispatching to `dispatcher`.
    fn pipelined(store: Arc<MemoryStore>, dispatcher: Arc<dyn Dispatcher>) -> Arc<Publisher> {
        Arc::new(Publisher::with_ordering(
            store,
            dispatcher,
            Ordering::Pipelined,
        ))
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
        assert!(publisher.turns.len() <= 1);
    }

    // Paused time: the sleeps below end once every task has gone as far as it can.
    #[tokio::test(start_paused = true)]
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

    #[tokio::test(start_paused = true)]
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
        assert!(publisher.turns.len() == 0);
    }
}
