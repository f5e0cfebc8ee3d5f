//! `refresh`: a new token for the same app and user, without reconnecting.

use echo_core::auth::Claims;
use echo_core::gateway::Frame;
use echo_core::ids::ConnectionId;
use echo_core::protocol::{ErrorCode, ProtocolError, ServerFrame};
use echo_core::store::ConnectionRecord;

use crate::deps::Deps;
use crate::reply::internal;
use crate::subscription::end;

/// Verifies `token` and puts it in place of the connection's: its claims apply to every frame
/// from now on, and the record (with its subscriptions) lives until the new token's expiry plus
/// the grace, within the connection's maximum age, and so does its presence on its channels.
/// Subscriptions the new token no longer allows end, each with an `unsubscribed` frame. In an app
/// with `onConnect`, the connection keeps the permissions it was given at connect.
pub(crate) async fn refresh(
    deps: &Deps,
    id: &ConnectionId,
    record: ConnectionRecord,
    token: &str,
) -> Result<Option<ServerFrame>, ProtocolError> {
    let claims = deps
        .verifier
        .verify(token, deps.clock.now_secs())
        .await
        .map_err(|e| {
            ProtocolError::new(
                ErrorCode::Unauthorized,
                format!("the new token was refused: {e}"),
            )
        })?;
    same_identity(&record.claims, &claims)?;
    let mut claims = claims;
    // In an app with `onConnect`, the permissions were decided at connect (by the hook, or the
    // token's as it allowed them): a new token renews the connection, not what it may do.
    let associations = deps
        .associations
        .current()
        .await
        .map_err(|e| internal(id, "could not load associations", &e))?;
    if associations.connect_hook(&claims.app).is_some() {
        claims.channels = record.claims.channels.clone();
    }
    let exp = claims.exp;
    let expires_at = deps.limits.record_expiry(record.connected_at, exp);
    let subscriptions = deps
        .connections
        .subscriptions(id)
        .await
        .map_err(|e| internal(id, "could not read the subscriptions", &e))?;
    let renewed = deps
        .connections
        .renew(id, claims.clone(), expires_at)
        .await
        .map_err(|e| internal(id, "could not store the new token", &e))?;
    if !renewed {
        return Err(ProtocolError::new(
            ErrorCode::Unauthorized,
            "this connection is not registered (it may have expired): reconnect",
        ));
    }
    let now_ms = deps.clock.now_ms();
    for key in subscriptions {
        if key.channel.presence_of().is_some() {
            // A presence subscription goes with its channel's: ended with it, if at all.
            continue;
        }
        if claims.authorize_subscribe(&key.channel).is_ok() {
            // The user's presence there lasts as long as the record now does.
            deps.presence
                .join(&key.app, &key.channel, &claims.sub, id, expires_at, now_ms)
                .await;
            continue;
        }
        match end(deps, id, &claims, &key.channel).await {
            Ok(Some(frame)) => {
                if let Err(e) = deps.gateway.post(id, &Frame::text(frame.to_json())).await {
                    tracing::info!(connection_id = %id, error = %e, "could not post to subscriber");
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(connection_id = %id, channel = %key.channel, error = %e, "could not end a subscription the new token excludes");
            }
        }
    }
    Ok(Some(ServerFrame::Refreshed { exp }))
}

/// A connection belongs to one app and one user for its whole life.
fn same_identity(old: &Claims, new: &Claims) -> Result<(), ProtocolError> {
    if old.app != new.app || old.sub != new.sub {
        return Err(ProtocolError::new(
            ErrorCode::Forbidden,
            format!(
                "a refresh keeps the connection's app and user ({}, {}); the new token is for ({}, {})",
                old.app, old.sub, new.app, new.sub
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use echo_core::auth::{Claims, Permissions};
    use echo_core::channel::{AppId, ChannelPattern};
    use serde_json::json;

    use crate::testing::{Harness, NOW_MS, app, token};

    const NOW: u64 = NOW_MS / 1000;

    /// Connects `c1` for alice with a token that expires 60 s from now.
    async fn expiring(h: &Harness) -> echo_core::ids::ConnectionId {
        h.connect("c1", |mut c| {
            c.exp = NOW + 60;
            c
        })
        .await
    }

    #[tokio::test]
    async fn after_expiry_only_refresh_and_ping_are_accepted() {
        let h = Harness::new();
        let id = expiring(&h).await;
        h.send(&id, json!({"action": "subscribe", "channel": "news"}))
            .await;
        h.clock.advance_ms(66_000);
        let reply = h
            .send(
                &id,
                json!({"action": "publish", "channel": "news", "data": 1, "id": "late"}),
            )
            .await
            .unwrap();
        assert_eq!(reply["code"], "token_expired", "{reply}");
        assert_eq!(
            (&reply["id"], &reply["channel"]),
            (&json!("late"), &json!("news"))
        );
        assert!(h.stored("news").await.is_empty(), "nothing was published");
        for frame in [
            json!({"action": "subscribe", "channel": "other"}),
            json!({"action": "history", "channel": "news"}),
        ] {
            let reply = h.send(&id, frame).await.unwrap();
            assert_eq!(reply["code"], "token_expired", "{reply}");
        }
        assert_eq!(
            h.send(&id, json!({"action": "ping"})).await,
            Some(json!({"type": "pong"}))
        );

        let fresh = token(&Claims::new(app(), "alice", NOW + 3600));
        let reply = h
            .send(&id, json!({"action": "refresh", "token": fresh}))
            .await;
        assert_eq!(reply, Some(json!({"type": "refreshed", "exp": NOW + 3600})));
        let ack = h
            .send(
                &id,
                json!({"action": "publish", "channel": "news", "data": 2, "id": "ok"}),
            )
            .await
            .unwrap();
        assert_eq!(ack["seq"], 1, "{ack}");
        let record = h
            .deps
            .connections
            .get_connection(&id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            record.expires_at,
            NOW + 3600 + 5 + h.deps.limits.token_grace_secs,
            "the record lives until the new token's expiry and grace"
        );
    }

    #[tokio::test]
    async fn past_the_grace_the_connection_is_forgotten_and_closed() {
        let h = Harness::new();
        let id = expiring(&h).await;
        h.send(&id, json!({"action": "subscribe", "channel": "news"}))
            .await;
        h.clock
            .advance_ms((60 + 5 + h.deps.limits.token_grace_secs) * 1000);
        let key = crate::testing::key("news");
        assert!(
            h.deps
                .connections
                .subscribers(&key)
                .await
                .unwrap()
                .is_empty(),
            "nothing is delivered to it"
        );
        let fresh = token(&Claims::new(app(), "alice", NOW + 3600));
        let reply = h
            .send(&id, json!({"action": "refresh", "token": fresh}))
            .await;
        assert_eq!(reply, None, "the answer goes out before the close");
        let posted = h.posted_to(&id);
        assert_eq!(posted.last().unwrap()["code"], "unauthorized", "{posted:?}");
        assert_eq!(*h.recorder.closed.lock().unwrap(), vec![id]);
    }

    #[tokio::test]
    async fn a_refresh_keeps_the_app_and_user_and_needs_a_valid_token() {
        let h = Harness::new();
        let id = expiring(&h).await;
        let cases = [
            (
                token(&Claims::new(app(), "mallory", NOW + 3600)),
                "forbidden",
            ),
            (
                token(&Claims::new(
                    AppId::new("other-app").unwrap(),
                    "alice",
                    NOW + 3600,
                )),
                "forbidden",
            ),
            (
                token(&Claims::new(app(), "alice", NOW - 3600)),
                "unauthorized",
            ),
            ("not-a-token".to_owned(), "unauthorized"),
        ];
        for (bad, code) in cases {
            let reply = h
                .send(&id, json!({"action": "refresh", "token": bad}))
                .await
                .unwrap();
            assert_eq!(reply["code"], code, "{reply}");
        }
        let record = h
            .deps
            .connections
            .get_connection(&id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            record.claims.exp,
            NOW + 60,
            "the old token is still in place"
        );
    }

    #[tokio::test]
    async fn subscriptions_the_new_token_excludes_end() {
        let h = Harness::new();
        let id = expiring(&h).await;
        for channel in ["room-1", "news"] {
            h.send(
                &id,
                json!({"action": "subscribe", "channel": channel, "presence": true}),
            )
            .await;
        }
        let mut narrower = Claims::new(app(), "alice", NOW + 3600);
        narrower.channels = Some(Permissions {
            subscribe: Some(vec![ChannelPattern::new("room-*").unwrap()]),
            publish: None,
        });
        let reply = h
            .send(&id, json!({"action": "refresh", "token": token(&narrower)}))
            .await
            .unwrap();
        assert_eq!(reply["type"], "refreshed", "{reply}");
        assert_eq!(
            h.posted_to(&id).last().unwrap(),
            &json!({"type": "unsubscribed", "channel": "news"})
        );
        let mut left: Vec<_> = h
            .deps
            .connections
            .subscriptions(&id)
            .await
            .unwrap()
            .into_iter()
            .map(|k| k.channel.to_string())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["$presence:room-1", "room-1"],
            "the allowed channel keeps its presence subscription; the other goes with both"
        );
        assert_eq!(
            h.presence_events("news").await.last().map(|e| e.1.clone()),
            Some("leave".to_owned())
        );
    }
}
