//! The gateway port: sending frames to connections and closing them.
//!
//! On AWS this is API Gateway's management API (`POST`/`GET`/`DELETE /@connections/{id}`); locally
//! it is the edge's own connection table, which also serves that API over HTTP.

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::ids::ConnectionId;

/// An encoded text frame. Cheap to clone: fan-out encodes a message once and hands the same bytes
/// to every subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame(Bytes);

impl Frame {
    pub fn text(s: String) -> Self {
        Self(Bytes::from(s))
    }

    /// Frames must be UTF-8 text; anything else is refused.
    pub fn from_bytes(b: Bytes) -> Result<Self, std::str::Utf8Error> {
        std::str::from_utf8(&b)?;
        Ok(Self(b))
    }

    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_str(&self) -> &str {
        // Constructed only from String or checked bytes.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// Why a post or close failed.
#[derive(Debug, Error)]
pub enum GatewayError {
    /// The connection no longer exists (HTTP 410): its records should be deleted.
    #[error("connection is gone")]
    Gone,
    /// The gateway refused for load (HTTP 429, `LimitExceededException`); retrying later may work.
    #[error("gateway throttled the request")]
    Throttled,
    /// The frame is over the gateway's message limit (HTTP 413, `PayloadTooLargeException`):
    /// nothing was sent. Echo never builds such a frame; this is the gateway holding the line.
    #[error("frame is over the gateway's message limit")]
    TooLarge,
    /// The connection could not take more (its outbound queue is full); it is being closed.
    #[error("connection is not keeping up and is being closed")]
    Overloaded,
    #[error("gateway request failed: {0}")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// What the gateway knows of a connection (API Gateway's `GET /@connections/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionInfo {
    /// ISO 8601, as API Gateway returns it.
    pub connected_at: String,
    pub last_active_at: String,
    pub identity: Identity,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    pub source_ip: String,
    pub user_agent: String,
}

/// Sends frames to connections and closes them.
///
/// Posts to one connection arrive in the order they were made. A post that returns `Ok` was
/// accepted by the gateway, not necessarily read by the client.
#[async_trait]
pub trait Gateway: Send + Sync + 'static {
    async fn post(&self, id: &ConnectionId, frame: &Frame) -> Result<(), GatewayError>;

    /// Posts one frame to many connections; returns the failures. Implementations may post
    /// concurrently (bounded) and should encode or copy the frame as little as possible.
    async fn post_many(
        &self,
        ids: &[ConnectionId],
        frame: &Frame,
    ) -> Vec<(ConnectionId, GatewayError)> {
        let mut failed = Vec::new();
        for id in ids {
            if let Err(e) = self.post(id, frame).await {
                failed.push((id.clone(), e));
            }
        }
        failed
    }

    /// Posts several frames, in order, to many connections; returns the failures, at most one
    /// per connection. A gateway that can hand a connection all its frames at once (the local
    /// edge) sends them in one write; the default posts one frame at a time.
    async fn post_many_frames(
        &self,
        ids: &[ConnectionId],
        frames: &[Frame],
    ) -> Vec<(ConnectionId, GatewayError)> {
        let mut failed: Vec<(ConnectionId, GatewayError)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for frame in frames {
            for (id, e) in self.post_many(ids, frame).await {
                if seen.insert(id.clone()) {
                    failed.push((id, e));
                }
            }
        }
        failed
    }

    async fn close(&self, id: &ConnectionId) -> Result<(), GatewayError>;

    /// Closes the connection with `code` and `reason` where the gateway can send them (the
    /// local edge); API Gateway's close carries neither, so by default this is [`Self::close`].
    async fn end(
        &self,
        id: &ConnectionId,
        code: crate::protocol::CloseCode,
        reason: &str,
    ) -> Result<(), GatewayError> {
        let _ = (code, reason);
        self.close(id).await
    }

    async fn info(&self, id: &ConnectionId) -> Result<ConnectionInfo, GatewayError>;
}
