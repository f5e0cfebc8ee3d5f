//! Client frames: the action routes (`subscribe`, `unsubscribe`, `publish`, `history`,
//! `presence`, `ping`, `refresh`) and `$default` (everything else, which gets a `bad_request`
//! error).
//!
//! The answer to a frame is the event's response body, which the gateway sends back to the
//! client (a two-way route response), so acknowledging a publish costs no management-API call.
//! `subscribe` is the exception: its `subscribed` frame and any replay are posted through the
//! gateway while the channel is locked, so that they arrive before the channel's next message.
//!
//! - this file: the event, the frame's size and parse, the connection's record, and routing.
//! - `admission`: whether the frame may be handled: the connection's record, its allowance, its
//!   token's expiry, an ordered publish's turn.
//! - `deps`: what the handler needs (`lambda`: its ports on AWS); `reply`: the answer to a frame.
//! - `subscription`: `subscribe` and `unsubscribe`; `members`: `presence`, a page of members.
//! - `publish`: the channel's functions, the commit and the ack; `after_publish`: the functions
//!   handed each committed message.
//! - `order`: a connection's publishes on a channel committed in the order it numbered them.
//! - `history`: stored messages.
//! - `refresh`: a new token on the same connection.
//! - `server`: publishing and history for an application server (the HTTP API); `sessions`:
//!   ending a user's connections for one.
//!
//! A connection whose token has expired may only `refresh` (and `ping`); everything else is
//! refused with `token_expired`. Once the grace after expiry has passed, its record is gone: its
//! next frame is answered `unauthorized` and the connection is closed.

mod admission;
mod after_publish;
mod deps;
mod history;
#[cfg(feature = "lambda")]
pub mod lambda;
mod members;
mod order;
mod publish;
mod refresh;
mod relay;
mod reply;
pub mod schedule;
pub mod server;
pub mod sessions;
mod subscription;
#[cfg(test)]
mod testing;

pub use after_publish::AfterPublish;
pub use deps::Deps;
pub use relay::publish_relayed;
pub use reply::Reply;

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use echo_core::ids::ConnectionId;
use echo_core::protocol::{ClientFrame, ErrorCode, ProtocolError, ServerFrame};

use crate::publish::MessageId;

/// Handles a `MESSAGE` event; the response body, when present, goes back to the client.
pub async fn handle(
    deps: &Deps,
    event: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    let Some(id) = event
        .request_context
        .connection_id
        .as_deref()
        .map(ConnectionId::from)
    else {
        return respond(Some(
            ProtocolError::bad_request("event has no connectionId").to_frame(),
        ));
    };
    let body = event.body.as_deref().unwrap_or_default();
    respond(handle_frame(deps, &id, body, event.is_base64_encoded).await)
}

fn respond(frame: Option<ServerFrame>) -> ApiGatewayProxyResponse {
    let mut r = ApiGatewayProxyResponse::default();
    r.status_code = 200;
    r.body = frame.map(|f| Body::Text(f.to_json()));
    r
}

/// Handles one frame from connection `id`; returns the reply, if any.
pub async fn handle_frame(
    deps: &Deps,
    id: &ConnectionId,
    body: &str,
    is_binary: bool,
) -> Option<ServerFrame> {
    start_frame(deps, id, body, is_binary).await.resolve().await
}

/// Handles one frame up to the point where only waiting is left: a publish returns once its
/// message is handed to the store (in the order frames are started), and its ack comes with the
/// pending reply. Everything else is complete on return.
pub async fn start_frame(deps: &Deps, id: &ConnectionId, body: &str, is_binary: bool) -> Reply {
    if is_binary {
        return Reply::Ready(Some(
            ProtocolError::bad_request("binary frames are not supported: send JSON text frames")
                .to_frame(),
        ));
    }
    if body.len() > deps.limits.max_message_bytes {
        return Reply::Ready(Some(
            ProtocolError::new(
                ErrorCode::TooLarge,
                format!(
                    "frame is {} bytes; the limit is {} bytes",
                    body.len(),
                    deps.limits.max_message_bytes
                ),
            )
            .with_id(ClientFrame::request_id(body))
            .to_frame(),
        ));
    }
    let frame = match ClientFrame::parse(body) {
        Ok(ClientFrame::Ping) => return Reply::Ready(Some(ServerFrame::Pong)),
        Ok(f) => f,
        Err(e) => return Reply::Ready(Some(e.to_frame())),
    };
    let admission::Admitted { record, order } = match admission::admit(deps, id, &frame).await {
        Ok(admitted) => admitted,
        Err(reply) => return reply,
    };
    let action = frame.action();
    let claims = record.claims.clone();
    let result = match frame {
        // Answered above, without a store read: keepalives are frequent.
        ClientFrame::Ping => Ok(Reply::Ready(Some(ServerFrame::Pong))),
        ClientFrame::Subscribe {
            channel,
            since,
            presence,
        } => subscription::subscribe(deps, id, &record, &channel, since, presence)
            .await
            .map(Reply::Ready)
            .map_err(|e| e.with_channel(&channel)),
        ClientFrame::Unsubscribe { channel } => {
            subscription::unsubscribe(deps, id, &claims, &channel)
                .await
                .map(Reply::Ready)
                .map_err(|e| e.with_channel(&channel))
        }
        ClientFrame::Publish {
            channel,
            data,
            id: msg_id,
            ..
        } => {
            let msg_id = MessageId::from_publisher(msg_id);
            let reply_id = msg_id.as_str().to_owned();
            publish::publish(deps, id, &claims, &channel, data, msg_id, order)
                .await
                .map_err(|e| e.with_channel(&channel).with_id(Some(reply_id)))
        }
        ClientFrame::Presence { channel, after } => {
            members::presence(deps, id, &claims, &channel, after.as_deref())
                .await
                .map(Reply::Ready)
                .map_err(|e| e.with_channel(&channel))
        }
        ClientFrame::History {
            channel,
            since,
            limit,
        } => history::history(deps, id, &claims, &channel, since, limit)
            .await
            .map(Reply::Ready)
            .map_err(|e| e.with_channel(&channel)),
        ClientFrame::Refresh { token } => refresh::refresh(deps, id, record, &token)
            .await
            .map(Reply::Ready),
    };
    match result {
        Ok(reply) => reply,
        Err(e) => {
            tracing::debug!(connection_id = %id, action, code = e.code.as_str(), message = %e.message, "frame refused");
            Reply::Ready(Some(e.to_frame()))
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
    use echo_core::store::HistoryStore;
    use serde_json::json;

    use super::*;
    use crate::testing::{Harness, NOW_MS, key};

    fn fixture() -> ApiGatewayWebsocketProxyRequest {
        let path = format!(
            "{}/../tests/fixtures/apigw-websocket-message.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn body(r: ApiGatewayProxyResponse) -> String {
        let Some(Body::Text(body)) = r.body else {
            panic!("no body")
        };
        body
    }

    #[tokio::test]
    async fn publish_fixture_runs_the_chain_commits_and_acks_in_the_response() {
        let h = Harness::new();
        let event = fixture();
        let id = event.request_context.connection_id.as_deref().unwrap();

        // Unknown connection: refused (through the gateway, then closed), nothing stored.
        let r = handle(&h.deps, &event).await;
        assert_eq!(r.body, None);
        let unknown = ConnectionId::from(id);
        assert_eq!(h.posted_to(&unknown)[0]["code"], "unauthorized");
        assert_eq!(*h.recorder.closed.lock().unwrap(), vec![unknown]);
        h.recorder.posted.lock().unwrap().clear();

        h.connect(id, |c| c).await;
        let r = handle(&h.deps, &event).await;
        assert_eq!(r.status_code, 200);
        assert_eq!(
            body(r),
            r#"{"type":"ack","id":"m-1","channel":"angry","seq":1}"#
        );
        assert_eq!(
            *h.recorder.dispatched.lock().unwrap(),
            vec![("chat-demo/angry".to_owned(), 1)]
        );
        assert_eq!(
            *h.recorder.metrics.lock().unwrap(),
            vec!["shout:true", "published"]
        );
        let stored = h.store.range(&key("angry"), 0, 10).await.unwrap();
        assert_eq!(stored[0].data, serde_json::json!({"text": "HELLO"}));
        assert_eq!(stored[0].ts, NOW_MS);
    }

    #[tokio::test]
    async fn an_event_without_a_connection_id_is_a_bad_request() {
        let h = Harness::new();
        let mut event = fixture();
        event.request_context.connection_id = None;
        let r = handle(&h.deps, &event).await;
        assert!(body(r).contains(r#""code":"bad_request""#));
        assert!(h.stored("angry").await.is_empty());
    }

    #[tokio::test]
    async fn ping_is_answered_without_a_connection_record() {
        let h = Harness::new();
        let unknown = ConnectionId::from("nobody");
        assert_eq!(
            h.send(&unknown, json!({"action": "ping"})).await,
            Some(json!({"type": "pong"}))
        );
    }

    #[tokio::test]
    async fn frames_from_an_unregistered_connection_are_refused() {
        let h = Harness::new();
        let unknown = ConnectionId::from("nobody");
        let reply = h
            .send(&unknown, json!({"action": "subscribe", "channel": "a"}))
            .await;
        assert_eq!(reply, None, "the answer goes out before the close");
        let posted = h.posted_to(&unknown);
        assert_eq!(posted.len(), 1);
        assert_eq!(posted[0]["code"], "unauthorized", "{posted:?}");
        assert_eq!(*h.recorder.closed.lock().unwrap(), vec![unknown]);
    }

    #[tokio::test]
    async fn malformed_binary_and_unknown_frames_are_bad_requests() {
        let h = Harness::new();
        let id = h.connect("c1", |c| c).await;
        for text in [
            "not json",
            "[1,2]",
            r#"{"channel":"a"}"#,
            r#"{"action":"dance"}"#,
            r#"{"action":"subscribe","channel":"a","colour":"red"}"#,
            r#"{"action":"subscribe","channel":"no spaces"}"#,
        ] {
            let reply = h.send_text(&id, text).await.unwrap();
            assert_eq!(reply["type"], "error", "{text}: {reply}");
            assert_eq!(reply["code"], "bad_request", "{text}: {reply}");
        }
        let reply = handle_frame(&h.deps, &id, "AAEC", true).await.unwrap();
        assert!(reply.to_json().contains(r#""code":"bad_request""#));
        assert!(h.posted_to(&id).is_empty());
    }

    #[tokio::test]
    async fn an_oversize_frame_is_too_large_and_names_its_id() {
        let h = Harness::new();
        let id = h.connect("c1", |c| c).await;
        let text = json!({
            "action": "publish",
            "channel": "a",
            "id": "big-1",
            "data": "x".repeat(h.deps.limits.max_message_bytes),
        })
        .to_string();
        let reply = h.send_text(&id, &text).await.unwrap();
        assert_eq!(reply["code"], "too_large", "{reply}");
        assert_eq!(reply["id"], "big-1");
        assert!(h.stored("a").await.is_empty());
    }
}
