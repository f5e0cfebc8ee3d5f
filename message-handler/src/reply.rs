//! The answer to a frame: ready at once, or a publish's ack once its commit is in.

use std::future::Future;
use std::pin::Pin;

use echo_core::ids::ConnectionId;
use echo_core::protocol::{ErrorCode, ProtocolError, ServerFrame};

/// The reply to a frame: ready, or a publish whose commit is under way.
pub enum Reply {
    Ready(Option<ServerFrame>),
    /// Resolves to the ack (or error) once the message is stored and dispatched.
    Pending(Pin<Box<dyn Future<Output = Option<ServerFrame>> + Send>>),
}

impl Reply {
    pub async fn resolve(self) -> Option<ServerFrame> {
        match self {
            Self::Ready(frame) => frame,
            Self::Pending(pending) => pending.await,
        }
    }
}

/// Logs `e` and answers `internal`: the client learns that Echo failed, not how.
pub(crate) fn internal(id: &ConnectionId, what: &str, e: &dyn std::error::Error) -> ProtocolError {
    tracing::error!(connection_id = %id, error = %e, "{what}");
    ProtocolError::new(ErrorCode::Internal, what)
}
