//! The management API adapter (its signed posts, and the AWS SDK's client for closing and
//! reading a connection) against the local edge's `@connections` API (which emulates API
//! Gateway's).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use echo_aws::gateway::ManagementApi;
use echo_core::auth::{Claims, TokenIssuer};
use echo_core::channel::AppId;
use echo_core::gateway::{Frame, Gateway, GatewayError};
use echo_core::ids::ConnectionId;
use echo_edge::EdgeConfig;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "management-test-secret-management-test";
const TOKEN: &str = "management-test-token";

#[tokio::test(flavor = "multi_thread")]
async fn posts_reads_closes_and_reports_gone_against_the_edge() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = EdgeConfig::new(
        dir.path().to_path_buf(),
        SECRET.as_bytes().to_vec(),
        TOKEN.into(),
    );
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.manage_listen = "127.0.0.1:0".parse().unwrap();
    let edge = echo_edge::start(config).await.unwrap();

    let claims = Claims::new(AppId::new("chat-demo").unwrap(), "sdk", 4_000_000_000);
    let token = TokenIssuer::new(SECRET.as_bytes())
        .unwrap()
        .issue(&claims)
        .unwrap();
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/?token={token}", edge.addr))
            .await
            .unwrap();
    // The edge tells the connection id to nobody but the handlers; find it in the connection table.
    let id = loop {
        if let Some(id) = edge.state.gateway.ids().into_iter().next() {
            break id;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };

    let endpoint = format!("http://{}/local", edge.manage_addr);
    let api = ManagementApi::local(&endpoint, TOKEN, 8);
    api.post(&id, &Frame::text(r#"{"type":"notice","n":1}"#.into()))
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got, Message::text(r#"{"type":"notice","n":1}"#));

    // A frame over API Gateway's 128 KB is refused (413 PayloadTooLargeException) as what it is,
    // and the connection stays: the next post arrives.
    let over = format!(
        "\"{}\"",
        "x".repeat(echo_core::limits::DEFAULT_MAX_MESSAGE_BYTES)
    );
    assert!(matches!(
        api.post(&id, &Frame::text(over)).await,
        Err(GatewayError::TooLarge)
    ));
    api.post(&id, &Frame::text(r#"{"type":"notice","n":2}"#.into()))
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got, Message::text(r#"{"type":"notice","n":2}"#));

    let failures = api
        .post_many(
            &[id.clone(), ConnectionId::from("nobody"), id.clone()],
            &Frame::text("{}".into()),
        )
        .await;
    assert_eq!(failures.len(), 1);
    assert!(matches!(&failures[0], (who, GatewayError::Gone) if who.as_str() == "nobody"));

    let info = api.info(&id).await.unwrap();
    assert_eq!(info.identity.source_ip, "127.0.0.1");
    assert!(!info.connected_at.is_empty());

    api.close(&id).await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(c))) => return c.map(|c| u16::from(c.code)),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(closed, Some(4500), "closed through the management API");
    while edge.state.gateway.get(&id).is_some() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(matches!(
        api.post(&id, &Frame::text("{}".into())).await,
        Err(GatewayError::Gone)
    ));
    assert!(matches!(api.info(&id).await, Err(GatewayError::Gone)));
    assert!(matches!(api.close(&id).await, Err(GatewayError::Gone)));

    // The wrong key is refused.
    let intruder = ManagementApi::local(&endpoint, "not-the-token", 1);
    match intruder
        .post(&ConnectionId::from("x"), &Frame::text("{}".into()))
        .await
    {
        Err(GatewayError::Other(_)) => {}
        other => panic!("expected a refusal, got {other:?}"),
    }
    edge.shutdown().await;
}
