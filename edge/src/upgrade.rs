//! The WebSocket upgrade at `/`: a place in the edge's capacity, `$connect`, then the
//! connection's task. A request that is not an upgrade gets the site's page.

use std::sync::Arc;

use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{ConnectInfo, RawQuery, State as AxState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use echo_core::gateway::Identity;
use echo_core::ids::ConnectionId;
use echo_core::metrics::{Metric, Metrics};
use echo_core::protocol::{ErrorCode, ProtocolError};

use crate::client_socket::Peer;
use crate::events::{self, ConnectionContext};
use crate::state::State;

/// Initial read buffer per connection (tungstenite's default is 128 KiB); it grows for larger
/// frames.
const READ_BUFFER: usize = 512;
/// Bytes buffered before a write reaches the socket, within a burst.
const WRITE_BUFFER: usize = 64 * 1024;

/// `GET /`: the upgrade to a client connection, or the site's page.
pub async fn root(
    AxState(state): AxState<Arc<State>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    // Not an upgrade: a browser asking for the page.
    let Ok(ws) = ws else {
        return state.config.site.response("/");
    };
    // A whole upgrade request came: the handshake time is met (`$connect` may take longer).
    peer.upgraded();
    let peer = peer.addr;
    if state.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    // Taken before `$connect`, so that a refused upgrade leaves no connection record, and held
    // until the connection's socket is gone.
    let Some(slot) = state.capacity.try_take() else {
        state.metrics.record(Metric::ConnectionRefused {
            reason: "limit_exceeded",
        });
        let refusal = ProtocolError::new(
            ErrorCode::LimitExceeded,
            format!(
                "the edge holds its maximum of {} connections; try again later",
                state.capacity.max()
            ),
        );
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::RETRY_AFTER, "1"),
            ],
            refusal.to_frame().to_json(),
        )
            .into_response();
    };
    let now = state.clock.now_ms();
    let ctx = ConnectionContext {
        connection_id: ConnectionId::generate(),
        connected_at: now,
        source_ip: peer.ip().to_string(),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        domain_name: headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        stage: events::STAGE.to_owned(),
    };
    let event = events::connect(&ctx, &headers, query.as_deref(), now);
    let response = state.handlers.connect(&event).await;
    if response.status_code != 200 {
        let reason = match response.status_code {
            401 | 403 => "unauthorized",
            _ => "internal",
        };
        state.metrics.record(Metric::ConnectionRefused { reason });
        let status = StatusCode::from_u16(response.status_code as u16)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = match response.body {
            Some(aws_lambda_events::encodings::Body::Text(t)) => t,
            _ => String::new(),
        };
        return (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    }
    let transport_max = (state.config.limits.max_message_bytes * 4).max(1 << 20);
    // In the table before the upgrade completes: `$connect` has announced the connection, and a
    // post made on hearing of it waits in the outbox rather than finding no connection.
    let identity = Identity {
        source_ip: ctx.source_ip.clone(),
        user_agent: ctx.user_agent.clone(),
    };
    let handle = state.gateway.register(ctx.connection_id.clone(), identity);
    let on_fail = {
        let state = state.clone();
        let ctx = ctx.clone();
        move |e: axum::Error| {
            tracing::info!(connection_id = %ctx.connection_id, error = %e, "upgrade failed");
            state.gateway.unregister(&ctx.connection_id);
            let event = events::disconnect(&ctx, 1006, "upgrade failed", state.clock.now_ms());
            tokio::spawn(async move {
                state.handlers.connect(&event).await;
            });
        }
    };
    let tracker = state.connections.clone();
    ws.max_message_size(transport_max)
        .max_frame_size(transport_max)
        // Idle connections are the common case: a small read buffer (it grows for large frames)
        // keeps their memory low; writes are flushed per burst by the connection's writer.
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .on_failed_upgrade(on_fail)
        .on_upgrade(move |socket| {
            tracker.track_future(crate::connection::run(socket, state, ctx, handle, slot))
        })
}
