//! `presence`: a page of a channel's members, for a connection or an application server.

use echo_core::auth::Claims;
use echo_core::channel::ChannelName;
use echo_core::ids::ConnectionId;
use echo_core::protocol::{ProtocolError, ServerFrame};

use crate::deps::Deps;
use crate::reply::internal;

/// The most members a `presence` page lists; fewer when their frame would pass the message
/// limit.
pub const MAX_PRESENCE_PAGE: usize = 500;

/// A page of the channel's members (`presence`): the caller must be allowed to subscribe.
pub(crate) async fn presence(
    deps: &Deps,
    id: &ConnectionId,
    claims: &Claims,
    channel: &ChannelName,
    after: Option<&str>,
) -> Result<Option<ServerFrame>, ProtocolError> {
    claims.authorize_subscribe(channel)?;
    if channel.is_reserved() {
        return Err(ProtocolError::bad_request(format!(
            "{channel} is reserved: it has no presence"
        )));
    }
    let (page, seq) = deps
        .presence
        .members(&claims.app, channel, after, MAX_PRESENCE_PAGE)
        .await
        .map_err(|e| internal(id, "could not read the members", &e))?;
    let mut frame = ServerFrame::Presence {
        channel: channel.clone(),
        members: page.members,
        seq,
        more: page.more,
    };
    // Members are up to 256-byte user ids: a full page can pass the limit; the rest is the
    // next page.
    while frame.to_json().len() > deps.limits.max_message_bytes {
        let ServerFrame::Presence { members, more, .. } = &mut frame else {
            break;
        };
        let keep = members.len() / 2;
        members.truncate(keep);
        *more = true;
    }
    Ok(Some(frame))
}

#[cfg(test)]
mod tests {
    use echo_core::auth::Role;
    use echo_core::limits::Limits;

    use serde_json::json;

    use crate::testing::{Harness, subscribe_to_rooms_only};

    #[tokio::test]
    async fn presence_needs_subscribe_permission_and_a_channel_with_presence() {
        let h = Harness::new();
        let id = h.connect("c1", subscribe_to_rooms_only).await;
        for (frame, code) in [
            (
                json!({"action": "presence", "channel": "lobby"}),
                "forbidden",
            ),
            (
                json!({"action": "presence", "channel": "$status"}),
                "forbidden",
            ),
            (
                json!({"action": "presence", "channel": "$presence:room-1"}),
                "forbidden",
            ),
            (
                json!({"action": "subscribe", "channel": "$presence:room-1"}),
                "forbidden",
            ),
        ] {
            let reply = h.send(&id, frame.clone()).await.unwrap();
            assert_eq!(reply["code"], code, "{frame}: {reply}");
        }
        let admin = h.connect("admin", |c| c.with_role(Role::Admin)).await;
        let reply = h
            .send(
                &admin,
                json!({"action": "subscribe", "channel": "$status", "presence": true}),
            )
            .await
            .unwrap();
        assert_eq!(reply["code"], "bad_request", "{reply}");
        let reply = h
            .send(&id, json!({"action": "presence", "channel": "room-1"}))
            .await
            .unwrap();
        assert_eq!(reply["members"], json!([]));
    }

    #[tokio::test]
    async fn a_presence_page_fits_the_message_limit() {
        let limits = Limits {
            max_message_bytes: 4096,
            ..Limits::default()
        };
        let h = Harness::with(limits, 0, 0);
        let long = "u".repeat(200);
        for n in 0..40 {
            let id = h
                .connect_as(&format!("c{n}"), &format!("{long}{n:02}"), |c| c)
                .await;
            h.send(&id, json!({"action": "subscribe", "channel": "room"}))
                .await;
        }
        let reader = h.connect("reader", |c| c).await;
        let mut after: Option<String> = None;
        let mut seen = Vec::new();
        loop {
            let mut frame = json!({"action": "presence", "channel": "room"});
            if let Some(a) = &after {
                frame["after"] = json!(a);
            }
            let reply = h.send(&reader, frame).await.unwrap();
            assert!(
                reply.to_string().len() <= 4096,
                "{} bytes",
                reply.to_string().len()
            );
            let members = reply["members"].as_array().unwrap();
            seen.extend(
                members
                    .iter()
                    .map(|m| m["sub"].as_str().unwrap().to_owned()),
            );
            after = seen.last().cloned();
            if reply["more"] == false {
                break;
            }
        }
        let expected: Vec<String> = (0..40).map(|n| format!("{long}{n:02}")).collect();
        assert_eq!(seen, expected, "every member once, in order");
    }
}
