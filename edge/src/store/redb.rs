//! History, sequences and associations in a redb file: embedded, crash-safe (every commit is
//! durable before it returns), nothing to install.
//!
//! Appends go through one committer thread that writes everything waiting in one transaction:
//! under load, many messages share one durable commit (group commit), and a busy channel is not
//! limited to one disk flush per message.
//!
//! Tables: `seqs` (channel key to last seq), `messages` ((channel key, seq) to the message as
//! JSON), `meta` (the associations document).

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use echo_core::channel::{ChannelKey, ChannelName};
use echo_core::message::{NewMessage, StoredMessage};
use echo_core::store::{AssociationsStore, HistoryStore, StoreError, StoreResult};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::oneshot;

const SEQS: TableDefinition<&str, u64> = TableDefinition::new("seqs");
const MESSAGES: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("messages");
const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
const ASSOCIATIONS_KEY: &str = "associations";

/// Memory for the store's page cache (redb's default is 1 GiB).
const CACHE_BYTES: usize = 64 * 1024 * 1024;

/// A commit taking this long is logged: every publish on the edge waits for it.
const SLOW_COMMIT: std::time::Duration = std::time::Duration::from_millis(100);

/// Most appends in one transaction.
const MAX_BATCH: usize = 1024;

/// An append waiting for the committer.
struct Append {
    entry: Entry,
    reply: oneshot::Sender<StoreResult<StoredMessage>>,
}

/// What an append stores.
struct Entry {
    key: String,
    channel: ChannelName,
    message: NewMessage,
}

/// The embedded store. Dropping it waits for the committer, so the file can be opened again
/// at once.
pub struct RedbStore {
    db: Arc<Database>,
    /// `None` only while dropping.
    appends: Option<std::sync::mpsc::Sender<Append>>,
    committer: Option<std::thread::JoinHandle<()>>,
}

impl Drop for RedbStore {
    fn drop(&mut self) {
        self.appends = None;
        if let Some(t) = self.committer.take() {
            let _ = t.join();
        }
    }
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedbStore { .. }")
    }
}

impl RedbStore {
    /// Opens (or creates) the store at `path`. Fails if another process has it open.
    pub fn open(path: &Path) -> StoreResult<Self> {
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(StoreError::backend)?;
        let txn = db.begin_write().map_err(StoreError::backend)?;
        txn.open_table(SEQS).map_err(StoreError::backend)?;
        txn.open_table(MESSAGES).map_err(StoreError::backend)?;
        txn.open_table(META).map_err(StoreError::backend)?;
        txn.commit().map_err(StoreError::backend)?;
        let db = Arc::new(db);
        let (appends, queue) = std::sync::mpsc::channel();
        let shared = db.clone();
        let committer = std::thread::Builder::new()
            .name("echo-redb-commit".into())
            .spawn(move || commit_loop(&shared, &queue))
            .map_err(StoreError::backend)?;
        Ok(Self {
            db,
            appends: Some(appends),
            committer: Some(committer),
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(StoreError::backend)?
    }
}

/// Commits appends until every store handle is dropped: the first waiting one and whatever else
/// is queued by then, in one transaction, in arrival order.
fn commit_loop(db: &Database, queue: &std::sync::mpsc::Receiver<Append>) {
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
                    let _ = reply.send(Ok(s));
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

/// Assigns each append the next seq of its channel and stores it; all or nothing.
fn commit_batch(db: &Database, batch: Vec<Entry>) -> StoreResult<Vec<StoredMessage>> {
    let txn = db.begin_write().map_err(StoreError::backend)?;
    let mut out = Vec::with_capacity(batch.len());
    {
        let mut seqs = txn.open_table(SEQS).map_err(StoreError::backend)?;
        let mut messages = txn.open_table(MESSAGES).map_err(StoreError::backend)?;
        let mut latest: HashMap<String, u64> = HashMap::new();
        for entry in batch {
            let seq = match latest.get(&entry.key) {
                Some(s) => *s,
                None => seqs
                    .get(entry.key.as_str())
                    .map_err(StoreError::backend)?
                    .map(|g| g.value())
                    .unwrap_or(0),
            } + 1;
            let stored = StoredMessage::new(entry.channel, seq, entry.message);
            let bytes = serde_json::to_vec(&stored).map_err(StoreError::backend)?;
            messages
                .insert((entry.key.as_str(), seq), bytes.as_slice())
                .map_err(StoreError::backend)?;
            latest.insert(entry.key, seq);
            out.push(stored);
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
    fn enqueue(
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

fn decode(bytes: &[u8]) -> StoreResult<StoredMessage> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[async_trait]
impl HistoryStore for RedbStore {
    async fn append(&self, key: &ChannelKey, message: NewMessage) -> StoreResult<StoredMessage> {
        self.enqueue(key, message).await
    }

    /// Queued for the committer at once: calls get seqs in call order.
    fn append_started(
        self: Arc<Self>,
        key: ChannelKey,
        message: NewMessage,
    ) -> Pin<Box<dyn Future<Output = StoreResult<StoredMessage>> + Send>> {
        Box::pin(self.enqueue(&key, message))
    }

    async fn latest_seq(&self, key: &ChannelKey) -> StoreResult<u64> {
        let k = key.encode();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(StoreError::backend)?;
            let seqs = txn.open_table(SEQS).map_err(StoreError::backend)?;
            Ok(seqs
                .get(k.as_str())
                .map_err(StoreError::backend)?
                .map(|g| g.value())
                .unwrap_or(0))
        })
        .await
    }

    async fn range(
        &self,
        key: &ChannelKey,
        since: u64,
        limit: usize,
    ) -> StoreResult<Vec<StoredMessage>> {
        let k = key.encode();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(StoreError::backend)?;
            let messages = txn.open_table(MESSAGES).map_err(StoreError::backend)?;
            let Some(from) = since.checked_add(1) else {
                return Ok(Vec::new());
            };
            let mut out = Vec::new();
            for entry in messages
                .range((k.as_str(), from)..=(k.as_str(), u64::MAX))
                .map_err(StoreError::backend)?
                .take(limit)
            {
                let (_, v) = entry.map_err(StoreError::backend)?;
                out.push(decode(v.value())?);
            }
            Ok(out)
        })
        .await
    }

    /// Per channel, from its oldest message up to the first one young enough to keep, a few
    /// thousand removals per transaction: publishes wait for the store only while one chunk
    /// commits, and a long history is not read in full.
    async fn prune(&self, before_ts: u64) -> StoreResult<u64> {
        self.blocking(move |db| prune_before(db, before_ts, PRUNE_CHUNK))
            .await
    }
}

/// Most messages one pruning transaction removes.
const PRUNE_CHUNK: usize = 4096;

/// Removes each channel's messages older than `before_ts`, oldest first, at most `chunk` per
/// transaction. A channel's messages are in seq order, which is publish order: its walk stops
/// at the first message to keep (one published a moment out of order waits for the next prune).
/// A message that cannot be read is removed with the old ones.
fn prune_before(db: &Database, before_ts: u64, chunk: usize) -> StoreResult<u64> {
    let mut removed = 0u64;
    // The channel the previous transaction stopped in.
    let mut cursor: Option<String> = None;
    loop {
        let txn = db.begin_write().map_err(StoreError::backend)?;
        let mut budget = chunk.max(1);
        let mut resume = None;
        {
            let seqs = txn.open_table(SEQS).map_err(StoreError::backend)?;
            let mut messages = txn.open_table(MESSAGES).map_err(StoreError::backend)?;
            let channels = match cursor.as_deref() {
                Some(from) => seqs.range(from..),
                None => seqs.range::<&str>(..),
            }
            .map_err(StoreError::backend)?;
            for channel in channels {
                let (key, _) = channel.map_err(StoreError::backend)?;
                let key = key.value();
                let mut old = Vec::new();
                for entry in messages
                    .range((key, 0)..=(key, u64::MAX))
                    .map_err(StoreError::backend)?
                {
                    let (k, v) = entry.map_err(StoreError::backend)?;
                    if old.len() == budget || decode(v.value()).is_ok_and(|m| m.ts >= before_ts) {
                        break;
                    }
                    old.push(k.value().1);
                }
                for seq in &old {
                    messages.remove((key, *seq)).map_err(StoreError::backend)?;
                }
                budget -= old.len();
                removed += old.len() as u64;
                if budget == 0 {
                    resume = Some(key.to_owned());
                    break;
                }
            }
        }
        txn.commit().map_err(StoreError::backend)?;
        match resume {
            Some(key) => cursor = Some(key),
            None => return Ok(removed),
        }
    }
}

#[async_trait]
impl AssociationsStore for RedbStore {
    async fn load_associations(&self) -> StoreResult<Option<String>> {
        self.blocking(|db| {
            let txn = db.begin_read().map_err(StoreError::backend)?;
            let meta = txn.open_table(META).map_err(StoreError::backend)?;
            Ok(meta
                .get(ASSOCIATIONS_KEY)
                .map_err(StoreError::backend)?
                .map(|g| g.value().to_owned()))
        })
        .await
    }

    async fn save_associations(&self, document: &str) -> StoreResult<()> {
        let doc = document.to_owned();
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(StoreError::backend)?;
            txn.open_table(META)
                .map_err(StoreError::backend)?
                .insert(ASSOCIATIONS_KEY, doc.as_str())
                .map_err(StoreError::backend)?;
            txn.commit().map_err(StoreError::backend)?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use echo_core::store::conformance;

    #[tokio::test(flavor = "multi_thread")]
    async fn redb_store_conforms_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("echo.redb");
        let store = RedbStore::open(&path).unwrap();
        conformance::history_store(&store).await;
        conformance::associations_store(&store).await;

        let key = ChannelKey::decode("app/room").unwrap();
        let msg = |id: &str| NewMessage {
            id: id.into(),
            data: serde_json::json!(id),
            from: "u".into(),
            ts: 1,
        };
        store.append(&key, msg("a")).await.unwrap();
        drop(store);
        let store = RedbStore::open(&path).unwrap();
        assert_eq!(store.latest_seq(&key).await.unwrap(), 1);
        assert_eq!(store.append(&key, msg("b")).await.unwrap().seq, 2);
        assert!(store.load_associations().await.unwrap().is_some());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn pruning_in_chunks_removes_every_old_message_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("echo.redb")).unwrap();
        let msg = |ts: u64| NewMessage {
            id: format!("m{ts}"),
            data: serde_json::json!(ts),
            from: "u".into(),
            ts,
        };
        // Channel c0 has 1 message, c1 has 2, ...: old ones at ts 1..=n, one new one each.
        let keys: Vec<ChannelKey> = (0..6)
            .map(|c| ChannelKey::decode(&format!("app/c{c}")).unwrap())
            .collect();
        for (c, key) in keys.iter().enumerate() {
            for ts in 1..=c as u64 {
                store.append(key, msg(ts)).await.unwrap();
            }
            store.append(key, msg(100)).await.unwrap();
        }
        let removed = prune_before(&store.db, 50, 4).unwrap();
        assert_eq!(
            removed,
            (0..6).sum::<u64>(),
            "every old message, over several chunks"
        );
        for (c, key) in keys.iter().enumerate() {
            let left = store.range(key, 0, 100).await.unwrap();
            assert_eq!(
                left.iter().map(|m| (m.seq, m.ts)).collect::<Vec<_>>(),
                vec![(c as u64 + 1, 100)],
                "channel c{c} keeps its newest message and its seq"
            );
        }
        assert_eq!(prune_before(&store.db, 50, 4).unwrap(), 0);
    }
}
