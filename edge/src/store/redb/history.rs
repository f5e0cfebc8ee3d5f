//! The [`HistoryStore`]: appends through the committer, ranges and the latest seq read in
//! blocking tasks, pruning in chunks.

use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use echo_core::channel::ChannelKey;
use echo_core::clock::{Clock, SystemClock};
use echo_core::message::{NewMessage, StoredMessage};
use echo_core::store::{
    HistoryPage, HistoryStore, PageBuilder, PageLimit, StoreError, StoreResult,
};
use redb::{Database, ReadableDatabase, ReadableTable};

use super::dedup::forget_expired;
use super::{MESSAGES, RedbStore, SEQS, decode};

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

    async fn page(
        &self,
        key: &ChannelKey,
        since: u64,
        limit: PageLimit,
    ) -> StoreResult<HistoryPage> {
        let k = key.encode();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(StoreError::backend)?;
            let messages = txn.open_table(MESSAGES).map_err(StoreError::backend)?;
            let mut page = PageBuilder::new(limit);
            let Some(from) = since.checked_add(1) else {
                return Ok(page.finish());
            };
            // Values are the messages' JSON: their length is the encoded size, known before
            // decoding, so a full page stops the walk without decoding what is left out.
            for entry in messages
                .range((k.as_str(), from)..=(k.as_str(), u64::MAX))
                .map_err(StoreError::backend)?
            {
                let (_, v) = entry.map_err(StoreError::backend)?;
                let bytes = v.value();
                if !page.has_room(bytes.len()) {
                    break;
                }
                page.push(decode(bytes)?, bytes.len());
            }
            Ok(page.finish())
        })
        .await
    }

    /// Per channel, from its oldest message up to the first one young enough to keep, a few
    /// thousand removals per transaction: publishes wait for the store only while one chunk
    /// commits, and a long history is not read in full.
    /// Ids past their dedup window are forgotten too (by the wall clock, as they were stamped).
    async fn prune(&self, before_ts: u64) -> StoreResult<u64> {
        let now_ms = SystemClock.now_ms();
        self.blocking(move |db| {
            forget_expired(db, now_ms, PRUNE_CHUNK)?;
            prune_before(db, before_ts, PRUNE_CHUNK)
        })
        .await
    }
}

/// Most messages one pruning transaction removes.
pub(super) const PRUNE_CHUNK: usize = 4096;

/// Removes each channel's messages older than `before_ts`, oldest first, at most `chunk` per
/// transaction. A channel's messages are in seq order, which is publish order: its walk stops
/// at the first message to keep (one published a moment out of order waits for the next prune).
/// A message that cannot be read is removed with the old ones.
pub(super) fn prune_before(db: &Database, before_ts: u64, chunk: usize) -> StoreResult<u64> {
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
