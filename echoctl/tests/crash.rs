//! The edge killed with SIGKILL in the middle of traffic, then restarted on the same data
//! directory: every message acknowledged to its publisher is in history under the seq its ack
//! gave, and seq never repeats or goes backwards.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::Duration;

use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

mod common;

use common::{connect, demo_token as token, next_json, start_unlimited as start};

/// Publishes until the connection dies; returns the acks (id to seq).
async fn publish_until_killed(addr: String, token: String, name: usize) -> HashMap<String, u64> {
    let mut ws = connect(&addr, &token).await;
    let mut acks = HashMap::new();
    let mut i = 0u64;
    loop {
        // A few in flight at a time.
        for _ in 0..4 {
            i += 1;
            let frame = json!({"action": "publish", "channel": "crash", "data": {"n": i}, "id": format!("p{name}-{i}")});
            if ws.send(Message::text(frame.to_string())).await.is_err() {
                return acks;
            }
        }
        for _ in 0..4 {
            match next_json(&mut ws).await {
                Some(v) if v["type"] == "ack" => {
                    acks.insert(
                        v["id"].as_str().unwrap().to_owned(),
                        v["seq"].as_u64().unwrap(),
                    );
                }
                Some(v) => panic!("unexpected frame {v}"),
                None => return acks,
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_traffic_loses_no_acknowledged_message() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (mut edge, addr) = start(&data);

    // A subscriber records what was delivered before the crash.
    let mut watcher = connect(&addr, &token(&data, "watcher")).await;
    watcher
        .send(Message::text(
            json!({"action": "subscribe", "channel": "crash"}).to_string(),
        ))
        .await
        .unwrap();
    assert_eq!(next_json(&mut watcher).await.unwrap()["type"], "subscribed");
    let watching = tokio::spawn(async move {
        let mut seqs = Vec::new();
        while let Some(v) = next_json(&mut watcher).await {
            seqs.push(v["seq"].as_u64().unwrap());
        }
        seqs
    });
    let publishers: Vec<_> = (0..3)
        .map(|p| {
            tokio::spawn(publish_until_killed(
                addr.clone(),
                token(&data, &format!("p{p}")),
                p,
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    edge.kill().unwrap(); // SIGKILL
    edge.wait().unwrap();

    let mut acked: HashMap<String, u64> = HashMap::new();
    for p in publishers {
        acked.extend(p.await.unwrap());
    }
    let delivered = watching.await.unwrap();
    assert!(
        acked.len() > 50,
        "traffic before the kill: {} acks",
        acked.len()
    );
    assert!(
        delivered.windows(2).all(|w| w[1] == w[0] + 1),
        "deliveries in order, without gaps"
    );

    // Restart on the same data directory and read everything back.
    let (mut edge, addr) = start(&data);
    let mut reader = connect(&addr, &token(&data, "reader")).await;
    let mut history: HashMap<u64, String> = HashMap::new();
    let mut since = 0u64;
    loop {
        reader
            .send(Message::text(
                json!({"action": "history", "channel": "crash", "since": since, "limit": 1000})
                    .to_string(),
            ))
            .await
            .unwrap();
        let page = next_json(&mut reader).await.unwrap();
        let messages = page["messages"].as_array().unwrap().clone();
        if messages.is_empty() {
            break;
        }
        for m in &messages {
            let seq = m["seq"].as_u64().unwrap();
            assert!(seq > since, "history in seq order");
            since = seq;
            history.insert(seq, m["id"].as_str().unwrap().to_owned());
        }
    }
    for (id, seq) in &acked {
        assert_eq!(history.get(seq), Some(id), "acknowledged {id} as #{seq}");
    }
    let last = since;
    assert!(
        delivered.iter().all(|s| *s <= last),
        "everything delivered is stored"
    );
    // New messages continue after everything stored: seq never repeats.
    reader
        .send(Message::text(
            json!({"action": "publish", "channel": "crash", "data": "after", "id": "after"})
                .to_string(),
        ))
        .await
        .unwrap();
    let ack = next_json(&mut reader).await.unwrap();
    assert_eq!(ack["seq"].as_u64().unwrap(), last + 1, "{ack}");
    edge.kill().unwrap();
    edge.wait().unwrap();
}
