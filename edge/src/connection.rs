//! One client connection, from upgrade to `$disconnect`.
//!
//! One task per connection: it hands each frame to the message handler in order, queues the
//! replies, and writes out the connection's outbox (replies and deliveries) in bursts. Frames
//! from one connection are handed over in the order they came, so a client's publishes are
//! committed in the order it sent them.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use base64::Engine;
use echo_core::protocol::{CloseCode, ErrorCode, ProtocolError};
use futures_util::stream::{FuturesOrdered, SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::time::Instant;

use crate::capacity::Slot;
use crate::events::{self, ConnectionContext};
use crate::gateway::ConnHandle;
use crate::handlers::PendingReply;
use crate::outbox::Outbox;
use crate::state::State;

/// Frames of one connection whose replies may be outstanding at once (publishes waiting for
/// their commit); the next frame is read when one completes.
const PIPELINE: usize = 64;

/// How long a closing connection may take to flush its close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Serves a connection until it closes. `slot` is its place in the edge's
/// [`Capacity`](crate::capacity::Capacity), given back when the future completes and the socket
/// is gone. (Passed in rather than held by a wrapping future, which would keep a second copy of
/// the arguments in every connection's task.)
pub fn run(
    socket: WebSocket,
    state: Arc<State>,
    ctx: ConnectionContext,
    handle: Arc<ConnHandle>,
    slot: Slot,
) -> impl std::future::Future<Output = ()> {
    // Split before the connection's future is made: an async fn keeps its arguments for its
    // whole life, and the socket's halves are all it needs.
    let (sink, stream) = socket.split();
    serve(sink, stream, state, ctx, handle, slot)
}

async fn serve(
    mut sink: SplitSink<WebSocket, Message>,
    mut stream: SplitStream<WebSocket>,
    state: Arc<State>,
    ctx: ConnectionContext,
    handle: Arc<ConnHandle>,
    _slot: Slot,
) {
    let id = &ctx.connection_id;
    let outbox = &handle.outbox;

    let idle_deadline = || {
        Instant::now()
            + state
                .config
                .idle_timeout
                .saturating_sub(Duration::from_millis(
                    state.clock.now_ms().saturating_sub(handle.last_active()),
                ))
    };
    let mut peer_closed: Option<(u16, String)> = None;
    // Replies in the order their frames came; publishes may still be committing.
    let mut replies: FuturesOrdered<PendingReply> = FuturesOrdered::new();
    // Shutdown closes every registered connection; one registered after that sees the shutdown
    // here. (Waiting on the edge-wide token too would make every connection's every wake-up
    // take the same lock.)
    if state.shutdown.is_cancelled() {
        handle.close(CloseCode::GoingAway, "server shutting down");
    }
    // One timer for the idle timeout and the maximum age, whichever comes first. Armed once, not
    // per turn of the loop: a busy subscriber turns it for every burst of deliveries. When it
    // fires after activity, it is moved on.
    let max_age = Instant::now() + state.config.max_connection_age;
    let limit = tokio::time::sleep_until(idle_deadline().min(max_age));
    tokio::pin!(limit);
    loop {
        // Writing comes before reading: a client that keeps sending cannot starve its own
        // deliveries, and its reading stops once PIPELINE replies are outstanding.
        let next = tokio::select! {
            biased;
            _ = &mut limit => {
                let (idle, now) = (idle_deadline(), Instant::now());
                if idle <= now {
                    handle.close(CloseCode::GoingAway, "idle timeout");
                    break;
                }
                if max_age <= now {
                    handle.close(CloseCode::GoingAway, "connection reached its maximum age");
                    break;
                }
                limit.as_mut().reset(idle.min(max_age));
                continue;
            }
            // `None`: the edge is closing the connection (`handle.close`).
            first = outbox.pop() => {
                let Some(first) = first else { break };
                // A client that stops reading blocks the write; the edge closing the connection
                // (a full outbox, a management API close) ends it.
                let written = tokio::select! {
                    biased;
                    written = write_burst(&mut sink, first, outbox) => written,
                    _ = outbox.interrupted() => break,
                };
                if let Err(e) = written {
                    tracing::info!(connection_id = %id, error = %e, "write failed");
                    peer_closed = Some((1006, "connection failed".into()));
                    break;
                }
                continue;
            }
            Some(reply) = replies.next(), if !replies.is_empty() => {
                if let Some(text) = reply {
                    // The reply travels the same queue as deliveries, so it keeps its place in
                    // line.
                    let _ = handle.send_text(fitted(text, state.config.limits.max_message_bytes));
                }
                continue;
            }
            next = stream.next(), if replies.len() < PIPELINE => next,
        };
        let message = match next {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                tracing::info!(connection_id = %id, error = %e, "connection failed");
                if over_transport_limit(e) {
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
        // Boxed, with the event built inside: the event and the handlers' futures are large and
        // live only while a frame is handled, not for the whole life of every idle connection.
        let now = state.clock.now_ms();
        replies.push_back(Box::pin(start_message(&state, &ctx, body, binary, now)).await);
    }

    // Boxed: the closing steps' futures would otherwise take room in every idle connection.
    Box::pin(finish(&state, &ctx, &handle, sink, peer_closed)).await;
}

/// Hands a frame to the message handler; returns its reply, which may still be pending.
async fn start_message(
    state: &State,
    ctx: &ConnectionContext,
    body: String,
    binary: bool,
    now: u64,
) -> PendingReply {
    let event = events::message(ctx, body, binary, now);
    state.handlers.start_message(&event).await
}

/// Stops routing to the connection before it is forgotten, then tells the handlers while what
/// is queued and the close frame go out.
async fn finish(
    state: &State,
    ctx: &ConnectionContext,
    handle: &ConnHandle,
    mut sink: SplitSink<WebSocket, Message>,
    peer_closed: Option<(u16, String)>,
) {
    let id = &ctx.connection_id;
    let outbox = &handle.outbox;
    state.gateway.unregister(id);
    state.admission.forget(id);
    let close_reason = handle.close_reason();
    let (code, reason) = match (peer_closed, close_reason.clone()) {
        (Some(peer), _) => peer,
        (None, Some((code, reason))) => (code.code(), reason),
        (None, None) => (1000, String::new()),
    };
    let now = state.clock.now_ms();
    let disconnect = async {
        if state.config.lose_disconnects {
            tracing::debug!(connection_id = %id, "$disconnect lost (--lose-disconnects)");
            return;
        }
        let event = events::disconnect(ctx, code, &reason, now);
        state.handlers.connect(&event).await;
    };
    let (close_code, close_text) = close_reason.unwrap_or((CloseCode::Normal, String::new()));
    let flush = async {
        // What is already queued goes out, unless the connection is being dropped for not
        // reading; then the close frame. Both bounded in time.
        if close_code != CloseCode::SlowConsumer {
            while let Some(m) = outbox.try_pop() {
                if sink.feed(m).await.is_err() {
                    return;
                }
            }
        }
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code: close_code.code(),
                reason: echo_core::protocol::close_reason(&close_text).into(),
            })))
            .await;
        let _ = sink.close().await;
    };
    let flushed = async {
        if tokio::time::timeout(CLOSE_GRACE, flush).await.is_err() {
            tracing::debug!(connection_id = %id, "close frame not flushed in time");
        }
        outbox.close();
    };
    tokio::join!(disconnect, flushed);
    tracing::debug!(connection_id = %id, code, reason, "connection closed");
}

/// The reply as sent: API Gateway does not carry a route response over its message limit, and
/// neither does the edge. Echo builds none; one that appears is logged and answered with an
/// `internal` error, so the client hears of it.
fn fitted(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    tracing::error!(
        len = text.len(),
        max,
        "a reply over the message limit was not sent"
    );
    ProtocolError::new(
        ErrorCode::Internal,
        format!(
            "the reply was {} bytes, over the {max}-byte limit",
            text.len()
        ),
    )
    .to_frame()
    .to_json()
}

/// Most frames written before a flush: a burst of deliveries becomes one write, and no frame
/// waits behind more than this many.
const BURST: usize = 256;

/// Writes `first` and whatever else is already queued (up to [`BURST`]), then flushes.
async fn write_burst(
    sink: &mut SplitSink<WebSocket, Message>,
    first: Message,
    outbox: &Outbox,
) -> Result<(), axum::Error> {
    sink.feed(first).await?;
    for _ in 1..BURST {
        match outbox.try_pop() {
            Some(m) => sink.feed(m).await?,
            None => break,
        }
    }
    sink.flush().await
}

/// Whether a read failed on a message or frame over the transport's limit (tungstenite's
/// capacity error), which closes with 1009 rather than as a lost connection.
fn over_transport_limit(e: axum::Error) -> bool {
    e.into_inner()
        .downcast::<tungstenite::Error>()
        .is_ok_and(|e| matches!(*e, tungstenite::Error::Capacity(_)))
}
