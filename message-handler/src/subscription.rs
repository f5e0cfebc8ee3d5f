//! `subscribe` and `unsubscribe`.

use echo_core::auth::Claims;
use echo_core::channel::{ChannelKey, ChannelName};
use echo_core::gateway::Frame;
use echo_core::ids::ConnectionId;
use echo_core::presence::StatusEvent;
use echo_core::protocol::{
    ErrorCode, MAX_HISTORY_LIMIT, MAX_REPLAY_BYTES, ProtocolError, ServerFrame,
};
use echo_core::store::{PageLimit, StoreError, Subscribed};

use crate::deps::Deps;
use crate::reply::internal;

pub(crate) async fn subscribe(
    deps: &Deps,
    id: &ConnectionId,
    claims: &Claims,
    channel: &ChannelName,
    since: Option<u64>,
) -> Result<Option<ServerFrame>, ProtocolError> {
    claims.authorize_subscribe(channel)?;
    allowed(deps, id)?;
    let key = ChannelKey::new(claims.app.clone(), channel.clone());
    {
        // No message is dispatched to the channel while the subscription is put in place and the
        // replay read: the client gets every message after `since` exactly once.
        let (_hold, seq) = deps
            .publisher
            .hold(&key)
            .await
            .map_err(|e| internal(id, "could not read the channel", &e))?;
        let added = match deps
            .connections
            .subscribe(id, &key, deps.limits.max_subscriptions)
            .await
        {
            Ok(added) => added,
            Err(StoreError::TooManySubscriptions { max }) => {
                return Err(ProtocolError::new(
                    ErrorCode::LimitExceeded,
                    format!("a connection may hold at most {max} subscriptions"),
                ));
            }
            Err(e) => return Err(internal(id, "could not subscribe", &e)),
        };
        // Messages after `seq` reach the new subscription live; the replay stops at it.
        let (replay, replay_to) = match since {
            Some(since) => replay(deps, id, &key, since, seq).await?,
            None => (Vec::new(), None),
        };
        let subscribed = ServerFrame::Subscribed {
            channel: channel.clone(),
            seq,
            replay_to,
        };
        for frame in std::iter::once(Frame::text(subscribed.to_json())).chain(replay) {
            if let Err(e) = deps.gateway.post(id, &frame).await {
                tracing::info!(connection_id = %id, error = %e, "could not post to subscriber");
                break;
            }
        }
        if added == Subscribed::AlreadySubscribed {
            return Ok(None);
        }
    }
    if !channel.is_reserved() {
        deps.publisher
            .status(
                &claims.app,
                StatusEvent::Subscribed,
                id,
                &claims.sub,
                Some(channel),
                deps.clock.now_ms(),
            )
            .await;
    }
    Ok(None)
}

/// The replay of a subscribe with `since` on a channel at `seq`: the `message` frames, at most
/// [`MAX_HISTORY_LIMIT`] messages and [`MAX_REPLAY_BYTES`], and the last seq they cover. The
/// client reads what comes after it with `history`. A message whose frame is over the message
/// limit (stored under a larger one) ends the replay before it; `history` then names it.
async fn replay(
    deps: &Deps,
    id: &ConnectionId,
    key: &ChannelKey,
    since: u64,
    seq: u64,
) -> Result<(Vec<Frame>, Option<u64>), ProtocolError> {
    if since >= seq {
        return Ok((Vec::new(), Some(seq)));
    }
    let limit = PageLimit {
        messages: MAX_HISTORY_LIMIT as usize,
        bytes: MAX_REPLAY_BYTES,
    };
    let page = deps
        .publisher
        .history
        .page(key, since, limit)
        .await
        .map_err(|e| internal(id, "could not read history", &e))?;
    let mut cut = page.more;
    let mut covered = None;
    let mut frames = Vec::with_capacity(page.messages.len());
    for message in page.messages.into_iter().take_while(|m| m.seq <= seq) {
        let message_seq = message.seq;
        let frame = ServerFrame::Message(message).to_json();
        if frame.len() > deps.limits.max_message_bytes {
            cut = true;
            break;
        }
        frames.push(Frame::text(frame));
        covered = Some(message_seq);
    }
    let replay_to = if cut { covered.unwrap_or(since) } else { seq };
    Ok((frames, Some(replay_to)))
}

/// Counts the frame against the connection's allowance in this process (the local edge; on AWS
/// the store counted it with the record).
fn allowed(deps: &Deps, id: &ConnectionId) -> Result<(), ProtocolError> {
    deps.limiter
        .check(id, deps.clock.now_ms())
        .map_err(|retry_ms| crate::publish::rate_limited(deps, retry_ms))
}

pub(crate) async fn unsubscribe(
    deps: &Deps,
    id: &ConnectionId,
    claims: &Claims,
    channel: &ChannelName,
) -> Result<Option<ServerFrame>, ProtocolError> {
    allowed(deps, id)?;
    end(deps, id, claims, channel).await
}

/// Ends the subscription (a client's unsubscribe, or one a refreshed token no longer allows).
pub(crate) async fn end(
    deps: &Deps,
    id: &ConnectionId,
    claims: &Claims,
    channel: &ChannelName,
) -> Result<Option<ServerFrame>, ProtocolError> {
    let key = ChannelKey::new(claims.app.clone(), channel.clone());
    let existed = deps
        .connections
        .unsubscribe(id, &key)
        .await
        .map_err(|e| internal(id, "could not unsubscribe", &e))?;
    if existed && !channel.is_reserved() {
        deps.publisher
            .status(
                &claims.app,
                StatusEvent::Unsubscribed,
                id,
                &claims.sub,
                Some(channel),
                deps.clock.now_ms(),
            )
            .await;
    }
    Ok(Some(ServerFrame::Unsubscribed {
        channel: channel.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use echo_core::auth::Role;
    use echo_core::limits::Limits;
    use echo_core::rate::Unlimited;
    use serde_json::json;
    use std::sync::Arc;

    use crate::testing::{Harness, subscribe_to_rooms_only};

    #[tokio::test]
    async fn subscribe_posts_subscribed_then_replays_what_came_after_since() {
        let h = Harness::new();
        let publisher = h.connect("pub", |c| c).await;
        for n in 1..=3 {
            let ack = h
                .send(
                    &publisher,
                    json!({"action": "publish", "channel": "news", "data": n}),
                )
                .await
                .unwrap();
            assert_eq!(ack["seq"], n, "{ack}");
        }
        let id = h.connect("sub", |c| c).await;
        let reply = h
            .send(
                &id,
                json!({"action": "subscribe", "channel": "news", "since": 1}),
            )
            .await;
        assert_eq!(reply, None, "subscribe answers through the gateway");
        let posted = h.posted_to(&id);
        assert_eq!(
            posted[0],
            json!({"type": "subscribed", "channel": "news", "seq": 3, "replayTo": 3})
        );
        let replayed: Vec<_> = posted[1..]
            .iter()
            .map(|m| (m["type"].clone(), m["seq"].clone(), m["data"].clone()))
            .collect();
        assert_eq!(
            replayed,
            [
                (json!("message"), json!(2), json!(2)),
                (json!("message"), json!(3), json!(3))
            ]
        );
        assert_eq!(h.status_events().await, ["subscribed"]);
    }

    #[tokio::test]
    async fn subscribing_again_answers_again_but_tells_status_once() {
        let h = Harness::new();
        let id = h.connect("c1", |c| c).await;
        for _ in 0..2 {
            h.send(&id, json!({"action": "subscribe", "channel": "news"}))
                .await;
            assert_eq!(
                h.posted_to(&id),
                [json!({"type": "subscribed", "channel": "news", "seq": 0})]
            );
        }
        assert_eq!(h.status_events().await, ["subscribed"]);
    }

    #[tokio::test]
    async fn subscribe_needs_permission_and_a_free_slot() {
        let limits = Limits {
            max_subscriptions: 1,
            ..Limits::default()
        };
        let h = Harness::with(limits, Arc::new(Unlimited));
        let id = h.connect("c1", subscribe_to_rooms_only).await;
        let reply = h
            .send(&id, json!({"action": "subscribe", "channel": "lobby"}))
            .await
            .unwrap();
        assert_eq!(reply["code"], "forbidden", "{reply}");
        assert_eq!(reply["channel"], "lobby");
        let reply = h
            .send(&id, json!({"action": "subscribe", "channel": "$status"}))
            .await
            .unwrap();
        assert_eq!(reply["code"], "forbidden", "only admins: {reply}");

        assert_eq!(
            h.send(&id, json!({"action": "subscribe", "channel": "room-1"}))
                .await,
            None
        );
        let reply = h
            .send(&id, json!({"action": "subscribe", "channel": "room-2"}))
            .await
            .unwrap();
        assert_eq!(reply["code"], "limit_exceeded", "{reply}");
        assert_eq!(
            h.posted_to(&id),
            [json!({"type": "subscribed", "channel": "room-1", "seq": 0})]
        );
    }

    #[tokio::test]
    async fn admins_subscribe_to_status_without_a_status_event_of_their_own() {
        let h = Harness::new();
        let id = h.connect("admin", |c| c.with_role(Role::Admin)).await;
        assert_eq!(
            h.send(&id, json!({"action": "subscribe", "channel": "$status"}))
                .await,
            None
        );
        assert_eq!(h.posted_to(&id)[0]["type"], "subscribed");
        assert!(h.status_events().await.is_empty());
    }

    #[tokio::test]
    async fn unsubscribe_answers_and_tells_status_only_when_subscribed() {
        let h = Harness::new();
        let id = h.connect("c1", |c| c).await;
        let unsubscribed = json!({"type": "unsubscribed", "channel": "news"});
        let unsubscribe = json!({"action": "unsubscribe", "channel": "news"});
        assert_eq!(
            h.send(&id, unsubscribe.clone()).await,
            Some(unsubscribed.clone())
        );
        assert!(h.status_events().await.is_empty());

        h.send(&id, json!({"action": "subscribe", "channel": "news"}))
            .await;
        assert_eq!(h.send(&id, unsubscribe).await, Some(unsubscribed));
        assert_eq!(h.status_events().await, ["subscribed", "unsubscribed"]);
    }
}
