//! What survives a restart of the edge.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use echo_tests::TestEdge;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn history_and_sequences_survive_a_restart() {
    let edge = TestEdge::start().await;
    let mut a = edge.connect(&edge.token("chat-demo", "a")).await;
    for i in 1..=3 {
        let ack = a
            .publish("angry", json!({"text": format!("m{i}")}), &format!("{i}"))
            .await;
        assert_eq!(ack["seq"], i);
    }
    let (status, _) = edge
        .put_associations(
            r#"{"apps":{"chat-demo":{"channels":{"angry":{"functions":["backwards"]}}}}}"#,
        )
        .await;
    assert_eq!(status, 200);

    let edge = edge.restart().await;
    assert!(
        a.closed().await.is_some_and(|c| c == 1001),
        "clients are told the edge is going away"
    );

    let mut b = edge.connect(&edge.token("chat-demo", "b")).await;
    b.send(json!({"action": "subscribe", "channel": "angry", "since": 1}))
        .await;
    assert_eq!(
        b.recv().await,
        json!({"type": "subscribed", "channel": "angry", "seq": 3, "replayTo": 3})
    );
    assert_eq!(b.recv().await["data"]["text"], "😡 M2!!! 😡");
    assert_eq!(b.recv().await["data"]["text"], "😡 M3!!! 😡");

    b.send(json!({"action": "history", "channel": "angry"}))
        .await;
    let h = b.recv().await;
    assert_eq!(h["messages"].as_array().unwrap().len(), 3);

    let ack = b.publish("angry", json!({"text": "abc"}), "4").await;
    assert_eq!(ack["seq"], 4, "seq continues after the restart");
    assert_eq!(
        b.recv().await["data"]["text"],
        "cba",
        "pushed associations survive the restart"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn history_older_than_the_retention_is_pruned_and_seq_continues() {
    let edge = TestEdge::start_with(
        |c| {
            c.history_retention = std::time::Duration::from_secs(1);
            // Ids may not outlive their messages.
            c.limits.dedup_window_secs = 1;
        },
        echo_chat_demo::functions(),
    )
    .await;
    let mut a = edge.connect(&edge.token("chat-demo", "a")).await;
    assert_eq!(a.publish("boring", json!("old"), "1").await["seq"], 1);
    let mut remaining = usize::MAX;
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        a.send(json!({"action": "history", "channel": "boring"}))
            .await;
        remaining = a.recv().await["messages"].as_array().unwrap().len();
        if remaining == 0 {
            break;
        }
    }
    assert_eq!(remaining, 0, "the old message was pruned");
    assert_eq!(a.publish("boring", json!("new"), "2").await["seq"], 2);
}
