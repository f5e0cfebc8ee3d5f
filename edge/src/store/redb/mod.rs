//! History, sequences and associations in a redb file: embedded, crash-safe (every commit is
//! durable before it returns), nothing to install.
//!
//! Appends go through one committer thread that writes everything waiting in one transaction:
//! under load, many messages share one durable commit (group commit), and a busy channel is not
//! limited to one disk flush per message.
//!
//! Tables: `seqs` (channel key to last seq), `messages` ((channel key, seq) to the message as
//! JSON), `meta` (the associations document), and `dedup`'s publisher-given ids.
//!
//! This file opens the store; `commit` is the group commit, `dedup` the ids it checks,
//! `history` the
//! [`HistoryStore`](echo_core::store::HistoryStore), `associations` the
//! [`AssociationsStore`](echo_core::store::AssociationsStore).

mod associations;
mod commit;
mod dedup;
mod history;

use std::path::Path;
use std::sync::Arc;

use echo_core::message::StoredMessage;
use echo_core::store::{StoreError, StoreResult};
use redb::{Database, TableDefinition};

use commit::{Append, commit_loop};

const SEQS: TableDefinition<&str, u64> = TableDefinition::new("seqs");
const MESSAGES: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("messages");
const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
const ASSOCIATIONS_KEY: &str = "associations";

/// Memory for the store's page cache (redb's default is 1 GiB).
const CACHE_BYTES: usize = 64 * 1024 * 1024;

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
        txn.open_table(dedup::IDS).map_err(StoreError::backend)?;
        txn.open_table(dedup::ID_EXPIRIES)
            .map_err(StoreError::backend)?;
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

fn decode(bytes: &[u8]) -> StoreResult<StoredMessage> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use echo_core::channel::ChannelKey;
    use echo_core::message::NewMessage;
    use echo_core::store::{AssociationsStore, HistoryStore};

    use super::history::prune_before;
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
            dedup_window_ms: None,
        };
        store.append(&key, msg("a")).await.unwrap();
        drop(store);
        let store = RedbStore::open(&path).unwrap();
        assert_eq!(store.latest_seq(&key).await.unwrap(), 1);
        assert_eq!(store.append(&key, msg("b")).await.unwrap().seq, 2);
        assert!(store.load_associations().await.unwrap().is_some());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn ids_are_forgotten_once_their_window_ends() {
        use redb::{ReadableDatabase, ReadableTable};
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("echo.redb")).unwrap();
        let key = ChannelKey::decode("app/room").unwrap();
        let once = |id: &str, ts: u64| NewMessage {
            id: id.into(),
            data: serde_json::json!(id),
            from: "u".into(),
            ts,
            dedup_window_ms: Some(1_000),
        };
        // Windows ending at 1,000, 2,000 and 3,000 (the first id repeated in its window).
        store.append(&key, once("a", 0)).await.unwrap();
        store.append(&key, once("b", 1_000)).await.unwrap();
        store.append(&key, once("c", 2_000)).await.unwrap();
        assert!(store.append(&key, once("a", 999)).await.is_err());
        assert_eq!(
            super::dedup::forget_expired(&store.db, 2_000, 1).unwrap(),
            2
        );
        assert_eq!(
            super::dedup::forget_expired(&store.db, 2_000, 1).unwrap(),
            0
        );
        let txn = store.db.begin_read().unwrap();
        let ids = txn.open_table(super::dedup::IDS).unwrap();
        let left: Vec<String> = ids
            .iter()
            .unwrap()
            .map(|e| e.unwrap().0.value().1.to_owned())
            .collect();
        assert_eq!(left, ["c"]);
        // Forgotten, "a" is a new message.
        assert_eq!(store.append(&key, once("a", 2_500)).await.unwrap().seq, 4);
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
            dedup_window_ms: None,
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
