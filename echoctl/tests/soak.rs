//! A bounded soak: clients connect, subscribe, publish and disconnect at a steady rate against
//! the echoctl binary. Open file descriptors return to where they were, heap memory does not keep
//! growing, and a subscriber that stays connected receives every acknowledged message, in order.
//!
//! Two phases of `ECHO_SOAK_SECS` seconds each (default 8); run longer on demand, e.g.
//! `ECHO_SOAK_SECS=300 cargo test -p echoctl --test soak -- --nocapture`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

mod common;

use common::{Ws, connect, demo_token as token, start_unlimited as start};

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Anonymous resident memory: the heap and stacks, not the store's file pages (history grows
/// during a soak, and its pages are mapped).
fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

async fn recv(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("ok");
        if let Message::Text(t) = m {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

/// One client's life: connect, subscribe, publish `n`, leave. Returns the acknowledged seqs.
async fn churn_once(addr: &str, token: &str, n: usize) -> Vec<u64> {
    let mut ws = connect(addr, token).await;
    ws.send(Message::text(
        json!({"action": "subscribe", "channel": "soak"}).to_string(),
    ))
    .await
    .unwrap();
    let mut acked = Vec::new();
    let mut subscribed = false;
    for i in 0..n {
        ws.send(Message::text(
            json!({"action": "publish", "channel": "soak", "data": i, "id": format!("m{i}")})
                .to_string(),
        ))
        .await
        .unwrap();
    }
    while acked.len() < n || !subscribed {
        let v = recv(&mut ws).await;
        match v["type"].as_str() {
            Some("ack") => acked.push(v["seq"].as_u64().unwrap()),
            Some("subscribed") => subscribed = true,
            Some("message") => {}
            _ => panic!("unexpected {v}"),
        }
    }
    let _ = ws.close(None).await;
    acked
}

/// Churns with `clients` concurrent loops for `secs`; returns every acknowledged seq.
async fn phase(addr: &str, tokens: &[String], secs: u64) -> Vec<u64> {
    let until = Instant::now() + Duration::from_secs(secs);
    let loops: Vec<_> = tokens
        .iter()
        .map(|t| {
            let (addr, t) = (addr.to_owned(), t.clone());
            tokio::spawn(async move {
                let mut acked = Vec::new();
                while Instant::now() < until {
                    acked.extend(churn_once(&addr, &t, 5).await);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                acked
            })
        })
        .collect();
    let mut all = Vec::new();
    for l in loops {
        all.extend(l.await.unwrap());
    }
    all
}

#[tokio::test(flavor = "multi_thread")]
async fn churn_leaves_no_leak_and_loses_nothing() {
    let secs: u64 = std::env::var("ECHO_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (mut edge, addr) = start(&data);
    let pid = edge.id();
    let tokens: Vec<String> = (0..8)
        .map(|i| token(&data, &format!("churn-{i}")))
        .collect();

    // A subscriber that stays for the whole soak.
    let mut watcher = connect(&addr, &token(&data, "watcher")).await;
    watcher
        .send(Message::text(
            json!({"action": "subscribe", "channel": "soak"}).to_string(),
        ))
        .await
        .unwrap();
    assert_eq!(recv(&mut watcher).await["type"], "subscribed");
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let watching = tokio::spawn(async move {
        let mut seqs = Vec::new();
        loop {
            tokio::select! {
                _ = stop_rx.changed() => break,
                m = watcher.next() => match m {
                    Some(Ok(Message::Text(t))) => {
                        let v: Value = serde_json::from_str(t.as_str()).unwrap();
                        seqs.push(v["seq"].as_u64().unwrap());
                    }
                    Some(Ok(_)) => {}
                    _ => break,
                },
            }
        }
        seqs
    });

    // Warm up, then take the baseline.
    let mut acked = phase(&addr, &tokens, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (fds_before, rss_warm) = (fds(pid), rss_kb(pid));

    acked.extend(phase(&addr, &tokens, secs).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_first = rss_kb(pid);
    acked.extend(phase(&addr, &tokens, secs).await);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (fds_after, rss_second) = (fds(pid), rss_kb(pid));
    eprintln!(
        "soak: {} messages acknowledged; fds {fds_before} -> {fds_after}; rss {rss_warm} -> {rss_first} -> {rss_second} KB",
        acked.len()
    );

    // Every connection that left released its socket and tasks.
    assert!(
        fds_after <= fds_before + 2,
        "file descriptors: {fds_before} before, {fds_after} after"
    );
    // The heap grows with the store's cache of history pages (a few hundred bytes a message),
    // not with the connections that came and went: half a KB per message is allowed, which a
    // leak of a couple of KB per connection would exceed.
    let second_phase = acked.len() / 2;
    assert!(
        rss_second <= rss_first + second_phase as u64 / 2 + 1024,
        "heap grew from {rss_first} KB to {rss_second} KB across an identical phase of {second_phase} messages"
    );

    // Nothing acknowledged is lost: the watcher got every seq, once, in order.
    let _ = stop_tx.send(true);
    let seen = watching.await.unwrap();
    assert!(
        seen.windows(2).all(|w| w[1] == w[0] + 1),
        "in order, no gap, no repeat"
    );
    let seen: BTreeSet<u64> = seen.into_iter().collect();
    let missing: Vec<&u64> = acked.iter().filter(|s| !seen.contains(s)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not delivered: {missing:?}"
    );
    assert!(acked.len() > 100, "the soak ran: {}", acked.len());
    edge.kill().unwrap();
    edge.wait().unwrap();
}
