//! `history`: stored messages of a channel, oldest first.

use echo_core::auth::Claims;
use echo_core::channel::{ChannelKey, ChannelName};
use echo_core::ids::ConnectionId;
use echo_core::protocol::frame_size::history_overhead;
use echo_core::protocol::{ErrorCode, ProtocolError, ServerFrame};
use echo_core::store::PageLimit;

use crate::deps::Deps;
use crate::reply::internal;

/// Reads a page of at most `limit` messages that fits one frame of the message limit. The page
/// says `more` when it was cut; a message too large for any frame (stored under a larger limit)
/// is an error naming its seq, never a frame over the limit.
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
    let max_frame = deps.limits.max_message_bytes;
    // The page's messages are separated by commas, which the page limit counts one per
    // message: one more than the frame needs.
    let room = max_frame.saturating_sub(history_overhead(channel)) + 1;
    let page = deps
        .publisher
        .history
        .page(
            &key,
            since,
            PageLimit {
                messages: limit as usize,
                bytes: room,
            },
        )
        .await
        .map_err(|e| internal(id, "could not read history", &e))?;
    // More than one message fits by the page limit; a first message is taken whatever its size.
    if let [only] = page.messages.as_slice() {
        let len = history_overhead(channel) + only.encoded_len();
        if len > max_frame {
            let seq = only.seq;
            return Err(ProtocolError::new(
                ErrorCode::TooLarge,
                format!(
                    "message {seq} takes a {len}-byte frame, over the {max_frame}-byte limit; \
                     read on with since={seq}"
                ),
            ));
        }
    }
    let frame = ServerFrame::History {
        channel: channel.clone(),
        messages: page.messages,
        more: page.more,
    };
    Ok(Some(frame))
}

#[cfg(test)]
mod tests {

    use echo_core::limits::Limits;
    use echo_core::message::NewMessage;
    use echo_core::store::HistoryStore;
    use serde_json::json;

    use crate::testing::{Harness, key, subscribe_to_rooms_only};

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

    /// A handler whose frames are at most 2,000 bytes.
    fn small_frames() -> Harness {
        Harness::with(
            Limits {
                max_message_bytes: 2_000,
                ..Limits::default()
            },
            0,
            0,
        )
    }

    #[tokio::test]
    async fn pages_are_cut_to_fit_one_frame_and_say_more() {
        let h = small_frames();
        let id = h.connect("c1", |c| c).await;
        for n in 1..=5 {
            let ack = h
                .send(
                    &id,
                    json!({"action": "publish", "channel": "news", "data": "x".repeat(800)}),
                )
                .await
                .unwrap();
            assert_eq!(ack["seq"], n, "{ack}");
        }
        let mut pages = Vec::new();
        let mut since = 0;
        loop {
            let page = h
                .send(
                    &id,
                    json!({"action": "history", "channel": "news", "since": since}),
                )
                .await
                .unwrap();
            assert!(page.to_string().len() <= 2_000, "{page}");
            let seqs: Vec<u64> = page["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["seq"].as_u64().unwrap())
                .collect();
            since = *seqs.last().unwrap();
            pages.push((seqs, page["more"].clone()));
            if page["more"] == false {
                break;
            }
        }
        assert_eq!(
            pages,
            [
                (vec![1, 2], json!(true)),
                (vec![3, 4], json!(true)),
                (vec![5], json!(false))
            ]
        );
    }

    #[tokio::test]
    async fn a_stored_message_too_large_for_a_frame_is_named_not_sent() {
        let h = small_frames();
        let id = h.connect("c1", |c| c).await;
        // Stored under a larger limit than the one in force now.
        let message = NewMessage {
            id: "old".into(),
            data: json!("x".repeat(3_000)),
            from: "alice".into(),
            ts: 1,
            dedup_window_ms: None,
        };
        h.store.append(&key("news"), message).await.unwrap();
        let reply = h
            .send(&id, json!({"action": "history", "channel": "news"}))
            .await
            .unwrap();
        assert_eq!(reply["code"], "too_large", "{reply}");
        assert!(
            reply["message"].as_str().unwrap().contains("since=1"),
            "{reply}"
        );
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
