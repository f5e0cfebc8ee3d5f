//! Publishing and delivery through the demo channels.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use echo_tests::TestEdge;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn two_clients_exchange_messages_on_boring() {
    let edge = TestEdge::start().await;
    let mut alice = edge.connect(&edge.token("chat-demo", "alice")).await;
    let mut bob = edge.connect(&edge.token("chat-demo", "bob")).await;
    assert_eq!(alice.subscribe("boring").await["seq"], 0);
    bob.subscribe("boring").await;

    let ack = alice
        .publish("boring", json!({"text": "hi bob"}), "a1")
        .await;
    assert_eq!(
        ack,
        json!({"type": "ack", "id": "a1", "channel": "boring", "seq": 1})
    );
    let got = bob.recv().await;
    assert_eq!(got["type"], "message");
    assert_eq!(got["channel"], "boring");
    assert_eq!(got["seq"], 1);
    assert_eq!(got["id"], "a1");
    assert_eq!(got["from"], "alice");
    assert_eq!(got["data"], json!({"text": "hi bob"}));
    assert!(got["ts"].as_u64().unwrap() > 1_600_000_000_000);

    let ack = bob
        .publish("boring", json!({"text": "hi alice"}), "b1")
        .await;
    assert_eq!(ack["seq"], 2);
    // Alice got her own message first, then Bob's.
    let own = alice.recv().await;
    assert_eq!(
        (own["seq"].clone(), own["from"].clone()),
        (json!(1), json!("alice"))
    );
    let from_bob = alice.recv().await;
    assert_eq!(from_bob["data"]["text"], "hi alice");
    assert_eq!(from_bob["seq"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn angry_channel_transforms_for_everyone() {
    let edge = TestEdge::start().await;
    let mut a = edge.connect(&edge.token("chat-demo", "a")).await;
    let mut b = edge.connect(&edge.token("chat-demo", "b")).await;
    a.subscribe("angry").await;
    b.subscribe("angry").await;
    let ack = a
        .publish("angry", json!({"text": "hello", "name": "A"}), "m1")
        .await;
    assert_eq!(ack["seq"], 1, "{ack}");
    for client in [&mut a, &mut b] {
        let (m, _) = client.recv_until("message").await;
        assert_eq!(m["data"], json!({"text": "😡 HELLO!!! 😡", "name": "A"}));
    }
    b.subscribe("backwards").await;
    b.publish("backwards", json!({"text": "noël 👍🏽"}), "m2")
        .await;
    let (m, _) = b.recv_until("message").await;
    assert_eq!(m["data"]["text"], "🏽👍 lëon".replace("🏽👍", "👍🏽"));
    b.subscribe("robot").await;
    b.publish("robot", json!({"text": "hello world"}), "m3")
        .await;
    let (m, _) = b.recv_until("message").await;
    assert_eq!(
        m["data"]["text"],
        "🤖 BEEP BOOP. HELLO · WORLD. END OF LINE. 🤖"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unsubscribed_clients_get_nothing_and_order_is_kept() {
    let edge = TestEdge::start().await;
    let mut a = edge.connect(&edge.token("chat-demo", "a")).await;
    let mut b = edge.connect(&edge.token("chat-demo", "b")).await;
    b.subscribe("boring").await;
    for i in 0..50 {
        a.send(json!({"action": "publish", "channel": "boring", "data": i}))
            .await;
    }
    for i in 0..50u64 {
        let m = b.recv().await;
        assert_eq!(m["data"], json!(i), "messages arrive in publish order");
        assert_eq!(m["seq"], json!(i + 1), "seq increases by one");
    }
    b.send(json!({"action": "unsubscribe", "channel": "boring"}))
        .await;
    assert_eq!(
        b.recv().await,
        json!({"type": "unsubscribed", "channel": "boring"})
    );
    let ack = a.publish("boring", json!("after"), "late").await;
    assert_eq!(ack["seq"], 51);
    b.silent_for(300).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn subscribe_since_replays_exactly_what_was_missed() {
    let edge = TestEdge::start().await;
    let mut a = edge.connect(&edge.token("chat-demo", "a")).await;
    for i in 1..=5 {
        a.publish("boring", json!(i), &format!("p{i}")).await;
    }
    let mut b = edge.connect(&edge.token("chat-demo", "b")).await;
    b.send(json!({"action": "subscribe", "channel": "boring", "since": 2}))
        .await;
    assert_eq!(
        b.recv().await,
        json!({"type": "subscribed", "channel": "boring", "seq": 5, "replayTo": 5})
    );
    for seq in 3..=5 {
        assert_eq!(b.recv().await["seq"], seq);
    }
    a.publish("boring", json!(6), "p6").await;
    assert_eq!(
        b.recv().await["seq"],
        6,
        "live messages follow the replay without gap or repeat"
    );

    b.send(json!({"action": "history", "channel": "boring", "since": 4, "limit": 1}))
        .await;
    let h = b.recv().await;
    assert_eq!(h["type"], "history");
    assert_eq!(h["messages"].as_array().unwrap().len(), 1);
    assert_eq!(h["messages"][0]["seq"], 5);
    assert_eq!(h["messages"][0]["data"], 5);
}

/// Publishers on one channel at once: every subscriber, including one that joins halfway with
/// `since`, gets each seq exactly once and in order, and each publisher's messages keep the
/// order it sent them in.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_publishers_keep_one_order_for_everyone() {
    let edge = TestEdge::start().await;
    let mut early = edge.connect(&edge.token("chat-demo", "early")).await;
    early.subscribe("busy").await;
    let (publishers, each) = (4usize, 60usize);
    let sending: Vec<_> = (0..publishers)
        .map(|p| {
            let token = edge.token("chat-demo", &format!("p{p}"));
            let url = edge.url(&token);
            tokio::spawn(async move {
                use futures_util::{SinkExt, StreamExt};
                let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
                // Send everything before reading any ack: the edge has many in flight.
                for i in 0..each {
                    let frame = json!({"action": "publish", "channel": "busy", "data": {"p": p, "i": i}, "id": format!("{p}-{i}")});
                    ws.send(tokio_tungstenite::tungstenite::Message::text(frame.to_string()))
                        .await
                        .unwrap();
                }
                let mut acked = 0;
                while acked < each {
                    let m = ws.next().await.unwrap().unwrap();
                    let v: serde_json::Value = serde_json::from_str(m.to_text().unwrap()).unwrap();
                    assert_eq!(v["type"], "ack", "{v}");
                    acked += 1;
                }
            })
        })
        .collect();
    // Join halfway, asking for everything from the start.
    let mut late = edge.connect(&edge.token("chat-demo", "late")).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    late.send(json!({"action": "subscribe", "channel": "busy", "since": 0}))
        .await;
    for s in sending {
        s.await.unwrap();
    }
    let total = publishers * each;
    for client in [&mut early, &mut late] {
        let mut seqs = Vec::new();
        let mut last_per_publisher = vec![-1i64; publishers];
        while seqs.len() < total {
            let v = client.recv().await;
            if v["type"] != "message" {
                assert_eq!(v["type"], "subscribed", "{v}");
                continue;
            }
            seqs.push(v["seq"].as_u64().unwrap());
            let p = v["data"]["p"].as_u64().unwrap() as usize;
            let i = v["data"]["i"].as_i64().unwrap();
            assert!(i > last_per_publisher[p], "publisher {p}'s order: {v}");
            last_per_publisher[p] = i;
        }
        assert_eq!(seqs, (1..=total as u64).collect::<Vec<_>>());
        client.silent_for(200).await;
    }
}
