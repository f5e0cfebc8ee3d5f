//! Group commit: one committer thread writes every append waiting at that moment in one durable
//! transaction, in arrival order, so a busy channel is not limited to one disk flush a message.

use std::collections::HashMap;
use std::future::Future;

use echo_core::channel::{ChannelKey, ChannelName};
use echo_core::message::{NewMessage, StoredMessage};
use echo_core::store::{StoreError, StoreResult};
use redb::{Database, ReadableTable};
use tokio::sync::oneshot;

use super::dedup::Ids;
use super::{MESSAGES, RedbStore, SEQS};

/// A commit taking this long is logged: every publish on the edge waits for it.
const SLOW_COMMIT: std::time::Duration = std::time::Duration::from_millis(100);

/// Most appends in one transaction.
const MAX_BATCH: usize = 1024;

/// An append waiting for the committer.
pub(super) struct Append {
    entry: Entry,
    reply: oneshot::Sender<StoreResult<StoredMessage>>,
}

/// What an append stores.
struct Entry {
    key: String,
    channel: ChannelName,
    message: NewMessage,
}

/// Commits appends until every store handle is dropped: the first waiting one and whatever else
/// is queued by then, in one transaction, in arrival order.
pub(super) fn commit_loop(db: &Database, queue: &std::sync::mpsc::Receiver<Append>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(a) => batch.push(a),
                Err(_) => break,
            }
        }
        let (entries, replies): (Vec<Entry>, Vec<_>) =
            batch.into_iter().map(|a| (a.entry, a.reply)).unzip();
        let started = std::time::Instant::now();
        let committed = commit_batch(db, entries);
        let took = started.elapsed();
        if took >= SLOW_COMMIT {
            tracing::warn!(
                ms = took.as_millis() as u64,
                appends = replies.len(),
                "slow commit"
            );
        }
        match committed {
            Ok(stored) => {
                for (reply, s) in replies.into_iter().zip(stored) {
                    let _ = reply.send(s);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, appends = replies.len(), "could not commit messages");
                let message = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Backend(message.clone().into())));
                }
            }
        }
    }
}

/// Assigns each append the next seq of its channel and stores it, or answers it as a duplicate
/// of one committed before (in this batch too); all or nothing.
fn commit_batch(db: &Database, batch: Vec<Entry>) -> StoreResult<Vec<StoreResult<StoredMessage>>> {
    let txn = db.begin_write().map_err(StoreError::backend)?;
    let mut out = Vec::with_capacity(batch.len());
    {
        let mut seqs = txn.open_table(SEQS).map_err(StoreError::backend)?;
        let mut messages = txn.open_table(MESSAGES).map_err(StoreError::backend)?;
        let mut ids = Ids::open(&txn)?;
        let mut latest: HashMap<String, u64> = HashMap::new();
        for entry in batch {
            if let Some(seq) = ids.first(&entry.key, &entry.message)? {
                out.push(Err(StoreError::Duplicate {
                    id: entry.message.id,
                    seq,
                }));
                continue;
            }
            let seq = match latest.get(&entry.key) {
                Some(s) => *s,
                None => seqs
                    .get(entry.key.as_str())
                    .map_err(StoreError::backend)?
                    .map(|g| g.value())
                    .unwrap_or(0),
            } + 1;
            ids.remember(&entry.key, &entry.message, seq)?;
            let stored = StoredMessage::new(entry.channel, seq, entry.message);
            let bytes = serde_json::to_vec(&stored).map_err(StoreError::backend)?;
            messages
                .insert((entry.key.as_str(), seq), bytes.as_slice())
                .map_err(StoreError::backend)?;
            latest.insert(entry.key, seq);
            out.push(Ok(stored));
        }
        for (key, seq) in &latest {
            seqs.insert(key.as_str(), *seq)
                .map_err(StoreError::backend)?;
        }
    }
    txn.commit().map_err(StoreError::backend)?;
    Ok(out)
}

impl RedbStore {
    /// Hands an append to the committer now; the returned future resolves once it is durable.
    pub(super) fn enqueue(
        &self,
        key: &ChannelKey,
        message: NewMessage,
    ) -> impl Future<Output = StoreResult<StoredMessage>> + Send + 'static {
        let (reply, answer) = oneshot::channel();
        let sent = self
            .appends
            .as_ref()
            .ok_or_else(|| StoreError::Backend("the store is closed".into()))
            .and_then(|q| {
                q.send(Append {
                    entry: Entry {
                        key: key.encode(),
                        channel: key.channel.clone(),
                        message,
                    },
                    reply,
                })
                .map_err(|_| StoreError::Backend("the store is closed".into()))
            });
        async move {
            sent?;
            answer
                .await
                .map_err(|_| StoreError::Backend("the store is closed".into()))?
        }
    }
}
