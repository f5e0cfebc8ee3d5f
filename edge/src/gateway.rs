//! The edge's connection table: the in-process [`Gateway`] the handlers post through, and what
//! the local @connections API serves.
//!
//! Each connection has a bounded outbound queue. A post that finds it full closes the connection
//! with [`CloseCode::SlowConsumer`] instead of buffering without bound or making the poster wait:
//! one slow reader never holds up a channel.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use axum::extract::ws::{Message, Utf8Bytes};
use echo_core::clock::Clock;
use echo_core::gateway::{ConnectionInfo, Frame, Gateway, GatewayError, Identity};
use echo_core::ids::ConnectionId;
use echo_core::protocol::CloseCode;

use crate::outbox::{Outbox, PushError};

/// One connection's end of the table.
pub struct ConnHandle {
    /// Read by the connection's writer, which [`close`](Self::close) interrupts.
    pub outbox: Outbox,
    close_reason: Mutex<Option<(CloseCode, String)>>,
    connected_at: u64,
    last_active: AtomicU64,
    identity: Identity,
}

impl ConnHandle {
    /// Asks the connection to close; the first reason given wins, and `close_reason` tells it.
    pub fn close(&self, code: CloseCode, reason: &str) {
        let mut r = self.close_reason.lock().unwrap_or_else(|p| p.into_inner());
        if r.is_none() {
            *r = Some((code, reason.to_owned()));
        }
        drop(r);
        self.outbox.interrupt();
    }

    pub fn close_reason(&self) -> Option<(CloseCode, String)> {
        self.close_reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn touch(&self, now_ms: u64) {
        self.last_active.store(now_ms, Ordering::Relaxed);
    }

    pub fn last_active(&self) -> u64 {
        self.last_active.load(Ordering::Relaxed)
    }

    /// Queues a text frame, as a post to this connection does (a full outbox closes it).
    pub fn send_text(&self, text: String) -> Result<(), GatewayError> {
        self.send(Message::Text(text.into()))
    }

    fn send(&self, message: Message) -> Result<(), GatewayError> {
        self.sent(self.outbox.push(message))
    }

    fn send_all(
        &self,
        messages: impl ExactSizeIterator<Item = Message> + Clone,
    ) -> Result<(), GatewayError> {
        self.sent(self.outbox.push_all(messages))
    }

    fn sent(&self, pushed: Result<(), PushError>) -> Result<(), GatewayError> {
        match pushed {
            Ok(()) => Ok(()),
            Err(PushError::Full) => {
                self.close(
                    CloseCode::SlowConsumer,
                    "slow consumer: outbound queue full",
                );
                Err(GatewayError::Overloaded)
            }
            Err(PushError::Closed) => Err(GatewayError::Gone),
        }
    }
}

/// The connection table.
pub struct LocalGateway {
    conns: RwLock<HashMap<ConnectionId, Arc<ConnHandle>>>,
    clock: Arc<dyn Clock>,
    queue: usize,
    queue_bytes: usize,
    max_frame: usize,
}

impl LocalGateway {
    /// `queue` frames at most wait for each connection; a post of a frame over `max_frame`
    /// bytes is refused, as API Gateway refuses one over 128 KB.
    pub fn new(clock: Arc<dyn Clock>, queue: usize, max_frame: usize) -> Self {
        Self {
            conns: RwLock::new(HashMap::new()),
            clock,
            queue: queue.max(1),
            queue_bytes: crate::settings::DEFAULT_OUTBOUND_QUEUE_BYTES,
            max_frame,
        }
    }

    /// At most `bytes` of frames wait for each connection (besides the frame bound).
    pub fn with_queue_bytes(mut self, bytes: usize) -> Self {
        self.queue_bytes = bytes;
        self
    }

    /// Refuses a frame API Gateway would not carry. Echo builds none; should one appear, it is
    /// a bug to see in the log, and the client gets nothing rather than a frame AWS would drop.
    fn check_size(&self, frame: &Frame) -> Result<(), GatewayError> {
        if frame.len() > self.max_frame {
            tracing::error!(
                len = frame.len(),
                max = self.max_frame,
                "refused to post a frame over the message limit"
            );
            return Err(GatewayError::TooLarge);
        }
        Ok(())
    }

    /// Adds a connection; returns its handle, whose outbox the connection's writer drains.
    pub fn register(&self, id: ConnectionId, identity: Identity) -> Arc<ConnHandle> {
        let now = self.clock.now_ms();
        let handle = Arc::new(ConnHandle {
            outbox: Outbox::new(self.queue, self.queue_bytes),
            close_reason: Mutex::new(None),
            connected_at: now,
            last_active: AtomicU64::new(now),
            identity,
        });
        self.write().insert(id, handle.clone());
        handle
    }

    pub fn unregister(&self, id: &ConnectionId) {
        self.write().remove(id);
    }

    pub fn get(&self, id: &ConnectionId) -> Option<Arc<ConnHandle>> {
        self.read().get(id).cloned()
    }

    /// The connections currently open.
    pub fn ids(&self) -> Vec<ConnectionId> {
        self.read().keys().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Closes every connection (edge shutdown).
    pub fn close_all(&self, code: CloseCode, reason: &str) {
        for handle in self.read().values() {
            handle.close(code, reason);
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<ConnectionId, Arc<ConnHandle>>> {
        self.conns.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<ConnectionId, Arc<ConnHandle>>> {
        self.conns.write().unwrap_or_else(|p| p.into_inner())
    }
}

fn text(frame: &Frame) -> Result<Utf8Bytes, GatewayError> {
    Utf8Bytes::try_from(frame.bytes().clone()).map_err(|e| GatewayError::Other(Box::new(e)))
}

/// ISO 8601 with milliseconds, as API Gateway reports connection times.
pub fn iso8601(ms: u64) -> String {
    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .to_string()
}

#[async_trait]
impl Gateway for LocalGateway {
    async fn post(&self, id: &ConnectionId, frame: &Frame) -> Result<(), GatewayError> {
        let handle = self.get(id).ok_or(GatewayError::Gone)?;
        self.check_size(frame)?;
        handle.send(Message::Text(text(frame)?))
    }

    async fn post_many(
        &self,
        ids: &[ConnectionId],
        frame: &Frame,
    ) -> Vec<(ConnectionId, GatewayError)> {
        self.post_many_frames(ids, std::slice::from_ref(frame))
            .await
    }

    /// Each connection gets all the frames in one push: its writer sends them in one write.
    async fn post_many_frames(
        &self,
        ids: &[ConnectionId],
        frames: &[Frame],
    ) -> Vec<(ConnectionId, GatewayError)> {
        if frames.iter().any(|f| self.check_size(f).is_err()) {
            return ids
                .iter()
                .map(|id| (id.clone(), GatewayError::TooLarge))
                .collect();
        }
        let texts = match frames.iter().map(text).collect::<Result<Vec<_>, _>>() {
            Ok(t) => t,
            Err(_) => {
                return ids
                    .iter()
                    .map(|id| (id.clone(), GatewayError::Other("frame is not UTF-8".into())))
                    .collect();
            }
        };
        let conns = self.read();
        let mut failed = Vec::new();
        for id in ids {
            let result = match conns.get(id) {
                Some(handle) => handle.send_all(texts.iter().cloned().map(Message::Text)),
                None => Err(GatewayError::Gone),
            };
            if let Err(e) = result {
                failed.push((id.clone(), e));
            }
        }
        failed
    }

    async fn close(&self, id: &ConnectionId) -> Result<(), GatewayError> {
        let handle = self.get(id).ok_or(GatewayError::Gone)?;
        handle.close(CloseCode::ClosedByServer, "closed by the server");
        Ok(())
    }

    async fn end(
        &self,
        id: &ConnectionId,
        code: CloseCode,
        reason: &str,
    ) -> Result<(), GatewayError> {
        let handle = self.get(id).ok_or(GatewayError::Gone)?;
        handle.close(code, reason);
        Ok(())
    }

    async fn info(&self, id: &ConnectionId) -> Result<ConnectionInfo, GatewayError> {
        let handle = self.get(id).ok_or(GatewayError::Gone)?;
        Ok(ConnectionInfo {
            connected_at: iso8601(handle.connected_at),
            last_active_at: iso8601(handle.last_active()),
            identity: handle.identity.clone(),
        })
    }
}
