//! API Gateway's limits, enforced locally: idle timeout, maximum age, slow consumers,
//! subscriptions per connection, frames of at most 128 KB.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use echo_core::limits::DEFAULT_MAX_MESSAGE_BYTES;
use echo_tests::TestEdge;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread")]
async fn idle_and_old_connections_are_closed_with_going_away() {
    let edge = TestEdge::start_with(
        |c| c.idle_timeout = Duration::from_millis(400),
        echo_chat_demo::functions(),
    )
    .await;
    let mut idle = edge.connect(&edge.token("chat-demo", "a")).await;
    let mut busy = edge.connect(&edge.token("chat-demo", "b")).await;
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        busy.send(json!({"action": "ping"})).await;
        assert_eq!(busy.recv().await["type"], "pong");
    }
    assert_eq!(
        idle.closed_with().await,
        Some((1001, "idle timeout".into()))
    );

    let max_age = Some((1001, "connection reached its maximum age".into()));
    let edge = TestEdge::start_with(
        |c| c.max_connection_age = Duration::from_millis(300),
        echo_chat_demo::functions(),
    )
    .await;
    let mut c = edge.connect(&edge.token("chat-demo", "a")).await;
    assert_eq!(c.closed_with().await, max_age);

    // A connection kept busy past its idle timeout still ends at its maximum age.
    let edge = TestEdge::start_with(
        |c| {
            c.idle_timeout = Duration::from_millis(300);
            c.max_connection_age = Duration::from_millis(900);
        },
        echo_chat_demo::functions(),
    )
    .await;
    let mut busy = edge.connect(&edge.token("chat-demo", "a")).await;
    let mut pings = 0;
    let closed = loop {
        pings += 1;
        assert!(
            pings <= 50,
            "still open after 5 s of pings, past its maximum age"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        // The close may already be on its way: a failed send leaves it to be read.
        let _ = busy
            .ws
            .send(Message::text(json!({"action": "ping"}).to_string()))
            .await;
        match tokio::time::timeout(Duration::from_secs(5), busy.ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                assert_eq!(v["type"], "pong", "{v}");
            }
            Ok(Some(Ok(Message::Close(c)))) => {
                break c.map(|c| (u16::from(c.code), c.reason.to_string()));
            }
            other => panic!("expected a pong or the close frame, got {other:?}"),
        }
    };
    assert_eq!(closed, max_age);
}

#[tokio::test(flavor = "multi_thread")]
async fn subscriptions_per_connection_are_capped() {
    let edge = TestEdge::start_with(
        |c| c.limits.max_subscriptions = 3,
        echo_chat_demo::functions(),
    )
    .await;
    let mut c = edge.connect(&edge.token("chat-demo", "a")).await;
    for ch in ["a", "b", "c"] {
        c.subscribe(ch).await;
    }
    c.send(json!({"action": "subscribe", "channel": "d"})).await;
    let e = c.recv().await;
    assert_eq!(e["code"], "limit_exceeded", "{e}");
    c.subscribe("a").await;
    c.send(json!({"action": "unsubscribe", "channel": "a"}))
        .await;
    c.recv().await;
    c.subscribe("d").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subscriber_that_stops_reading_is_dropped_and_others_get_everything() {
    // Bound by frames, then by bytes (four 64 KB messages) with room for many frames.
    slow_consumer_is_dropped(|c| c.outbound_queue = 16).await;
    slow_consumer_is_dropped(|c| c.outbound_queue_bytes = 256 * 1024).await;
}

async fn slow_consumer_is_dropped(configure: impl FnOnce(&mut echo_edge::EdgeConfig)) {
    let edge = TestEdge::start_with(configure, echo_chat_demo::functions()).await;
    let mut stalled = edge.connect(&edge.token("chat-demo", "stalled")).await;
    let mut reader = edge.connect(&edge.token("chat-demo", "reader")).await;
    let mut publisher = edge.connect(&edge.token("chat-demo", "pub")).await;
    stalled.subscribe("boring").await;
    reader.subscribe("boring").await;

    // Large messages fill the stalled client's socket buffers, then its queue.
    let payload = "p".repeat(64 * 1024);
    let reading = tokio::spawn(async move {
        for seq in 1..=300u64 {
            let m = reader.recv().await;
            assert_eq!(m["seq"], seq);
        }
        reader
    });
    for i in 0..300 {
        publisher
            .send(json!({"action": "publish", "channel": "boring", "data": payload}))
            .await;
        let ack = publisher.recv().await;
        assert_eq!(ack["type"], "ack", "publish {i}: {ack}");
    }
    let _reader = tokio::time::timeout(Duration::from_secs(60), reading)
        .await
        .unwrap()
        .unwrap();
    // The stalled client, reading at last, finds its connection closed as a slow consumer.
    let code = stalled.closed().await;
    assert!(code.is_none() || code == Some(4008), "closed with {code:?}");
    assert_eq!(
        edge.edge.state.gateway.len(),
        2,
        "only the stalled connection is gone"
    );
}

/// A connection that publishes faster than allowed gets `rate_limited` for the excess, with the
/// publish's id and when to retry; its other publishes, other connections and the connection
/// itself are unaffected.
#[tokio::test(flavor = "multi_thread")]
async fn publish_floods_are_rate_limited_per_connection() {
    let edge = TestEdge::start_with(
        |c| {
            c.publish_rate = 5;
            c.publish_burst = 3;
        },
        echo_chat_demo::functions(),
    )
    .await;
    let mut flood = edge.connect(&edge.token("chat-demo", "flood")).await;
    let mut outcomes = Vec::new();
    for i in 0..6 {
        let r = flood
            .publish("boring", json!({"text": i}), &format!("f{i}"))
            .await;
        outcomes.push(r);
    }
    let acked = outcomes.iter().filter(|r| r["type"] == "ack").count();
    assert_eq!(acked, 3, "the burst goes through: {outcomes:?}");
    let refused = &outcomes[5];
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["code"], "rate_limited");
    assert_eq!(refused["id"], "f5");
    assert!(
        refused["message"].as_str().unwrap().contains("retry in"),
        "{refused}"
    );
    // Another connection has its own allowance.
    let mut calm = edge.connect(&edge.token("chat-demo", "calm")).await;
    assert_eq!(
        calm.publish("boring", json!("hi"), "c1").await["type"],
        "ack"
    );
    // After a pause the flooding connection may publish again; it was never closed.
    tokio::time::sleep(std::time::Duration::from_millis(450)).await;
    assert_eq!(
        flood.publish("boring", json!("again"), "f9").await["type"],
        "ack"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_beyond_the_maximum_are_refused_until_one_closes() {
    let edge =
        TestEdge::start_with(|c| c.max_connections = Some(2), echo_chat_demo::functions()).await;
    let mut admin = edge.connect(&edge.admin_token("chat-demo")).await;
    admin.subscribe("$status").await;
    let alice = edge.connect(&edge.token("chat-demo", "alice")).await;
    let m = admin.recv().await;
    assert_eq!(
        (m["data"]["event"].clone(), m["data"]["user"].clone()),
        (json!("connected"), json!("alice"))
    );

    let url = edge.url(&edge.token("chat-demo", "bob"));
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 503);
            assert_eq!(response.headers()["retry-after"], "1");
            let body: serde_json::Value =
                serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(body["code"], "limit_exceeded", "{body}");
            assert!(
                body["message"]
                    .as_str()
                    .unwrap()
                    .contains("maximum of 2 connections"),
                "{body}"
            );
        }
        other => panic!("expected a 503 refusal, got {other:?}"),
    }
    // `$connect` never ran for the refused upgrade: nothing was recorded or announced.
    admin.silent_for(300).await;

    alice.close().await;
    let m = admin.recv().await;
    assert_eq!(
        (m["data"]["event"].clone(), m["data"]["user"].clone()),
        (json!("disconnected"), json!("alice"))
    );
    // The place is given back once alice's socket is gone.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let bob = loop {
        match tokio_tungstenite::connect_async(url.as_str()).await {
            Ok((ws, _)) => break ws,
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 503 => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "alice's place was not given back"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    };
    let m = admin.recv().await;
    assert_eq!(
        (m["data"]["event"].clone(), m["data"]["user"].clone()),
        (json!("connected"), json!("bob"))
    );
    drop(bob);
}

/// Forty messages of 100 KB: `history` and the `subscribe since` replay come in frames API
/// Gateway carries (the test client checks every frame against 128 KB), paged with `more` and
/// `replayTo`, with nothing missed; a message whose delivered frame would be over the limit is
/// refused before it is stored.
#[tokio::test(flavor = "multi_thread")]
async fn large_history_and_replay_come_in_frames_api_gateway_carries() {
    let edge = TestEdge::start().await;
    let mut a = edge.connect(&edge.token("chat-demo", "a")).await;
    let pad = "x".repeat(100_000);
    for i in 1..=40u64 {
        let ack = a
            .publish("boring", json!({"i": i, "pad": pad}), &format!("p{i}"))
            .await;
        assert_eq!(ack["seq"], i, "{}", ack["message"]);
    }

    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let since = seen.last().copied().unwrap_or(0);
        a.send(json!({"action": "history", "channel": "boring", "since": since, "limit": 1000}))
            .await;
        let page = a.recv().await;
        assert_eq!(page["type"], "history", "{}", page["message"]);
        pages += 1;
        let messages = page["messages"].as_array().unwrap();
        assert!(
            !messages.is_empty(),
            "a page with more to come is never empty"
        );
        seen.extend(messages.iter().map(|m| m["seq"].as_u64().unwrap()));
        if page["more"] == json!(false) {
            break;
        }
        assert_eq!(page["more"], true);
    }
    assert_eq!(
        seen,
        (1..=40).collect::<Vec<_>>(),
        "every message, in order"
    );
    assert_eq!(pages, 40, "two 100 KB messages never share a 128 KB frame");

    let mut b = edge.connect(&edge.token("chat-demo", "b")).await;
    b.send(json!({"action": "subscribe", "channel": "boring", "since": 0}))
        .await;
    let subscribed = b.recv().await;
    assert_eq!(subscribed["seq"], 40);
    let replay_to = subscribed["replayTo"].as_u64().unwrap();
    assert!(
        (5..40).contains(&replay_to),
        "the replay stops at 1 MiB: {subscribed}"
    );
    for seq in 1..=replay_to {
        let m = b.recv().await;
        assert_eq!(
            (m["seq"].as_u64(), m["data"]["i"].as_u64()),
            (Some(seq), Some(seq))
        );
    }
    a.publish("boring", json!({"i": 41}), "p41").await;
    assert_eq!(
        b.recv().await["seq"],
        41,
        "live messages follow the replay; the client reads the rest with history"
    );

    // Under the limit as a frame, over it once delivered (sender, seq and time are added).
    let near = "y".repeat(DEFAULT_MAX_MESSAGE_BYTES - 100);
    let refused = a.publish("boring", json!(near), "huge").await;
    assert_eq!(refused["code"], "too_large", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("nothing was stored"),
        "{refused}"
    );
    a.publish("boring", json!({"i": 42}), "p42").await;
    assert_eq!(b.recv().await["seq"], 42, "the refused message took no seq");
}

/// Sockets that never become WebSockets: silent ones and one that drips its request a header at
/// a time. Each takes a place in the socket capacity (the WebSockets allowed plus room for
/// handshakes) and is closed once the handshake time passes; past the capacity a socket is
/// closed at once. The management API answers all along, and a client gets in once the room is
/// back.
#[tokio::test(flavor = "multi_thread")]
async fn sockets_that_are_not_websockets_are_bounded_and_closed_in_time() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let edge = TestEdge::start_with(
        |c| {
            c.max_connections = Some(4);
            c.handshake_timeout = Duration::from_millis(800);
        },
        echo_chat_demo::functions(),
    )
    .await;
    let (_, sockets) = echo_edge::capacity::limits(Some(4), None);
    let started = tokio::time::Instant::now();
    let mut silent = Vec::new();
    for _ in 0..sockets + 10 {
        silent.push(
            tokio::net::TcpStream::connect(edge.edge.addr)
                .await
                .unwrap(),
        );
    }
    let mut drip = tokio::net::TcpStream::connect(edge.edge.addr)
        .await
        .unwrap();

    // Past the capacity, the oldest give way to the newest: as many are closed at once.
    let mut closed_at_once = 0;
    for s in &mut silent {
        let mut b = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(100), s.read(&mut b)).await
        {
            closed_at_once += 1;
        }
    }
    assert!(closed_at_once >= 10, "{closed_at_once} closed at once");
    // The management API is not held up.
    let r = edge
        .http()
        .get(edge.manage_url("/associations"))
        .bearer_auth(echo_tests::MANAGE_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Every held socket is closed within the handshake time (and a little).
    for s in &mut silent {
        let mut b = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), s.read(&mut b)).await;
        assert!(matches!(read, Ok(Ok(0) | Err(_))), "{read:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    drop(silent);

    // A request dripped a header every 200 ms is cut off at the handshake time.
    let mut drip_started = tokio::time::Instant::now();
    loop {
        // The first attempt may have landed past the capacity; once there is room it is held.
        if drip.write_all(b"GET / HTTP/1.1\r\n").await.is_ok() {
            let mut b = [0u8; 1];
            if tokio::time::timeout(Duration::from_millis(50), drip.read(&mut b))
                .await
                .is_err()
            {
                break;
            }
        }
        drip = tokio::net::TcpStream::connect(edge.edge.addr)
            .await
            .unwrap();
        drip_started = tokio::time::Instant::now();
    }
    let cut = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if drip.write_all(b"X-Slow: 1\r\n").await.is_err() {
            break drip_started.elapsed();
        }
        let mut b = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(10), drip.read(&mut b)).await
        {
            break drip_started.elapsed();
        }
        assert!(
            drip_started.elapsed() < Duration::from_secs(5),
            "never cut off"
        );
    };
    assert!(cut >= Duration::from_millis(700), "cut after {cut:?}");

    // And a client gets in.
    let mut c = edge.connect(&edge.token("chat-demo", "late")).await;
    c.send(json!({"action": "ping"})).await;
    assert_eq!(c.recv().await["type"], "pong");
}

/// Sockets that sit in their handshake without a byte cannot keep a client out, even while more
/// keep coming: past the capacity the oldest of them gives way to the new socket, so a client
/// (whose request comes at once) gets in long before any handshake time runs out.
#[tokio::test(flavor = "multi_thread")]
async fn idle_sockets_give_way_to_a_client() {
    use tokio::io::AsyncReadExt;
    let edge = TestEdge::start_with(
        |c| {
            c.max_connections = Some(4);
            c.handshake_timeout = Duration::from_secs(60);
        },
        echo_chat_demo::functions(),
    )
    .await;
    let (_, sockets) = echo_edge::capacity::limits(Some(4), None);
    let started = tokio::time::Instant::now();
    // Every place taken, then as many again, as someone who keeps reconnecting would.
    let mut idle = Vec::new();
    for _ in 0..sockets * 2 {
        idle.push(
            tokio::net::TcpStream::connect(edge.edge.addr)
                .await
                .unwrap(),
        );
    }
    // A client gets in while they sit there.
    let mut c = edge.connect(&edge.token("chat-demo", "real")).await;
    c.send(json!({"action": "ping"})).await;
    assert_eq!(c.recv().await["type"], "pong");
    assert!(started.elapsed() < Duration::from_secs(30));
    // The oldest idle sockets were closed to make room; the newest are still held.
    let mut first = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), idle[0].read(&mut first)).await;
    assert!(matches!(read, Ok(Ok(0) | Err(_))), "{read:?}");
    let newest = idle.last_mut().unwrap();
    let read = tokio::time::timeout(Duration::from_millis(300), newest.read(&mut first)).await;
    assert!(read.is_err(), "the newest socket is still held: {read:?}");
}

/// Subscribes and unsubscribes share the connection's allowance with publishes: a flood of them
/// is refused past it, so a client cannot grow `$status` (one event per subscription change)
/// faster than that.
#[tokio::test(flavor = "multi_thread")]
async fn subscribe_floods_are_rate_limited_and_status_stays_small() {
    let edge = TestEdge::start_with(
        |c| {
            c.publish_rate = 5;
            c.publish_burst = 10;
        },
        echo_chat_demo::functions(),
    )
    .await;
    let mut c = edge.connect(&edge.token("chat-demo", "flood")).await;
    for i in 0..40 {
        let action = if i % 2 == 0 {
            "subscribe"
        } else {
            "unsubscribe"
        };
        c.send(json!({"action": action, "channel": "boring"})).await;
    }
    let (mut answered, mut limited) = (0, 0);
    while answered + limited < 40 {
        let v = c.recv().await;
        match v["type"].as_str() {
            Some("subscribed" | "unsubscribed") => answered += 1,
            _ => {
                assert_eq!(v["code"], "rate_limited", "{v}");
                assert_eq!(v["channel"], "boring", "{v}");
                limited += 1;
            }
        }
    }
    assert!(answered <= 12, "{answered} went through");
    assert!(limited >= 28, "{limited} refused");

    let mut admin = edge.connect(&edge.admin_token("chat-demo")).await;
    admin
        .send(json!({"action": "history", "channel": "$status", "limit": 1000}))
        .await;
    let status = admin.recv().await;
    let events = status["messages"].as_array().unwrap().len();
    assert!(
        events <= 14,
        "{events} $status events for {answered} changes"
    );
}

/// An app's `maxConnections` (associations `limits`): past it, connects of that app are refused
/// with 503 `limit_exceeded` and counted per app; other apps are unaffected; a connection that
/// ends gives its place back.
#[tokio::test(flavor = "multi_thread")]
async fn an_apps_connections_are_capped() {
    let edge = TestEdge::start().await;
    let (status, body) = edge
        .put_associations(r#"{"apps":{"capped":{"limits":{"maxConnections":2}}}}"#)
        .await;
    assert_eq!(status, 200, "{body}");
    let first = edge.connect(&edge.token("capped", "a")).await;
    let _second = edge.connect(&edge.token("capped", "b")).await;
    let (status, body) = edge.refusal(&edge.url(&edge.token("capped", "c"))).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "limit_exceeded", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("maximum of 2"),
        "{body}"
    );
    // Another app is not held back.
    let mut other = edge.connect(&edge.token("chat-demo", "d")).await;
    assert_eq!(other.subscribe("room").await["type"], "subscribed");
    let metrics = edge.metrics().await;
    assert!(
        metrics.contains(r#"echo_app_connects_total{app="capped",outcome="refused"} 1"#)
            && metrics.contains(r#"echo_app_connects_total{app="capped",outcome="accepted"} 2"#),
        "{metrics}"
    );

    first.close().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio_tungstenite::connect_async(edge.url(&edge.token("capped", "c"))).await {
            Ok(_) => break,
            Err(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("the place was not given back: {e}"),
        }
    }
}

/// An app's `publishRate`: its connections' publishes (and its HTTP API publishes) together are
/// refused with `rate_limited` past it, whichever connection makes them; another app is not.
#[tokio::test(flavor = "multi_thread")]
async fn an_apps_publishes_are_limited_across_its_connections() {
    let edge = TestEdge::start().await;
    let (status, body) = edge
        .put_associations(r#"{"apps":{"busy":{"limits":{"publishRate":1,"publishBurst":1}}}}"#)
        .await;
    assert_eq!(status, 200, "{body}");
    let mut a = edge.connect(&edge.token("busy", "a")).await;
    let mut b = edge.connect(&edge.token("busy", "b")).await;
    let mut quiet = edge.connect(&edge.token("chat-demo", "q")).await;
    // One publish a second for the whole app: of five at once from two connections, at most two
    // (one window, and the next if the five straddle its end) are taken.
    let (mut acked, mut refused) = (0, Vec::new());
    for i in 0..5 {
        let c = if i % 2 == 0 { &mut a } else { &mut b };
        let answer = c.publish("room", json!(i), &format!("p{i}")).await;
        match answer["type"].as_str() {
            Some("ack") => acked += 1,
            _ => refused.push(answer),
        }
    }
    assert!(
        (1..=2).contains(&acked),
        "{acked} acked, refused: {refused:?}"
    );
    let first = &refused[0];
    assert_eq!(first["code"], "rate_limited", "{first}");
    assert!(
        first["message"]
            .as_str()
            .unwrap()
            .contains("app busy publishes faster"),
        "{first}"
    );
    // Over HTTP too: of three at once, at least one is refused.
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let response = edge
            .http()
            .post(format!(
                "http://{}/v1/apps/busy/channels/room/messages",
                edge.edge.addr
            ))
            .bearer_auth(edge.admin_token("busy"))
            .body(r#"{"data":"from the server"}"#)
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    // Another app publishes as it likes.
    for i in 0..5 {
        let answer = quiet.publish("room", json!(i), &format!("q{i}")).await;
        assert_eq!(answer["type"], "ack", "{answer}");
    }
}
