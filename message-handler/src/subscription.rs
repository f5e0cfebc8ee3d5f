//! `subscribe` and `unsubscribe`.

use echo_core::auth::Claims;
use echo_core::channel::{ChannelKey, ChannelName};
use echo_core::function::FunctionRun;
use echo_core::gateway::Frame;
use echo_core::hook::{Decision, SubscribeInput, decide};
use echo_core::ids::ConnectionId;
use echo_core::protocol::{
    ErrorCode, MAX_HISTORY_LIMIT, MAX_REPLAY_BYTES, ProtocolError, ServerFrame,
};
use echo_core::status::StatusEvent;
use echo_core::store::{ConnectionRecord, PageLimit, StoreError, Subscribed};

use crate::deps::Deps;
use crate::reply::internal;

/// The channel's `onSubscribe` hook, if it has one: a denial is `forbidden` with its reason, before
/// anything about the channel is read or changed. What its functions publish, allowing or
/// denying, is published before the answer.
async fn admit(
    deps: &Deps,
    id: &ConnectionId,
    claims: &Claims,
    channel: &ChannelName,
    presence: bool,
) -> Result<(), ProtocolError> {
    let associations = deps
        .associations
        .current()
        .await
        .map_err(|e| internal(id, "could not load associations", &e))?;
    let Some(hook) = associations
        .resolve(&claims.app, channel)
        .and_then(|p| p.subscribe_hook())
    else {
        return Ok(());
    };
    let input = serde_json::to_value(SubscribeInput::new(claims, channel, id.as_str(), presence))
        .map_err(|e| internal(id, "could not encode the hook's input", &e))?;
    let (mut runs, mut published) = (Vec::with_capacity(hook.functions.len()), Vec::new());
    let decision = decide(
        deps.invoker.as_ref(),
        &hook,
        &input,
        &mut runs,
        &mut published,
    )
    .await;
    FunctionRun::record_all(&runs, deps.metrics.as_ref());
    if !published.is_empty() {
        crate::relay::relay(deps, id, &claims.app, published).await;
    }
    match decision {
        Decision::Allow { .. } => Ok(()),
        Decision::Deny { reason } => {
            tracing::info!(connection_id = %id, channel = %channel, reason, "subscription denied");
            Err(ProtocolError::new(ErrorCode::Forbidden, reason))
        }
    }
}

/// Subscribes the connection to `channel` (and, with `presence`, to its presence channel, or
/// else not); the user joins the channel with its first subscription there.
pub(crate) async fn subscribe(
    deps: &Deps,
    id: &ConnectionId,
    record: &ConnectionRecord,
    channel: &ChannelName,
    since: Option<u64>,
    presence: bool,
) -> Result<Option<ServerFrame>, ProtocolError> {
    let claims = &record.claims;
    claims.authorize_subscribe(channel)?;
    admit(deps, id, claims, channel, presence).await?;
    let key = ChannelKey::new(claims.app.clone(), channel.clone());
    // Put in place before the user's join is committed, so that a presence subscriber hears its
    // own join.
    let presence_key = channel
        .presence()
        .map(|p| ChannelKey::new(claims.app.clone(), p));
    match (&presence_key, presence) {
        (Some(p), true) => match deps
            .connections
            .subscribe(id, p, deps.limits.max_subscriptions)
            .await
        {
            Ok(_) => {}
            Err(StoreError::TooManySubscriptions { max }) => return Err(too_many(max)),
            Err(e) => return Err(internal(id, "could not subscribe to presence", &e)),
        },
        (None, true) => {
            return Err(ProtocolError::bad_request(format!(
                "{channel} is reserved: it has no presence"
            )));
        }
        _ => {}
    }
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
                if let Some(p) = &presence_key
                    && let Err(e) = deps.connections.unsubscribe(id, p).await
                {
                    tracing::warn!(connection_id = %id, error = %e, "could not undo a presence subscription");
                }
                return Err(too_many(max));
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
            // Subscribing again without `presence` turns presence off.
            if let (Some(p), false) = (&presence_key, presence) {
                deps.connections
                    .unsubscribe(id, p)
                    .await
                    .map_err(|e| internal(id, "could not end the presence subscription", &e))?;
            }
            return Ok(None);
        }
    }
    if !channel.is_reserved() {
        let now_ms = deps.clock.now_ms();
        let join = deps.presence.join(
            &claims.app,
            channel,
            &claims.sub,
            id,
            record.expires_at,
            now_ms,
        );
        let status = deps.publisher.status(
            &claims.app,
            StatusEvent::Subscribed,
            id,
            &claims.sub,
            Some(channel),
            now_ms,
        );
        futures_util::future::join(join, status).await;
    }
    Ok(None)
}

fn too_many(max: usize) -> ProtocolError {
    ProtocolError::new(
        ErrorCode::LimitExceeded,
        format!(
            "a connection may hold at most {max} subscriptions (one with presence counts as two)"
        ),
    )
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

pub(crate) async fn unsubscribe(
    deps: &Deps,
    id: &ConnectionId,
    claims: &Claims,
    channel: &ChannelName,
) -> Result<Option<ServerFrame>, ProtocolError> {
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
    if existed && let Some(p) = channel.presence() {
        let p = ChannelKey::new(claims.app.clone(), p);
        deps.connections
            .unsubscribe(id, &p)
            .await
            .map_err(|e| internal(id, "could not end the presence subscription", &e))?;
    }
    if existed && !channel.is_reserved() {
        let now_ms = deps.clock.now_ms();
        let leave = deps
            .presence
            .leave(&claims.app, channel, &claims.sub, id, now_ms);
        let status = deps.publisher.status(
            &claims.app,
            StatusEvent::Unsubscribed,
            id,
            &claims.sub,
            Some(channel),
            now_ms,
        );
        futures_util::future::join(leave, status).await;
    }
    Ok(Some(ServerFrame::Unsubscribed {
        channel: channel.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use echo_core::auth::Role;
    use echo_core::limits::Limits;
    use echo_core::store::Subscriptions;
    use serde_json::json;

    use crate::testing::{Harness, key, subscribe_to_rooms_only};

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
    async fn on_subscribe_decides_and_a_denial_says_why_and_reveals_nothing() {
        let h = Harness::new();
        let alice = h.connect_as("a", "alice", |c| c).await;
        let bob = h.connect_as("b", "bob", |c| c).await;
        let publish = json!({"action": "publish", "channel": "members", "data": "secret plans"});
        assert_eq!(h.send(&alice, publish).await.unwrap()["seq"], 1);
        let subscribe =
            json!({"action": "subscribe", "channel": "members", "since": 0, "presence": true});
        assert_eq!(h.send(&alice, subscribe.clone()).await, None);
        assert_eq!(h.posted_to(&alice)[0]["type"], "subscribed");
        // Bob is refused with the hook's reason: no replay, no join, no subscription.
        let refused = h.send(&bob, subscribe).await.unwrap();
        assert_eq!(refused["code"], "forbidden", "{refused}");
        assert_eq!(refused["message"], "bob is not a member of members");
        assert_eq!(refused["channel"], "members");
        assert!(h.posted_to(&bob).is_empty());
        let key = key("members");
        let subscribers = h.store.subscribers(&key).await.unwrap();
        assert_eq!(subscribers, std::slice::from_ref(&alice));
        let hooks: Vec<String> = h
            .recorder
            .metrics
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.starts_with("member-check"))
            .cloned()
            .collect();
        assert_eq!(hooks, ["member-check:true", "member-check:true"]);
    }

    #[tokio::test]
    async fn a_failing_on_subscribe_denies_under_reject_and_admits_under_pass() {
        let h = Harness::new();
        let id = h.connect("c1", |c| c).await;
        let subscribe = |channel: &str| json!({"action": "subscribe", "channel": channel});
        assert_eq!(h.send(&id, subscribe("open-door")).await, None);
        let refused = h.send(&id, subscribe("closed-door")).await.unwrap();
        assert_eq!(refused["code"], "forbidden", "{refused}");
        assert!(
            refused["message"]
                .as_str()
                .unwrap()
                .starts_with("broken failed"),
            "{refused}"
        );
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
        let h = Harness::with(limits, 0, 0);
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

    #[tokio::test]
    async fn users_join_with_their_first_subscription_and_leave_with_their_last() {
        let h = Harness::new();
        let a1 = h.connect_as("a1", "alice", |c| c).await;
        let a2 = h.connect_as("a2", "alice", |c| c).await;
        let b1 = h.connect_as("b1", "bob", |c| c).await;
        let sub = |presence: bool| json!({"action": "subscribe", "channel": "room", "presence": presence});
        h.send(&b1, sub(true)).await;
        h.send(&a1, sub(false)).await;
        h.send(&a2, sub(false)).await;
        assert_eq!(
            h.presence_events("room").await,
            [
                (1, "join".into(), "bob".into()),
                (2, "join".into(), "alice".into())
            ],
            "a user's second connection is not a second join"
        );
        let subs = h.store.subscriptions(&b1).await.unwrap();
        assert!(subs.contains(&key("$presence:room")), "{subs:?}");
        assert!(
            !h.store
                .subscriptions(&a1)
                .await
                .unwrap()
                .contains(&key("$presence:room"))
        );

        let members = h
            .send(&a1, json!({"action": "presence", "channel": "room"}))
            .await
            .unwrap();
        assert_eq!(
            members,
            json!({"type": "presence", "channel": "room", "seq": 2, "more": false, "members": [
                {"sub": "alice", "connections": 2}, {"sub": "bob", "connections": 1}
            ]})
        );

        h.send(&a1, json!({"action": "unsubscribe", "channel": "room"}))
            .await;
        assert_eq!(
            h.presence_events("room").await.len(),
            2,
            "alice is still there"
        );
        h.send(&a2, json!({"action": "unsubscribe", "channel": "room"}))
            .await;
        assert_eq!(
            h.presence_events("room").await[2],
            (3, "leave".into(), "alice".into())
        );
        // Subscribing again without presence ends the presence subscription.
        h.send(&b1, sub(false)).await;
        assert!(
            !h.store
                .subscriptions(&b1)
                .await
                .unwrap()
                .contains(&key("$presence:room"))
        );
    }
}
