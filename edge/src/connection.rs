//! One client connection, from upgrade to `$disconnect`.
//!
//! The reader hands each frame to the message handler in order and queues the reply; the writer
//! drains the outbound queue. Frames from one connection are handled one at a time, so a
//! client's publishes are committed in the order it sent them.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use base64::Engine;
use echo_core::gateway::{Frame, Gateway};
use echo_core::protocol::CloseCode;
use futures_util::stream::FuturesOrdered;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::events::{self, ConnectionContext};
use crate::gateway::ConnHandle;
use crate::handlers::PendingReply;
use crate::server::State;

/// Frames of one connection whose replies may be outstanding at once (publishes waiting for
/// their commit); the next frame is read when one completes.
const PIPELINE: usize = 64;

/// How long a closing connection may take to flush its close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

pub async fn run(
    socket: WebSocket,
    state: Arc<State>,
    ctx: ConnectionContext,
    handle: Arc<ConnHandle>,
    rx: mpsc::Receiver<Message>,
) {
    let id = ctx.connection_id.clone();
    let (sink, mut stream) = socket.split();
    let writer = tokio::spawn(write(sink, rx, handle.clone()));

    let started = Instant::now();
    let max_age = started + state.config.max_connection_age;
    let mut peer_closed: Option<(u16, String)> = None;
    // Replies in the order their frames came; publishes may still be committing.
    let mut replies: FuturesOrdered<PendingReply> = FuturesOrdered::new();
    loop {
        let idle_deadline = Instant::now()
            + state
                .config
                .idle_timeout
                .saturating_sub(Duration::from_millis(
                    state.clock.now_ms().saturating_sub(handle.last_active()),
                ));
        let next = tokio::select! {
            biased;
            _ = handle.closing.cancelled() => break,
            _ = state.shutdown.cancelled() => {
                handle.close(CloseCode::GoingAway, "server shutting down");
                break;
            }
            _ = tokio::time::sleep_until(idle_deadline) => {
                handle.close(CloseCode::GoingAway, "idle timeout");
                break;
            }
            _ = tokio::time::sleep_until(max_age) => {
                handle.close(CloseCode::GoingAway, "connection reached its maximum age");
                break;
            }
            Some(reply) = replies.next(), if !replies.is_empty() => {
                if let Some(text) = reply {
                    // The reply travels the same queue as deliveries, so it keeps its place in
                    // line.
                    let _ = state.gateway.post(&id, &Frame::text(text)).await;
                }
                continue;
            }
            next = stream.next(), if replies.len() < PIPELINE => next,
        };
        let message = match next {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                tracing::info!(connection_id = %id, error = %e, "connection failed");
                // tungstenite reports an over-limit message or frame as a capacity error,
                // "Message too long" / "Frame too long".
                let capacity = e.to_string().contains("too long");
                if capacity {
                    handle.close(
                        CloseCode::MessageTooBig,
                        "frame exceeds the transport limit",
                    );
                } else {
                    peer_closed = Some((1006, "connection failed".into()));
                }
                break;
            }
            None => {
                peer_closed = Some((1006, "connection lost".into()));
                break;
            }
        };
        handle.touch(state.clock.now_ms());
        let (body, binary) = match message {
            Message::Text(t) => (t.as_str().to_owned(), false),
            Message::Binary(b) => (base64::engine::general_purpose::STANDARD.encode(&b), true),
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Close(frame) => {
                peer_closed = Some(match frame {
                    Some(f) => (f.code, f.reason.to_string()),
                    None => (1005, "Client-side close frame status not set".into()),
                });
                break;
            }
        };
        let event = events::message(&ctx, body, binary, state.clock.now_ms());
        replies.push_back(state.handlers.start_message(&event).await);
    }

    // Stop routing to this connection before it is forgotten, then tell the handlers.
    state.gateway.unregister(&id);
    state.limiter.forget(&id);
    let (code, reason) = match (peer_closed, handle.close_reason()) {
        (Some(peer), _) => peer,
        (None, Some((code, reason))) => (code.code(), reason),
        (None, None) => (1000, String::new()),
    };
    handle.closing.cancel();
    let event = events::disconnect(&ctx, code, &reason, state.clock.now_ms());
    state.handlers.connect(&event).await;
    if tokio::time::timeout(CLOSE_GRACE, writer).await.is_err() {
        tracing::debug!(connection_id = %id, "writer did not finish in time");
    }
    tracing::debug!(connection_id = %id, code, reason, "connection closed");
}

/// Most frames written before a flush: a burst of deliveries becomes one write, and no frame
/// waits behind more than this many.
const BURST: usize = 64;

/// Writes `first` and whatever else is already queued (up to [`BURST`]), then flushes.
async fn write_burst(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    first: Message,
    rx: &mut mpsc::Receiver<Message>,
) -> Result<(), axum::Error> {
    sink.feed(first).await?;
    // Let the other tasks the same publish woke run first: under load, more frames are queued by
    // the time this one writes, and go out in the same write.
    tokio::task::yield_now().await;
    for _ in 1..BURST {
        match rx.try_recv() {
            Ok(m) => sink.feed(m).await?,
            Err(_) => break,
        }
    }
    sink.flush().await
}

async fn write(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Message>,
    handle: Arc<ConnHandle>,
) {
    loop {
        tokio::select! {
            biased;
            _ = handle.closing.cancelled() => break,
            m = rx.recv() => match m {
                Some(m) => {
                    if write_burst(&mut sink, m, &mut rx).await.is_err() {
                        handle.closing.cancel();
                        return;
                    }
                }
                None => break,
            }
        }
    }
    // Send what is already queued unless the connection is being dropped for not reading, then
    // the close frame; both bounded in time.
    let (code, reason) = handle
        .close_reason()
        .unwrap_or((CloseCode::Normal, String::new()));
    let flush = async {
        if code != CloseCode::SlowConsumer {
            while let Ok(m) = rx.try_recv() {
                if sink.send(m).await.is_err() {
                    return;
                }
            }
        }
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code: code.code(),
                reason: reason.into(),
            })))
            .await;
        let _ = sink.close().await;
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, flush).await;
}
