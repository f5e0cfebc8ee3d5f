//! What a store operation can fail with.

use thiserror::Error;

use crate::ids::ConnectionId;

/// A storage failure.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The connection has no record (it disconnected, or its record expired).
    #[error("connection {0} is not known")]
    UnknownConnection(ConnectionId),
    /// The connection already has the most subscriptions it may have.
    #[error("a connection may hold at most {max} subscriptions")]
    TooManySubscriptions { max: usize },
    /// The backend failed; the operation may or may not have taken effect unless the method's
    /// documentation says it is atomic.
    #[error("store backend failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A message with the same publisher-given id was committed to the channel within the dedup
    /// window (see [`NewMessage::dedup_window_ms`](crate::message::NewMessage::dedup_window_ms)):
    /// nothing was stored, no seq was taken, and `seq` is the first one's.
    #[error("message {id} was already committed as seq {seq}")]
    Duplicate { id: String, seq: u64 },
    /// Stored data could not be decoded.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend(Box::new(e))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
