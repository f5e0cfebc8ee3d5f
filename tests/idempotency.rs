//! Idempotent publish over a real edge: a publisher-given id is one message per channel within
//! the dedup window, over WebSockets and the HTTP API, from racing connections, across a
//! restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use echo_tests::TestEdge;
use serde_json::{Value, json};

/// The stored messages of `channel` as (seq, id).
async fn history(edge: &TestEdge, channel: &str) -> Vec<(u64, String)> {
    let response = edge
        .http()
        .get(format!(
            "http://{}/v1/apps/chat-demo/channels/{channel}/messages",
            edge.edge.addr
        ))
        .bearer_auth(edge.admin_token("chat-demo"))
        .send()
        .await
        .unwrap();
    let page: Value = response.json().await.unwrap();
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["seq"].as_u64().unwrap(),
                m["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Publishes over the HTTP API: status and body.
async fn post(edge: &TestEdge, channel: &str, body: Value) -> (u16, Value) {
    let response = edge
        .http()
        .post(format!(
            "http://{}/v1/apps/chat-demo/channels/{channel}/messages",
            edge.edge.addr
        ))
        .bearer_auth(edge.admin_token("chat-demo"))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_id_is_one_message_over_websockets_and_http() {
    let edge = TestEdge::start().await;
    let mut sub = edge.connect(&edge.token("chat-demo", "sub")).await;
    let mut alice = edge.connect(&edge.token("chat-demo", "alice")).await;
    let mut bob = edge.connect(&edge.token("chat-demo", "bob")).await;
    sub.subscribe("angry").await;

    let first = alice.publish("angry", json!({"text": "once"}), "p1").await;
    assert_eq!(
        first,
        json!({"type": "ack", "id": "p1", "channel": "angry", "seq": 1})
    );
    let repeat =
        json!({"type": "ack", "id": "p1", "channel": "angry", "seq": 1, "duplicate": true});
    // Again on the same connection, then on another with other data: the first one's ack.
    assert_eq!(
        alice.publish("angry", json!({"text": "once"}), "p1").await,
        repeat
    );
    assert_eq!(
        bob.publish("angry", json!({"text": "other"}), "p1").await,
        repeat
    );
    // An application server retrying over HTTP: 200, the first seq, and `duplicate`.
    let (status, body) = post(
        &edge,
        "angry",
        json!({"data": {"text": "once"}, "id": "p1"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"channel": "angry", "seq": 1, "id": "p1", "duplicate": true})
    );
    // An HTTP publish first, then a WebSocket one of the same id: still one message.
    let (_, body) = post(
        &edge,
        "angry",
        json!({"data": {"text": "server"}, "id": "p2"}),
    )
    .await;
    assert_eq!(body["seq"], 2, "{body}");
    let ack = bob.publish("angry", json!({"text": "server"}), "p2").await;
    assert_eq!(
        (ack["seq"].clone(), ack["duplicate"].clone()),
        (json!(2), json!(true))
    );

    // Subscribers got each message once, as the functions made it.
    let (m1, _) = sub.recv_until("message").await;
    assert_eq!(
        (m1["seq"].clone(), m1["data"]["text"].clone()),
        (json!(1), json!("😡 ONCE!!! 😡"))
    );
    let (m2, _) = sub.recv_until("message").await;
    assert_eq!(m2["seq"], 2);
    sub.silent_for(300).await;
    assert_eq!(
        history(&edge, "angry").await,
        [(1, "p1".into()), (2, "p2".into())]
    );

    // The same id on another channel is another message.
    let ack = alice.publish("boring", json!({"text": "once"}), "p1").await;
    assert_eq!(
        ack,
        json!({"type": "ack", "id": "p1", "channel": "boring", "seq": 1})
    );
    // Ids Echo makes up are never compared.
    let (_, a) = post(&edge, "boring", json!({"data": 1})).await;
    let (_, b) = post(&edge, "boring", json!({"data": 1})).await;
    assert_eq!((a["seq"].clone(), b["seq"].clone()), (json!(2), json!(3)));
    assert_eq!(a.get("duplicate"), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn racing_publishes_of_one_id_commit_once() {
    let edge = TestEdge::start().await;
    let mut sub = edge.connect(&edge.token("chat-demo", "sub")).await;
    sub.subscribe("boring").await;
    let mut publishers = Vec::new();
    for i in 0..8 {
        publishers.push(
            edge.connect(&edge.token("chat-demo", &format!("p{i}")))
                .await,
        );
    }
    // Every publish is on the wire before any ack is read.
    for p in &mut publishers {
        p.send(json!({"action": "publish", "channel": "boring", "data": "x", "id": "race"}))
            .await;
    }
    let mut acks = Vec::new();
    for p in &mut publishers {
        let (ack, _) = p.recv_until("ack").await;
        acks.push(ack);
    }
    assert!(acks.iter().all(|a| a["seq"] == 1), "{acks:?}");
    let first: Vec<&Value> = acks
        .iter()
        .filter(|a| a.get("duplicate").is_none())
        .collect();
    assert_eq!(first.len(), 1, "exactly one commits: {acks:?}");
    let (m, _) = sub.recv_until("message").await;
    assert_eq!(m["seq"], 1);
    sub.silent_for(300).await;
    assert_eq!(history(&edge, "boring").await, [(1, "race".into())]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_window_survives_a_restart_and_ends() {
    let edge = TestEdge::start_with(
        |c| c.limits.dedup_window_secs = 2,
        echo_chat_demo::functions(),
    )
    .await;
    let (_, body) = post(&edge, "boring", json!({"data": 1, "id": "r1"})).await;
    assert_eq!(body["seq"], 1);
    let edge = edge.restart().await;
    let (_, body) = post(&edge, "boring", json!({"data": 1, "id": "r1"})).await;
    assert_eq!(
        (body["seq"].clone(), body["duplicate"].clone()),
        (json!(1), json!(true))
    );
    // Past the window the id names a new message.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (_, body) = post(&edge, "boring", json!({"data": 1, "id": "r1"})).await;
    assert_eq!(body, json!({"channel": "boring", "seq": 2, "id": "r1"}));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_window_longer_than_history_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = TestEdge::config(dir.path());
    config.history_retention = Duration::from_secs(60);
    config.limits.dedup_window_secs = 120;
    let Err(e) = echo_edge::start(config).await else {
        panic!("an edge whose ids outlive their messages started");
    };
    assert!(e.to_string().contains("dedup window (120 s)"), "{e}");
    assert!(e.to_string().contains("history retention (60 s)"), "{e}");
}
