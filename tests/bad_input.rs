//! Every malformed frame gets an error and the connection keeps working.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use echo_tests::TestEdge;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread")]
async fn malformed_frames_get_errors_and_the_connection_survives() {
    let edge = TestEdge::start().await;
    let mut c = edge.connect(&edge.token("chat-demo", "a")).await;
    let cases: Vec<(&str, &str)> = vec![
        ("{not json", "not valid JSON"),
        ("42", "JSON object"),
        (r#"{"channel":"boring"}"#, "no \"action\""),
        (r#"{"action":7}"#, "must be a string"),
        (r#"{"action":"teleport"}"#, "unknown action"),
        (r#"{"action":"subscribe"}"#, "missing field `channel`"),
        (r#"{"action":"subscribe","channel":5}"#, "invalid type"),
        (
            r#"{"action":"subscribe","channel":"has space"}"#,
            "contains ' '",
        ),
        (r#"{"action":"subscribe","channel":"$other"}"#, "reserved"),
        (
            r#"{"action":"publish","channel":"boring"}"#,
            "needs \"data\"",
        ),
        (
            r#"{"action":"publish","channel":"boring","data":1,"extra":true}"#,
            "unknown field `extra`",
        ),
        (
            r#"{"action":"history","channel":"boring","limit":100000}"#,
            "limit",
        ),
    ];
    for (frame, expected) in cases {
        c.send_text(frame).await;
        let e = c.recv().await;
        assert_eq!(e["type"], "error", "{frame}");
        assert_eq!(e["code"], "bad_request", "{frame}: {e}");
        assert!(
            e["message"].as_str().unwrap().contains(expected),
            "{frame}: {e}"
        );
    }
    let long = "x".repeat(129);
    c.send(json!({"action": "subscribe", "channel": long}))
        .await;
    assert!(
        c.recv().await["message"]
            .as_str()
            .unwrap()
            .contains("longer than 128")
    );

    let deep = "[".repeat(10_000) + &"]".repeat(10_000);
    c.send_text(&format!(
        r#"{{"action":"publish","channel":"boring","data":{deep}}}"#
    ))
    .await;
    assert_eq!(
        c.recv().await["code"],
        "bad_request",
        "deep nesting is refused, not a crash"
    );

    c.send_raw(Message::binary(vec![1u8, 2, 3])).await;
    let e = c.recv().await;
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("binary frames are not supported"),
        "{e}"
    );

    let publish_id_kept =
        json!({"action": "publish", "channel": "bad channel", "data": 1, "id": "mine"});
    c.send(publish_id_kept).await;
    assert_eq!(
        c.recv().await["id"],
        "mine",
        "refused publishes can be correlated"
    );

    c.subscribe("boring").await;
    let ack = c.publish("boring", json!("still fine"), "ok").await;
    assert_eq!(ack["seq"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn oversize_messages_are_refused_and_the_connection_survives() {
    let edge = TestEdge::start().await;
    let mut c = edge.connect(&edge.token("chat-demo", "a")).await;
    c.subscribe("boring").await;
    let big = "x".repeat(128 * 1024 + 1);
    c.send(json!({"action": "publish", "channel": "boring", "data": big, "id": "big"}))
        .await;
    let e = c.recv().await;
    assert_eq!(e["code"], "too_large", "{e}");
    assert_eq!(
        e["id"], "big",
        "the error names the publish it answers: {e}"
    );
    assert!(e["message"].as_str().unwrap().contains("131072"));

    // Just under the limit, with the frame it is delivered in, goes through.
    let fits = "y".repeat(128 * 1024 - 200);
    let ack = c.publish("boring", json!(fits), "fits").await;
    assert_eq!(ack["seq"], 1, "{ack}");

    // Far beyond what the transport accepts: closed with 1009 rather than buffered.
    let huge = "z".repeat(2 * 1024 * 1024);
    c.send_text(&huge).await;
    assert_eq!(c.closed().await, Some(1009));

    // The edge is fine.
    let mut d = edge.connect(&edge.token("chat-demo", "b")).await;
    d.send(json!({"action": "ping"})).await;
    assert_eq!(d.recv().await["type"], "pong");
}
