//! Faithful mode: the edge as API Gateway in front of the real handler, fan-out and function
//! Lambdas under `cargo lambda watch`, which use DynamoDB (dynalite) through the AWS SDK and post
//! back through the edge's @connections API with the SDK's management client.
//!
//! Needs `cargo lambda` and dynalite (`scripts/test-all.sh` installs both). The first run builds
//! the Lambdas, which takes a few minutes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use echo_core::store::ConnectionRecords;
use echo_core::store::Subscriptions;
use std::sync::Arc;
use std::time::{Duration, Instant};

use echo_aws::store::dynamodb::{DynamoStore, Tables};
use echo_core::auth::Claims;
use echo_core::channel::{AppId, ChannelKey, ChannelName};
use echo_core::clock::{Clock, SystemClock};
use echo_core::ids::ConnectionId;
use echo_core::store::{AssociationsStore, ConnectionRecord};
use echo_edge::invoker::InProcess;
use echo_tests::{MANAGE_TOKEN, SECRET, TestEdge, services};
use serde_json::json;

/// Subscribers per fan-out invocation: small, so a handful of clients spans several invocations.
const BATCH: usize = 2;

/// The largest channel the message handler delivers to itself.
const DIRECT: usize = 3;

/// The JSON lines of the Lambdas' log that `matches`, waiting up to 10 s for one.
async fn logged(
    log: &std::path::Path,
    matches: impl Fn(&serde_json::Value) -> bool,
) -> Vec<serde_json::Value> {
    let started = Instant::now();
    loop {
        let found: Vec<serde_json::Value> = std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .filter(|v| matches(v))
            .collect();
        if !found.is_empty() || started.elapsed() > Duration::from_secs(10) {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether `line` is fan-out's report of a delivery on `channel` (`app/name`).
fn fanned_out(line: &serde_json::Value, channel: &str) -> bool {
    line["fields"]["message"] == "fan-out done" && line["fields"]["channel"] == channel
}

/// dynalite, the Lambdas under `cargo lambda watch` and the edge in front of them.
struct Faithful {
    edge: TestEdge,
    store: Arc<DynamoStore>,
    lambdas: services::Service,
    dynamo: services::Service,
}

impl Faithful {
    /// With `associations` stored, the Lambdas in `warm` built and answering with `extra` in
    /// their environment, and the edge configured further by `configure`.
    async fn start(
        associations: &str,
        warm: &[&str],
        extra: &[(&'static str, &str)],
        configure: impl FnOnce(&mut echo_edge::EdgeConfig),
    ) -> Self {
        let dynamo = services::dynalite().await;
        let store = Arc::new(DynamoStore::new(
            services::dynamodb_client(&dynamo.endpoint),
            Tables {
                connections: "echo-connections".into(),
                history: "echo-history".into(),
                subscriber_shards: 4,
                history_ttl_secs: 86_400,
            },
        ));
        store.create_tables().await.unwrap();
        store.save_associations(associations).await.unwrap();

        let manage_port = services::free_port();
        // The Lambdas call the Lambda API (functions, fan-out) at the same watch they run
        // under; its port is only known once it runs, so they find it through a fixed one.
        let lambda_port = services::free_port();
        let mut env: Vec<(&str, String)> = vec![
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", MANAGE_TOKEN.into()),
            ("AWS_SECRET_ACCESS_KEY", MANAGE_TOKEN.into()),
            ("AWS_ENDPOINT_URL_DYNAMODB", dynamo.endpoint.clone()),
            ("ECHO_JWT_SECRET", SECRET.into()),
            ("ECHO_CONNECTIONS_TABLE", "echo-connections".into()),
            ("ECHO_HISTORY_TABLE", "echo-history".into()),
            ("ECHO_SUBSCRIBER_SHARDS", "4".into()),
            ("ECHO_FANOUT_FUNCTION", "fanout".into()),
            ("ECHO_RELAY_FUNCTION", "message-handler".into()),
            ("ECHO_FANOUT_BATCH_SIZE", BATCH.to_string()),
            // Channels of up to three subscribers are delivered by the message handler itself,
            // larger ones through fan-out.
            ("ECHO_DIRECT_MAX_SUBSCRIBERS", DIRECT.to_string()),
            (
                "ECHO_MANAGEMENT_ENDPOINT",
                format!("http://127.0.0.1:{manage_port}/local"),
            ),
            (
                "AWS_ENDPOINT_URL_LAMBDA",
                format!("http://127.0.0.1:{lambda_port}"),
            ),
        ];
        // An extra variable replaces the default of the same name (empty: leaves it unset).
        for &(k, v) in extra {
            match env.iter_mut().find(|(name, _)| *name == k) {
                Some(entry) => entry.1 = v.to_owned(),
                None => env.push((k, v.to_owned())),
            }
        }
        let lambdas = services::lambda_watch_on(lambda_port, &env, warm).await;
        let endpoint = lambdas.endpoint.clone();
        let edge = TestEdge::start_with(
            |c| {
                c.faithful = Some(endpoint);
                c.manage_listen = format!("127.0.0.1:{manage_port}").parse().unwrap();
                configure(c);
            },
            InProcess::default(),
        )
        .await;
        Self {
            edge,
            store,
            lambdas,
            dynamo,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_aws_code_path_works_end_to_end() {
    let f = Faithful::start(
        include_str!("../apps/chat/associations.json"),
        &[
            "connect-handler",
            "message-handler",
            "fanout",
            "angry",
            "emojify",
            "http-api",
        ],
        &[],
        |_| {},
    )
    .await;
    let (edge, store) = (&f.edge, &f.store);

    // Two clients on `angry` get the transformed message.
    let mut a = edge.connect(&edge.token("chat-demo", "alice")).await;
    let mut b = edge.connect(&edge.token("chat-demo", "bob")).await;
    a.subscribe("angry").await;
    b.subscribe("angry").await;
    let ack = a.publish("angry", json!({"text": "hello"}), "m1").await;
    assert_eq!(ack["seq"], 1, "{ack}");
    for client in [&mut a, &mut b] {
        let (m, _) = client.recv_until("message").await;
        assert_eq!(m["data"]["text"], "😡 HELLO!!! 😡");
        assert_eq!(m["from"], "alice");
    }
    assert_eq!(
        edge.refused(&edge.url("garbage")).await,
        401,
        "the connect Lambda refuses bad tokens"
    );
    // A channel of two: the message handler delivered it itself, after the ack; fan-out never
    // ran for it.
    let log = f.lambdas.log.clone().unwrap();
    let direct = logged(&log, |l| {
        l["Service"] == "message-handler"
            && l["Channel"] == "angry"
            && l["MessagesDelivered"] == 2.0
    })
    .await;
    assert_eq!(direct.len(), 1, "{direct:?}");
    assert!(
        logged(&log, |l| fanned_out(l, "chat-demo/angry"))
            .await
            .is_empty()
    );

    // A connection that went away without $disconnect is removed at the next fan-out (410).
    let app = AppId::new("chat-demo").unwrap();
    let key = ChannelKey::new(app.clone(), ChannelName::new("angry").unwrap());
    let ghost = ConnectionId::from("ghost-connection");
    store
        .put_connection(ConnectionRecord {
            id: ghost.clone(),
            claims: Claims::new(app.clone(), "ghost", 4_000_000_000),
            connected_at: 0,
            expires_at: 4_000_000_000,
        })
        .await
        .unwrap();
    store.subscribe(&ghost, &key, 10).await.unwrap();
    a.publish("angry", json!({"text": "anyone?"}), "m2").await;
    let started = Instant::now();
    while store.get_connection(&ghost).await.unwrap().is_some() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the stale connection was not removed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!store.subscribers(&key).await.unwrap().contains(&ghost));

    // More subscribers than one fan-out batch: every one of them gets the message.
    let mut crowd = Vec::new();
    for i in 0..5 {
        let mut c = edge
            .connect(&edge.token("chat-demo", &format!("fan{i}")))
            .await;
        c.subscribe("boring").await;
        crowd.push(c);
    }
    assert!(crowd.len() > BATCH * 2);
    assert!(crowd.len() > DIRECT);
    a.publish("boring", json!({"text": "to all"}), "m3").await;
    for c in &mut crowd {
        let (m, _) = c.recv_until("message").await;
        assert_eq!(m["data"]["text"], "to all");
    }
    // More than the message handler delivers itself: fan-out did, in several invocations.
    assert!(
        logged(&log, |l| fanned_out(l, "chat-demo/boring"))
            .await
            .len()
            > 1,
        "{}",
        log.display()
    );

    // The HTTP API, answered by the http-api Lambda from an HTTP API event: a publish through
    // the channel's functions reaches WebSocket subscribers; refusals keep their status.
    let url = format!(
        "http://{}/v1/apps/chat-demo/channels/angry/messages",
        edge.edge.addr
    );
    let http = edge.http();
    let answer = http
        .post(&url)
        .bearer_auth(edge.admin_token("chat-demo"))
        .body(r#"{"data": {"text": "over http"}, "id": "h1"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let answer: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(answer["id"], "h1", "{answer}");
    let seq = answer["seq"].as_u64().unwrap();
    // `b` still holds the earlier messages of `angry`.
    let m = loop {
        let (m, _) = b.recv_until("message").await;
        if m["id"] == "h1" {
            break m;
        }
    };
    assert_eq!(
        (m["seq"].as_u64(), m["data"]["text"].as_str()),
        (Some(seq), Some("😡 OVER HTTP!!! 😡"))
    );
    let history = http
        .get(format!("{url}?since={}", seq - 1))
        .bearer_auth(edge.admin_token("chat-demo"))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(history["messages"][0]["id"], "h1", "{history}");
    // Its id repeated, over WebSockets and over HTTP: the first seq, nothing stored again.
    let repeat = a.publish("angry", json!({"text": "over http"}), "h1").await;
    assert_eq!(
        (repeat["seq"].as_u64(), repeat["duplicate"].as_bool()),
        (Some(seq), Some(true)),
        "{repeat}"
    );
    let repeat: serde_json::Value = http
        .post(&url)
        .bearer_auth(edge.admin_token("chat-demo"))
        .body(r#"{"data": {"text": "over http"}, "id": "h1"}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        repeat,
        json!({"channel": "angry", "seq": seq, "id": "h1", "duplicate": true})
    );
    let refused = http.post(&url).body("{}").send().await.unwrap();
    assert_eq!(refused.status(), 401);
    f.edge.edge.shutdown().await;
}

/// `onSubscribe` run by the message-handler Lambda and `onConnect` by the connect-handler Lambda,
/// each invoking the `members` hook Lambda, whose arrival announcement the connect handler
/// relays to the message-handler Lambda; `afterPresence` invoked by the Lambda that commits each
/// join and leave; the minute tick running the `ticker` schedule.
#[tokio::test(flavor = "multi_thread")]
async fn hooks_run_through_the_lambdas() {
    let f = Faithful::start(
        // Generous timeouts: `cargo lambda watch` may start a new instance of a function for
        // an invocation, which on a busy machine takes more than the default second.
        r#"{"apps":{
            "chat-demo":{
                "onConnect":["members"],
                "schedules":[{"function":"ticker","every":"1m"}],
                "timeoutMs":15000,
                "channels":{
                    "members":{"onSubscribe":["members"],"afterPresence":["members"],"timeoutMs":15000},
                    "clock":{"functions":["angry"],"timeoutMs":15000}
                }
            },
            "strict":{"onConnect":["ticker"],"timeoutMs":15000},
            "lenient":{"onConnect":["ticker"],"onError":"pass","timeoutMs":15000}
        }}"#,
        &[
            "connect-handler",
            "message-handler",
            "http-api",
            "fanout",
            "members",
            "ticker",
            "angry",
        ],
        &[],
        |_| {},
    )
    .await;
    let edge = &f.edge;
    let mut ada = edge.connect(&edge.token("chat-demo", "ada")).await;
    assert_eq!(ada.subscribe("members").await["channel"], "members");
    let mut guest = edge.connect(&edge.token("chat-demo", "guest")).await;
    guest
        .send(json!({"action": "subscribe", "channel": "members", "since": 0}))
        .await;
    let refused = guest.recv().await;
    assert_eq!(refused["code"], "forbidden", "{refused}");
    assert_eq!(
        refused["message"],
        "members is for members only (ada, grace, linus); guest is not one"
    );
    // A member's arrival, published by the hook: handed by the connect-handler Lambda to the
    // message-handler Lambda, from the function. (ada's own may come first, or not at all if
    // it was committed before she subscribed.)
    let mut grace = edge.connect(&edge.token("chat-demo", "grace")).await;
    loop {
        let (m, _) = ada.recv_until("message").await;
        assert_eq!(m["from"], "$fn:members", "{m}");
        if m["data"]["text"] == "grace is here" {
            break;
        }
        assert_eq!(m["data"]["text"], "ada is here", "{m}");
    }
    grace.subscribe("members").await;
    grace.close().await;

    // `ticker` answers schedules only: as an onConnect hook it fails, which denies under
    // `reject` (403 with the reason) and is passed over under `pass`.
    // The refusal is kept for the attempt by the connect-handler Lambda, in DynamoDB, and read
    // back through the HTTP API Lambda.
    let attempt = "strict-ada-0123456789abcdef";
    let url = format!(
        "{}&attempt={attempt}",
        edge.url(&edge.token("strict", "ada"))
    );
    let (status, body) = edge.refusal(&url).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "forbidden");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("ticker runs on a schedule"),
        "{body}"
    );
    let (status, origin, kept) = edge.connect_attempt(attempt).await;
    assert_eq!((status, origin.as_deref()), (200, Some("*")), "{kept}");
    assert_eq!(kept["status"], 403);
    assert_eq!(kept["message"], body["message"]);
    edge.connect(&edge.token("lenient", "ada")).await;

    // The register `members` keeps as the channel's afterPresence function: ada's and grace's
    // joins from the message-handler Lambda, grace's leave from the connect-handler Lambda's
    // `$disconnect`; each once.
    let log = f.lambdas.log.clone().unwrap();
    let lines = [
        "ada joined members",
        "grace joined members",
        "grace left members",
    ];
    let count = |line: &str| {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches(&format!("\"message\":\"{line}\""))
            .count()
    };
    let started = Instant::now();
    while lines.iter().any(|l| count(l) == 0) && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for line in lines {
        assert_eq!(count(line), 1, "{line} in {}", log.display());
    }

    // The minute tick, as the stack's rule sends it: the message-handler Lambda runs the due
    // schedule, and what `ticker` publishes goes through `clock`'s functions to subscribers.
    let mut watcher = edge.connect(&edge.token("chat-demo", "watcher")).await;
    watcher.subscribe("clock").await;
    let ticked: serde_json::Value = edge
        .http()
        .post(format!(
            "{}/2015-03-31/functions/message-handler/invocations",
            f.lambdas.endpoint
        ))
        .body(r#"{"tick":{}}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ticked, json!({"ran": 1, "failed": 0}));
    let (m, _) = watcher.recv_until("message").await;
    assert_eq!(m["from"], "$fn:ticker");
    assert!(
        m["data"]["text"].as_str().unwrap().starts_with("TICK AT "),
        "{m}"
    );
    f.edge.edge.shutdown().await;
}

/// Two publishers send 150 publishes each, two at a time without waiting for acks, through
/// a function that sleeps for some of them, with the edge handing frames to the handler Lambdas
/// at once as API Gateway may: every message is committed once, each publisher's in the order
/// it sent them, and both subscribers get every one.
#[tokio::test(flavor = "multi_thread")]
async fn each_publishers_order_holds_through_concurrent_invocations() {
    let f = Faithful::start(
        r#"{"apps":{"chat-demo":{"channels":{"ordered":{"functions":["sleepy"],"timeoutMs":5000}}}}}"#,
        &["connect-handler", "message-handler", "fanout", "sleepy"],
        &[],
        |c| c.concurrent_frames = true,
    )
    .await;
    let edge = &f.edge;
    let mut subscribers = Vec::new();
    for name in ["s1", "s2"] {
        let mut s = edge.connect(&edge.token("chat-demo", name)).await;
        s.subscribe("ordered").await;
        subscribers.push(s);
    }
    const EACH: u64 = 150;
    let mut p0 = edge.connect(&edge.token("chat-demo", "p0")).await;
    let mut p1 = edge.connect(&edge.token("chat-demo", "p1")).await;
    tokio::join!(
        publish_windowed(&mut p0, 0, EACH),
        publish_windowed(&mut p1, 1, EACH)
    );
    for s in &mut subscribers {
        let mut by_seq = std::collections::BTreeMap::new();
        while by_seq.len() < (2 * EACH) as usize {
            let m = s.recv().await;
            assert_eq!(m["type"], "message", "{m}");
            let seq = m["seq"].as_u64().unwrap();
            assert!(
                by_seq.insert(seq, m["data"].clone()).is_none(),
                "seq {seq} twice"
            );
        }
        assert_eq!(
            by_seq.keys().copied().collect::<Vec<_>>(),
            (1..=2 * EACH).collect::<Vec<_>>(),
            "every seq once"
        );
        for p in 0..2u64 {
            let sent_order: Vec<u64> = by_seq
                .values()
                .filter(|d| d["p"] == p)
                .map(|d| d["i"].as_u64().unwrap())
                .collect();
            assert_eq!(
                sent_order,
                (0..EACH).collect::<Vec<_>>(),
                "publisher {p}'s messages were committed in the order sent"
            );
        }
    }
    f.edge.edge.shutdown().await;
}

/// Publishes `each` messages on `ordered` numbered with `order`, keeping two unacknowledged: with
/// two publishers that is as many as `cargo lambda watch` runs handler invocations at once, so
/// none waits for an instance while an earlier publish holds one waiting for it. Every third
/// one sleeps in its function longer than the next one takes.
async fn publish_windowed(c: &mut echo_tests::Client, p: u64, each: u64) {
    const WINDOW: u64 = 2;
    let (mut sent, mut acked) = (0, 0);
    while acked < each {
        while sent < each && sent - acked < WINDOW {
            let sleep_ms = if sent % 3 == 0 { 60 } else { 0 };
            c.send(
                json!({"action": "publish", "channel": "ordered", "id": format!("{p}-{sent}"),
                "order": sent + 1, "data": {"p": p, "i": sent, "sleepMs": sleep_ms}}),
            )
            .await;
            sent += 1;
        }
        let v = c.recv().await;
        assert_eq!(v["type"], "ack", "{v}");
        acked += 1;
    }
}

/// The per-connection publish allowance holds across concurrent invocations: it is counted with
/// the connection's record in DynamoDB. One a second with bursts of 20 is windows of 20 s holding
/// 20 each; sixty publishes sent at once get 20 acks per window they span, the rest
/// `rate_limited` with when to retry, and another connection is not held back.
#[tokio::test(flavor = "multi_thread")]
async fn the_publish_rate_holds_across_concurrent_invocations() {
    let f = Faithful::start(
        r#"{"apps":{}}"#,
        &["connect-handler", "message-handler", "fanout"],
        &[("ECHO_PUBLISH_RATE", "1"), ("ECHO_PUBLISH_BURST", "20")],
        |c| c.concurrent_frames = true,
    )
    .await;
    let edge = &f.edge;
    let mut flood = edge.connect(&edge.token("chat-demo", "flood")).await;
    let window = || SystemClock.now_ms() / 20_000;
    let first = window();
    for i in 0..60 {
        flood
            .send(
                json!({"action": "publish", "channel": "boring", "id": format!("f{i}"), "data": i}),
            )
            .await;
    }
    let (mut acked, mut limited) = (0, 0);
    for _ in 0..60 {
        let v = flood.recv().await;
        match v["type"].as_str() {
            Some("ack") => acked += 1,
            _ => {
                assert_eq!(v["code"], "rate_limited", "{v}");
                assert!(v["message"].as_str().unwrap().contains("retry in"), "{v}");
                limited += 1;
            }
        }
    }
    let windows = (window() - first + 1) as usize;
    assert!(
        (20..=20 * windows).contains(&acked),
        "{acked} acks in {windows} windows of 20"
    );
    assert_eq!(acked + limited, 60);
    let mut other = edge.connect(&edge.token("chat-demo", "other")).await;
    let ack = other.publish("boring", json!("me too"), "o1").await;
    assert_eq!(ack["type"], "ack", "{ack}");
    f.edge.edge.shutdown().await;
}

/// Presence through the Lambdas and DynamoDB: joins and leaves per user, the member list, and a
/// connection that vanished without `$disconnect` leaving once fan-out finds it gone.
#[tokio::test(flavor = "multi_thread")]
async fn presence_works_through_the_lambdas() {
    let f = Faithful::start(
        r#"{"apps":{}}"#,
        &["connect-handler", "message-handler", "fanout"],
        &[],
        |c| {
            c.concurrent_frames = true;
            c.sweep_every = std::time::Duration::from_millis(300);
        },
    )
    .await;
    let (edge, store) = (&f.edge, &f.store);
    let who = |v: &serde_json::Value| {
        (
            v["type"].as_str().unwrap().to_owned(),
            v["sub"].as_str().unwrap().to_owned(),
        )
    };
    let mut watcher = edge.connect(&edge.token("chat-demo", "watcher")).await;
    watcher
        .send(json!({"action": "subscribe", "channel": "lobby", "presence": true}))
        .await;
    let (subscribed, _) = watcher.recv_until("subscribed").await;
    assert_eq!(subscribed["channel"], "lobby");
    let own = next_presence(&mut watcher).await;
    assert_eq!(who(&own), ("join".into(), "watcher".into()));

    let mut alice = edge.connect(&edge.token("chat-demo", "alice")).await;
    alice.subscribe("lobby").await;
    let join = next_presence(&mut watcher).await;
    assert_eq!(who(&join), ("join".into(), "alice".into()));
    assert!(join["seq"].as_u64() > own["seq"].as_u64(), "{join}");
    let mut phone = edge.connect(&edge.token("chat-demo", "alice")).await;
    phone.subscribe("lobby").await;
    // The `subscribed` frame is posted before the join is committed: ask until it is.
    let want = json!([{"sub": "alice", "connections": 2}, {"sub": "watcher", "connections": 1}]);
    let mut list = members(&mut watcher, "lobby").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while list["members"] != want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        list = members(&mut watcher, "lobby").await;
    }
    assert_eq!(
        list["members"], want,
        "a second connection is no second join: {list}"
    );
    alice.close().await;
    phone
        .send(json!({"action": "unsubscribe", "channel": "lobby"}))
        .await;
    let leave = next_presence(&mut watcher).await;
    assert_eq!(who(&leave), ("leave".into(), "alice".into()));

    // A member whose connection vanished without $disconnect: the next fan-out finds it gone
    // (410 from the edge's @connections API), and the fan-out Lambda commits its leave.
    let app = AppId::new("chat-demo").unwrap();
    let lobby = ChannelKey::new(app.clone(), ChannelName::new("lobby").unwrap());
    unseen_member(store, &lobby, "ghost", SystemClock.now_secs() + 600).await;
    let list = members(&mut watcher, "lobby").await;
    assert_eq!(list["members"][0]["sub"], "ghost", "{list}");
    watcher
        .publish("lobby", json!({"text": "anyone?"}), "w1")
        .await;
    let leave = next_presence(&mut watcher).await;
    assert_eq!(who(&leave), ("leave".into(), "ghost".into()));
    let list = members(&mut watcher, "lobby").await;
    assert_eq!(
        list["members"],
        json!([{"sub": "watcher", "connections": 1}])
    );

    // One that vanished unseen on a quiet channel: the sweep (the connect handler Lambda, on the
    // schedule's event) finds its record expired through the lapses index, and it leaves.
    let quiet = ChannelKey::new(app.clone(), ChannelName::new("quiet").unwrap());
    watcher
        .send(json!({"action": "subscribe", "channel": "quiet", "presence": true}))
        .await;
    let own = next_presence(&mut watcher).await;
    assert_eq!(who(&own), ("join".into(), "watcher".into()));
    let expires_at = SystemClock.now_secs() + 2;
    let lapsing = unseen_member(store, &quiet, "lapsing", expires_at).await;
    let list = members(&mut watcher, "quiet").await;
    assert_eq!(list["members"][0]["sub"], "lapsing", "{list}");
    let leave = next_presence(&mut watcher).await;
    assert_eq!(who(&leave), ("leave".into(), "lapsing".into()));
    assert!(
        leave["ts"].as_u64().unwrap() >= expires_at * 1000,
        "left once its record expired: {leave}"
    );
    assert_eq!(store.get_connection(&lapsing).await.unwrap(), None);
    assert!(
        store.subscriptions(&lapsing).await.unwrap().is_empty(),
        "the sweep removed its records"
    );
    f.edge.edge.shutdown().await;
}

/// A member of `key` whose connection's frames never passed the edge (no `join` went out), as
/// one whose socket vanished: its record, subscription and member item, until `expires_at`.
async fn unseen_member(
    store: &DynamoStore,
    key: &ChannelKey,
    sub: &str,
    expires_at: u64,
) -> ConnectionId {
    let id = ConnectionId::from(format!("{sub}-connection").as_str());
    store
        .put_connection(ConnectionRecord {
            id: id.clone(),
            claims: Claims::new(key.app.clone(), sub, expires_at),
            connected_at: SystemClock.now_ms(),
            expires_at,
        })
        .await
        .unwrap();
    store.subscribe(&id, key, 10).await.unwrap();
    echo_core::store::PresenceStore::join(store, key, sub, &id, expires_at)
        .await
        .unwrap();
    id
}

/// The next `join` or `leave` `c` receives.
async fn next_presence(c: &mut echo_tests::Client) -> serde_json::Value {
    loop {
        let v = c.recv().await;
        if v["type"] == "join" || v["type"] == "leave" {
            return v;
        }
    }
}

/// The `presence` answer for `channel`.
async fn members(c: &mut echo_tests::Client, channel: &str) -> serde_json::Value {
    c.send(json!({"action": "presence", "channel": channel}))
        .await;
    c.recv_until("presence").await.0
}

/// End-to-end encryption through the Lambdas: the message handler refuses plaintext on a channel
/// marked encrypted, the key's holders read a canary, and no DynamoDB item holds it, while a
/// canary on a plain channel is found (the scan would find it).
#[tokio::test(flavor = "multi_thread")]
async fn an_encrypted_canary_is_in_no_dynamodb_item() {
    use echo_client::e2e::{Key, decrypt};
    let f = Faithful::start(
        r#"{"apps":{"chat-demo":{"channels":{"secret":{"encrypted":true}}}}}"#,
        &["connect-handler", "message-handler", "fanout"],
        &[],
        |_| {},
    )
    .await;
    let edge = &f.edge;
    let key = Key::from_passphrase("faithful canary", "chat-demo:secret");
    let mut alice = edge.connect(&edge.token("chat-demo", "alice")).await;
    let mut bob = edge.connect(&edge.token("chat-demo", "bob")).await;
    bob.subscribe("secret").await;
    bob.subscribe("plain").await;
    let refused = alice
        .publish("secret", json!({"text": "plaintext"}), "p1")
        .await;
    assert_eq!(refused["code"], "bad_request", "{refused}");

    let canary = format!("secret-canary-{}", std::process::id());
    let plain_canary = format!("plain-canary-{}", std::process::id());
    let sealed = key.encrypt("secret", &json!({"text": canary}));
    assert_eq!(alice.publish("secret", sealed, "s1").await["type"], "ack");
    assert_eq!(
        alice
            .publish("plain", json!({"text": plain_canary}), "c1")
            .await["type"],
        "ack"
    );
    let mut read = Vec::new();
    while read.len() < 2 {
        let (m, _) = bob.recv_until("message").await;
        read.push(m);
    }
    let secret = read.iter().find(|m| m["channel"] == "secret").unwrap();
    assert_eq!(
        decrypt(&[key], "secret", &secret["data"]).unwrap(),
        json!({"text": canary}),
        "the key's holder reads it"
    );

    let client = services::dynamodb_client(&f.dynamo.endpoint);
    let mut items = String::new();
    for table in ["echo-connections", "echo-history"] {
        let scan = client.scan().table_name(table).send().await.unwrap();
        items.push_str(&format!("{:?}", scan.items()));
    }
    assert!(
        items.contains(&plain_canary),
        "the scan finds a plain canary"
    );
    assert!(
        !items.contains(&canary),
        "an encrypted canary is in DynamoDB"
    );
    f.edge.edge.shutdown().await;
}

/// The Lambdas verify tokens with the key set in Secrets Manager (moto), as the stack's
/// `KeysSecret`: an app's own key, a rotation with a revocation (picked up within
/// `ECHO_KEYS_CACHE_SECS`), and an OIDC issuer's token through the connect handler Lambda.
#[tokio::test(flavor = "multi_thread")]
async fn keys_come_from_the_secret_store() {
    use echo_core::auth::keys::KeyAlg;
    use echo_core::auth::{AppKey, KeySet, TokenIssuer, TrustedIssuer};
    use echo_tests::oidc::Issuer;

    let moto = services::moto().await;
    let secrets = services::secrets_client(&moto.endpoint);
    let issuer = Issuer::start("/pool").await;
    issuer.publish("idp-1", "rsa-private.pem");
    let app = AppId::new("shop").unwrap();
    let key = |kid: &str, secret: &str| AppKey {
        kid: kid.into(),
        app: app.clone(),
        alg: KeyAlg::HS256,
        secret: Some(secret.into()),
        public_key: None,
        created: SystemClock.now_secs(),
        revoked: None,
    };
    let (old, new) = (
        "old-secret-old-secret-old-secret-old",
        "new-secret-new-secret-new-secret-new",
    );
    let mut set = KeySet {
        instance_secret: Some(SECRET.into()),
        keys: vec![key("shop-old", old)],
        issuers: vec![TrustedIssuer {
            app: AppId::new("sso").unwrap(),
            issuer: issuer.url.clone(),
            audience: vec!["web".into()],
            jwks_uri: None,
            algorithms: vec![KeyAlg::RS256],
            claims: Default::default(),
        }],
    };
    let arn = secrets
        .create_secret()
        .name("echo-keys")
        .secret_string(serde_json::to_string(&set).unwrap())
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_owned();
    let f = Faithful::start(
        include_str!("../apps/chat/associations.json"),
        &["connect-handler", "message-handler", "http-api"],
        &[
            ("ECHO_KEYS_SECRET", &arn),
            ("ECHO_KEYS_CACHE_SECS", "1"),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", &moto.endpoint),
            // The instance secret comes from the key set.
            ("ECHO_JWT_SECRET", ""),
        ],
        |_| {},
    )
    .await;
    let edge = &f.edge;
    let claims = TestEdge::claims("shop", "ann");
    let signed = |secret: &str, kid: &str| {
        TokenIssuer::with_kid(secret.as_bytes(), kid)
            .unwrap()
            .issue(&claims)
            .unwrap()
    };
    let mut ann = edge.connect(&signed(old, "shop-old")).await;
    assert_eq!(
        edge.refused(&edge.url(&edge.token("shop", "ann"))).await,
        401,
        "the instance secret does not speak for an app with keys"
    );
    // Apps without keys: the instance secret, from the key set.
    edge.connect(&edge.token("chat-demo", "bo"))
        .await
        .close()
        .await;

    // Rotate: add the new key, revoke the old one.
    set.keys.push(key("shop-new", new));
    set.keys[0].revoked = Some(SystemClock.now_secs());
    secrets
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(serde_json::to_string(&set).unwrap())
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(edge.refused(&edge.url(&signed(old, "shop-old"))).await, 401);
    ann.send(json!({"action": "refresh", "token": signed(new, "shop-new")}))
        .await;
    let (refreshed, _) = ann.recv_until("refreshed").await;
    assert_eq!(refreshed["type"], "refreshed");
    edge.connect(&signed(new, "shop-new")).await.close().await;

    // An OIDC issuer's token, its keys fetched by the connect handler Lambda.
    let token = issuer.token(
        "idp-1",
        "rsa-private.pem",
        json!({"sub": "u-1", "aud": "web"}),
    );
    let mut sso = edge.connect(&token).await;
    assert_eq!(sso.subscribe("room").await["type"], "subscribed");
    let wrong = issuer.token(
        "idp-1",
        "rsa-private.pem",
        json!({"sub": "u-1", "aud": "other"}),
    );
    assert_eq!(edge.refused(&edge.url(&wrong)).await, 401);

    // The app ends ann's sessions through the HTTP API Lambda, with an admin token of its key:
    // her connections are found through the users index, told and closed.
    let mut admin = TestEdge::claims("shop", "ops");
    admin.role = echo_core::auth::Role::Admin;
    let admin = TokenIssuer::with_kid(new.as_bytes(), "shop-new")
        .unwrap()
        .issue(&admin)
        .unwrap();
    let mut second = edge.connect(&signed(new, "shop-new")).await;
    let answer: serde_json::Value = edge
        .http()
        .delete(format!(
            "http://{}/v1/apps/shop/users/ann/connections",
            edge.edge.addr
        ))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["ended"], 2, "{answer}");
    for c in [&mut ann, &mut second] {
        let (told, _) = c.recv_until("error").await;
        assert_eq!(told["code"], "session_ended", "{told}");
        assert!(c.closed().await.is_some(), "closed");
    }
    assert_eq!(sso.subscribe("other").await["type"], "subscribed");
}
