//! Serial ordering: one commit per channel at a time, store then dispatch, under the channel's
//! lock. For processes that share channels with others (the Lambdas).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use tokio::sync::{Mutex, MutexGuard};

use super::{Committing, HoldInner, Publisher};
use crate::channel::ChannelKey;
use crate::message::NewMessage;
use crate::store::StoreError;

const STRIPES: usize = 64;

/// A fixed set of locks, one chosen per channel: bounded memory however many channels exist.
#[derive(Debug)]
pub(crate) struct ChannelLocks {
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
    pub(crate) async fn lock(&self, key: &ChannelKey) -> MutexGuard<'_, ()> {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        self.stripes[(h.finish() as usize) % STRIPES].lock().await
    }
}

impl Publisher {
    /// Stores and dispatches under the channel's lock; complete on return.
    pub(super) async fn begin_serial(
        self: &Arc<Self>,
        key: &ChannelKey,
        message: NewMessage,
    ) -> Result<Committing, StoreError> {
        let _guard = self.locks.lock(key).await;
        let stored = self.history.append(key, message).await?;
        if let Err(e) = self.dispatcher.dispatch(key, &stored).await {
            tracing::error!(channel = %key, seq = stored.seq, error = %e, "dispatch failed; message is in history");
        }
        Ok(Box::pin(std::future::ready(Ok(stored))))
    }

    /// The channel's lock, with the latest seq read under it.
    pub(super) async fn hold_serial(
        &self,
        key: &ChannelKey,
    ) -> Result<(HoldInner<'_>, u64), StoreError> {
        let guard = self.locks.lock(key).await;
        let seq = self.history.latest_seq(key).await?;
        Ok((HoldInner::Lock { _guard: guard }, seq))
    }
}
