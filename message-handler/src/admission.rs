//! The admission of a client frame: the connection's record, its allowance, its token's expiry
//! and, for an ordered publish, its turn. Where each is decided:
//!
//! - the record and the allowance: the [`Admission`](echo_core::admission::Admission) port in
//!   [`Deps::admission`] (in process on the local edge, in the store on AWS);
//! - the token's expiry: [`expired`], here, the same everywhere;
//! - a publish's turn: [`crate::order`], from what admission read.
//!
//! A frame refused here is answered here: over the allowance with `rate_limited`, an unknown
//! connection with `unauthorized` and a close, an expired token with `token_expired`.

use echo_core::admission::{Ask, Verdict};
use echo_core::auth::Claims;
use echo_core::channel::ChannelName;
use echo_core::gateway::Frame;
use echo_core::ids::ConnectionId;
use echo_core::metrics::Metric;
use echo_core::protocol::{ClientFrame, ErrorCode, ProtocolError, ServerFrame};
use echo_core::store::ConnectionRecord;

use crate::deps::Deps;
use crate::order::Order;
use crate::reply::{Reply, internal};

/// A frame that may be handled.
pub(crate) struct Admitted {
    pub record: ConnectionRecord,
    /// An ordered publish's place in its connection's order, where turns are taken in the store.
    pub order: Option<Order>,
}

/// Admits `frame` of connection `id`, or answers it.
pub(crate) async fn admit(
    deps: &Deps,
    id: &ConnectionId,
    frame: &ClientFrame,
) -> Result<Admitted, Reply> {
    let ordered = match frame {
        ClientFrame::Publish {
            channel,
            order: Some(n),
            ..
        } => Some((channel, *n)),
        _ => None,
    };
    let ask = Ask {
        counted: counted(frame),
        ordered: ordered.map(|(channel, _)| channel),
    };
    let turn = |settled: Option<u64>| {
        ordered
            .zip(settled)
            .map(|((channel, n), settled)| (channel.clone(), Order { n, settled }))
    };
    match deps.admission.admit(id, ask, deps.clock.now_ms()).await {
        Ok(Verdict::Admitted { record, settled }) => {
            let turn = turn(settled);
            if !matches!(frame, ClientFrame::Refresh { .. })
                && let Some(e) = expired(deps, &record.claims)
            {
                return Err(refuse(deps, id, frame, turn, e).await);
            }
            Ok(Admitted {
                record,
                order: turn.map(|(_, order)| order),
            })
        }
        Ok(Verdict::Limited { retry_ms, settled }) => {
            Err(refuse(deps, id, frame, turn(settled), rate_limited(deps, retry_ms)).await)
        }
        Ok(Verdict::Unknown) => Err(Reply::Ready(forget(deps, id).await)),
        Err(e) => Err(Reply::Ready(Some(
            internal(id, "could not load the connection", &e).to_frame(),
        ))),
    }
}

/// The frame's channel when it counts against the connection's allowance: publishes,
/// subscribes and unsubscribes share it, since each subscribe or unsubscribe is store work and a
/// `$status` event.
fn counted(frame: &ClientFrame) -> Option<&ChannelName> {
    match frame {
        ClientFrame::Publish { channel, .. }
        | ClientFrame::Subscribe { channel, .. }
        | ClientFrame::Unsubscribe { channel } => Some(channel),
        _ => None,
    }
}

/// Why a connection whose token expired may not send this frame: everything but `refresh`
/// (and `ping`, answered before admission) waits for a new token.
pub(crate) fn expired(deps: &Deps, claims: &Claims) -> Option<ProtocolError> {
    claims.expired_at(deps.clock.now_secs()).then(|| {
        ProtocolError::new(
            ErrorCode::TokenExpired,
            format!(
                "this connection's token expired at {}: send refresh with a new token within {} s, or reconnect",
                claims.exp, deps.limits.token_grace_secs
            ),
        )
    })
}

/// The refusal of a frame over the allowance, counted in the metrics.
pub(crate) fn rate_limited(deps: &Deps, retry_ms: u64) -> ProtocolError {
    deps.metrics.record(Metric::RateLimited);
    ProtocolError::new(
        ErrorCode::RateLimited,
        format!(
            "this connection publishes, subscribes and unsubscribes faster than allowed; retry in {retry_ms} ms"
        ),
    )
}

/// Refuses `frame` with `e` before it is handled. A publish with an `order` is settled in its
/// turn first, so that the connection's next publish does not wait for it.
async fn refuse(
    deps: &Deps,
    id: &ConnectionId,
    frame: &ClientFrame,
    turn: Option<(ChannelName, Order)>,
    e: ProtocolError,
) -> Reply {
    if let Some((channel, order)) = turn {
        order
            .wait_turn(deps, id, &channel, tokio::time::Instant::now())
            .await;
        order.settle(deps, id, &channel).await;
    }
    Reply::Ready(Some(refusal_of(e, frame).to_frame()))
}

/// `e` naming what `frame` named: the channel, and a publish's id.
fn refusal_of(e: ProtocolError, frame: &ClientFrame) -> ProtocolError {
    match frame {
        ClientFrame::Publish { channel, id, .. } => e.with_channel(channel).with_id(id.clone()),
        ClientFrame::Subscribe { channel, .. }
        | ClientFrame::Unsubscribe { channel }
        | ClientFrame::History { channel, .. }
        | ClientFrame::Presence { channel, .. } => e.with_channel(channel),
        ClientFrame::Ping | ClientFrame::Refresh { .. } => e,
    }
}

/// A frame from a connection without a record: it expired (its token's grace ran out, or its
/// maximum age) or was removed. Nothing it sends can succeed, so after saying so the connection
/// is closed; the error goes out through the gateway, since a reply would come after the close.
async fn forget(deps: &Deps, id: &ConnectionId) -> Option<ServerFrame> {
    let frame = ProtocolError::new(
        ErrorCode::Unauthorized,
        "this connection is not registered (its token or its maximum age expired): reconnect",
    )
    .to_frame();
    if let Err(e) = deps.gateway.post(id, &Frame::text(frame.to_json())).await {
        tracing::debug!(connection_id = %id, error = %e, "could not post to a forgotten connection");
    }
    if let Err(e) = deps.gateway.close(id).await {
        tracing::debug!(connection_id = %id, error = %e, "could not close a forgotten connection");
    }
    None
}
