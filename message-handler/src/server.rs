//! What an application server does without a connection (Echo's HTTP API): publish, read
//! history and read a channel's members, through the same permission checks, functions, limits and commit as a connection's
//! frames. `origin` stands where a connection id would: admission counts publishes per origin
//! ([`Admission::admit_request`](echo_core::admission::Admission::admit_request)), and the logs
//! name it.

use echo_core::auth::Claims;
use echo_core::channel::ChannelName;
use echo_core::ids::ConnectionId;
use echo_core::message::StoredMessage;
use echo_core::protocol::{Ack, ErrorCode, ProtocolError, ServerFrame};
use echo_core::store::Member;
use serde_json::Value;

use crate::deps::Deps;
use crate::publish::MessageId;

/// A page of stored messages, as `history` gives it.
#[derive(Debug)]
pub struct Page {
    pub messages: Vec<StoredMessage>,
    pub more: bool,
}

/// Publishes `data` on `channel` as `claims`' user; Echo makes up the id when `msg_id` is
/// `None`. The ack once the message is stored (or dropped by a function, or found to repeat an
/// id committed within the dedup window), or the refusal.
pub async fn publish(
    deps: &Deps,
    origin: &ConnectionId,
    claims: &Claims,
    channel: &ChannelName,
    data: Value,
    msg_id: Option<String>,
) -> Result<Ack, ProtocolError> {
    // Counted once the token may publish there, so that a refused request costs nothing.
    claims.authorize_publish(channel)?;
    if let Err(retry_ms) = deps.admission.admit_request(origin, deps.clock.now_ms()) {
        return Err(crate::admission::rate_limited(deps, retry_ms));
    }
    let msg_id = MessageId::from_publisher(msg_id);
    let reply = crate::publish::publish(deps, origin, claims, channel, data, msg_id, None).await?;
    match reply.resolve().await {
        Some(ServerFrame::Ack(ack)) => Ok(ack),
        Some(ServerFrame::Error(e)) => Err(ProtocolError::new(e.code, e.message)),
        other => Err(unexpected(other)),
    }
}

/// A page of `channel`'s stored messages after `since`: at most `limit`, and as many as fit one
/// frame of the message limit.
pub async fn history(
    deps: &Deps,
    origin: &ConnectionId,
    claims: &Claims,
    channel: &ChannelName,
    since: u64,
    limit: u32,
) -> Result<Page, ProtocolError> {
    match crate::history::history(deps, origin, claims, channel, since, limit).await? {
        Some(ServerFrame::History { messages, more, .. }) => Ok(Page { messages, more }),
        other => Err(unexpected(other)),
    }
}

/// A page of a channel's members, as `presence` gives it.
#[derive(Debug)]
pub struct Members {
    pub members: Vec<Member>,
    pub seq: u64,
    pub more: bool,
}

/// A page of `channel`'s members after `after`, in `sub` order.
pub async fn presence(
    deps: &Deps,
    origin: &ConnectionId,
    claims: &Claims,
    channel: &ChannelName,
    after: Option<&str>,
) -> Result<Members, ProtocolError> {
    match crate::members::presence(deps, origin, claims, channel, after).await? {
        Some(ServerFrame::Presence {
            members, seq, more, ..
        }) => Ok(Members { members, seq, more }),
        other => Err(unexpected(other)),
    }
}

fn unexpected(frame: Option<ServerFrame>) -> ProtocolError {
    tracing::error!(?frame, "unexpected answer to a server's request");
    ProtocolError::new(ErrorCode::Internal, "unexpected answer")
}
