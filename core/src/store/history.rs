//! Channel sequence numbers and stored messages.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;

use super::error::StoreResult;
use super::page::{HistoryPage, PageLimit};
use crate::channel::ChannelKey;
use crate::message::{NewMessage, StoredMessage};

/// Channel sequence numbers and stored messages.
///
/// `append` assigns the channel's next seq atomically: concurrent appends to one channel get
/// distinct, increasing seqs, and a seq is never handed out twice, even across restarts. Once
/// `append` returns, the message is durable (it survives a crash of the process).
#[async_trait]
pub trait HistoryStore: Send + Sync + 'static {
    async fn append(&self, key: &ChannelKey, message: NewMessage) -> StoreResult<StoredMessage>;

    /// Starts an append and returns its completion. Stores that can (the embedded store) take
    /// the message in when this is called, so successive calls get increasing seqs in call order
    /// even if their completions are awaited later or together; the default starts the append
    /// when the returned future is first polled.
    fn append_started(
        self: Arc<Self>,
        key: ChannelKey,
        message: NewMessage,
    ) -> Pin<Box<dyn Future<Output = StoreResult<StoredMessage>> + Send>> {
        Box::pin(async move { self.append(&key, message).await })
    }

    /// The last seq handed out on the channel, 0 if none.
    async fn latest_seq(&self, key: &ChannelKey) -> StoreResult<u64>;

    /// Stored messages with seq greater than `since`, oldest first, within `limit` (see
    /// [`PageBuilder`]), and whether more follow.
    async fn page(
        &self,
        key: &ChannelKey,
        since: u64,
        limit: PageLimit,
    ) -> StoreResult<HistoryPage>;

    /// Stored messages with seq greater than `since`, oldest first, at most `limit`.
    async fn range(
        &self,
        key: &ChannelKey,
        since: u64,
        limit: usize,
    ) -> StoreResult<Vec<StoredMessage>> {
        Ok(self
            .page(key, since, PageLimit::count(limit))
            .await?
            .messages)
    }

    /// Deletes messages older than `before_ts` (milliseconds); returns how many. Sequence numbers
    /// are kept: a channel whose history is pruned continues from its last seq.
    async fn prune(&self, before_ts: u64) -> StoreResult<u64>;
}
