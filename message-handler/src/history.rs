//! `history`: stored messages of a channel, oldest first.

use echo_core::auth::Claims;
use echo_core::channel::{ChannelKey, ChannelName};
use echo_core::ids::ConnectionId;
use echo_core::protocol::{ProtocolError, ServerFrame};

use crate::deps::Deps;
use crate::reply::internal;

pub(crate) async fn history(
    deps: &Deps,
    id: &ConnectionId,
    claims: &Claims,
    channel: &ChannelName,
    since: u64,
    limit: u32,
) -> Result<Option<ServerFrame>, ProtocolError> {
    claims.authorize_subscribe(channel)?;
    let key = ChannelKey::new(claims.app.clone(), channel.clone());
    let messages = deps
        .publisher
        .history
        .range(&key, since, limit as usize)
        .await
        .map_err(|e| internal(id, "could not read history", &e))?;
    Ok(Some(ServerFrame::History {
        channel: channel.clone(),
        messages,
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::testing::{Harness, subscribe_to_rooms_only};

    #[tokio::test]
    async fn history_gives_what_came_after_since_oldest_first_up_to_the_limit() {
        let h = Harness::new();
        let id = h.connect("c1", |c| c).await;
        for n in 1..=5 {
            h.send(
                &id,
                json!({"action": "publish", "channel": "news", "data": n}),
            )
            .await;
        }
        let reply = h
            .send(
                &id,
                json!({"action": "history", "channel": "news", "since": 1, "limit": 3}),
            )
            .await
            .unwrap();
        assert_eq!(reply["type"], "history");
        assert_eq!(reply["channel"], "news");
        let seqs: Vec<_> = reply["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["seq"].clone(), m["data"].clone(), m["from"].clone()))
            .collect();
        assert_eq!(
            seqs,
            [
                (json!(2), json!(2), json!("alice")),
                (json!(3), json!(3), json!("alice")),
                (json!(4), json!(4), json!("alice"))
            ]
        );
        let reply = h
            .send(
                &id,
                json!({"action": "history", "channel": "news", "limit": 1001}),
            )
            .await
            .unwrap();
        assert_eq!(reply["code"], "bad_request", "{reply}");
    }

    #[tokio::test]
    async fn history_needs_subscribe_permission() {
        let h = Harness::new();
        let id = h.connect("c1", subscribe_to_rooms_only).await;
        h.send(
            &id,
            json!({"action": "publish", "channel": "secret", "data": 1}),
        )
        .await;
        let reply = h
            .send(&id, json!({"action": "history", "channel": "secret"}))
            .await
            .unwrap();
        assert_eq!(reply["code"], "forbidden", "{reply}");
        assert_eq!(reply["channel"], "secret");
    }
}
