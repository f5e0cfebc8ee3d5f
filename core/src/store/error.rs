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
