//! Functions at other moments than a publish, over a real edge: `onConnect` and `onSubscribe`
//! deciding, with their reasons, the permissions `onConnect` hands back, failing or slow hooks
//! under `reject` and `pass`; and functions that publish to other channels, hop by hop.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use echo_core::channel::ChannelName;
use echo_core::function::{FunctionError, FunctionOutput, Publication};
use echo_tests::TestEdge;
use serde_json::{Value, json};

/// The demo's functions, with hooks: `admit` refuses mallory, hands `guest` the `team-*`
/// channels alone and lets the rest in with their tokens' permissions; `member-check` lets only
/// alice into a channel; `flaky` fails and `dawdle` takes 5 s.
fn functions() -> echo_edge::invoker::InProcess {
    let mut functions = echo_chat_demo::functions();
    functions.register_hook("admit", |input: Value| async move {
        assert_eq!(input["hook"], "connect");
        assert_eq!(input["app"], "chat-demo");
        assert_eq!(input["sourceIp"], "127.0.0.1");
        let sub = input["user"]["sub"].as_str().unwrap_or_default().to_owned();
        assert_eq!(input["user"]["claims"]["sub"], sub.as_str());
        Ok(match sub.as_str() {
            "mallory" => json!({"action": "deny", "reason": "mallory is banned"}),
            "guest" => json!({"action": "allow", "channels": {"subscribe": ["team-*"], "publish": ["team-*"]}}),
            _ => json!({"action": "allow"}),
        })
    });
    functions.register_hook("member-check", |input: Value| async move {
        assert_eq!(input["hook"], "subscribe");
        assert!(input["connectionId"].as_str().is_some_and(|c| !c.is_empty()));
        Ok(if input["user"]["sub"] == "alice" {
            json!({"action": "allow"})
        } else {
            json!({"action": "deny", "reason": format!("{} is not on the list of {}", input["user"]["sub"].as_str().unwrap_or_default(), input["channel"].as_str().unwrap_or_default())})
        })
    });
    functions.register_hook("flaky", |_| async {
        Err(FunctionError::new("the database is down"))
    });
    functions.register_hook("dawdle", |_| async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        Ok(json!({"action": "allow"}))
    });
    functions
}

async fn edge(associations: &str) -> TestEdge {
    let edge = TestEdge::start_with(|_| {}, functions()).await;
    let (status, body) = edge.put_associations(associations).await;
    assert_eq!(status, 200, "{body}");
    edge
}

#[tokio::test(flavor = "multi_thread")]
async fn on_connect_refuses_with_its_reason_and_hands_back_permissions() {
    let edge = edge(
        r#"{"apps":{"chat-demo":{"onConnect":["admit"],"channels":{"team-*":{"functions":[]}}}}}"#,
    )
    .await;
    let (status, body) = edge
        .refusal(&edge.url(&edge.token("chat-demo", "mallory")))
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        (body["code"].as_str(), body["message"].as_str()),
        (Some("forbidden"), Some("mallory is banned")),
        "{body}"
    );
    // A client that names its attempt can read the refusal over HTTP, as browsers cannot read
    // the 403; only for refused attempts (and for a minute: the store's conformance suite).
    let attempt = "mallory-try-0123456789abcdef";
    let url = format!(
        "{}&attempt={attempt}",
        edge.url(&edge.token("chat-demo", "mallory"))
    );
    assert_eq!(edge.refusal(&url).await.0, 403);
    let (status, origin, body) = edge.connect_attempt(attempt).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(origin.as_deref(), Some("*"));
    assert_eq!(
        body,
        json!({"status": 403, "code": "forbidden", "message": "mallory is banned"})
    );
    let bad = format!(
        "{}&attempt=bad-token-0123456789abcdef",
        edge.url("not-a-jwt")
    );
    assert_eq!(edge.refusal(&bad).await.0, 401);
    let (_, _, body) = edge.connect_attempt("bad-token-0123456789abcdef").await;
    assert_eq!(
        (body["status"].as_u64(), body["code"].as_str()),
        (Some(401), Some("unauthorized")),
        "{body}"
    );
    let accepted = "alice-try-0123456789abcdefgh";
    let (_alice, _) = tokio_tungstenite::connect_async(format!(
        "{}&attempt={accepted}",
        edge.url(&edge.token("chat-demo", "alice"))
    ))
    .await
    .unwrap();
    assert_eq!(edge.connect_attempt(accepted).await.0, 404);
    assert_eq!(edge.connect_attempt("short").await.0, 400);

    // Another app has no hook: its users connect as before.
    edge.connect(&edge.token("other-app", "mallory")).await;

    // The permissions the hook gave replace the token's (which allow everything).
    let mut guest = edge.connect(&edge.token("chat-demo", "guest")).await;
    assert_eq!(guest.subscribe("team-blue").await["seq"], 0);
    guest
        .send(json!({"action": "subscribe", "channel": "lobby"}))
        .await;
    let refused = guest.recv().await;
    assert_eq!(refused["code"], "forbidden", "{refused}");
    let ack = guest.publish("lobby", json!("hi"), "g1").await;
    assert_eq!(ack["code"], "forbidden", "{ack}");
    // A refresh renews the connection, not its permissions.
    guest
        .send(json!({"action": "refresh", "token": edge.token("chat-demo", "guest")}))
        .await;
    assert_eq!(guest.recv().await["type"], "refreshed");
    let ack = guest.publish("lobby", json!("hi"), "g2").await;
    assert_eq!(ack["code"], "forbidden", "{ack}");
    let ack = guest.publish("team-blue", json!("hi"), "g3").await;
    assert_eq!(ack["seq"], 1, "{ack}");
    // Users the hook allows without permissions keep their token's.
    let mut alice = edge.connect(&edge.token("chat-demo", "alice")).await;
    alice.subscribe("lobby").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn on_subscribe_refuses_with_its_reason_and_nothing_about_the_channel() {
    let edge =
        edge(r#"{"apps":{"chat-demo":{"channels":{"vip-*":{"onSubscribe":["member-check"]}}}}}"#)
            .await;
    let mut alice = edge.connect(&edge.token("chat-demo", "alice")).await;
    let mut bob = edge.connect(&edge.token("chat-demo", "bob")).await;
    let ack = alice
        .publish("vip-lounge", json!("members only"), "a1")
        .await;
    assert_eq!(ack["seq"], 1, "{ack}");
    alice
        .send(json!({"action": "subscribe", "channel": "vip-lounge", "since": 0, "presence": true}))
        .await;
    let (subscribed, _) = alice.recv_until("subscribed").await;
    assert_eq!(subscribed["seq"], 1);
    let (replayed, _) = alice.recv_until("message").await;
    assert_eq!(replayed["data"], "members only");
    let (join, _) = alice.recv_until("join").await;
    assert_eq!(join["sub"], "alice");

    bob.send(json!({"action": "subscribe", "channel": "vip-lounge", "since": 0, "presence": true}))
        .await;
    let refused = bob.recv().await;
    assert_eq!(
        (
            refused["type"].as_str(),
            refused["code"].as_str(),
            refused["message"].as_str(),
            refused["channel"].as_str()
        ),
        (
            Some("error"),
            Some("forbidden"),
            Some("bob is not on the list of vip-lounge"),
            Some("vip-lounge")
        ),
        "{refused}"
    );
    // Nothing replayed to bob, no join announced to the members, and a new message reaches
    // the members alone.
    bob.silent_for(300).await;
    alice.silent_for(0).await;
    alice
        .publish("vip-lounge", json!("still private"), "a2")
        .await;
    let (m, skipped) = alice.recv_until("message").await;
    assert_eq!(m["data"], "still private");
    assert!(skipped.iter().all(|f| f["type"] != "join"), "{skipped:?}");
    bob.silent_for(300).await;
    // Asked again on every subscribe.
    bob.send(json!({"action": "subscribe", "channel": "vip-lounge"}))
        .await;
    assert_eq!(bob.recv().await["code"], "forbidden");
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_and_slow_hooks_deny_under_reject_and_are_passed_over_under_pass() {
    let edge = edge(
        r#"{"apps":{
            "strict":{"onConnect":["flaky"]},
            "lenient":{"onConnect":["dawdle"],"onError":"pass","timeoutMs":100},
            "chat-demo":{"channels":{
                "closed":{"onSubscribe":["dawdle"],"timeoutMs":100},
                "open":{"onSubscribe":["flaky"],"onError":"pass"}
            }}
        }}"#,
    )
    .await;
    let (status, body) = edge
        .refusal(&edge.url(&edge.token("strict", "alice")))
        .await;
    assert_eq!(status, 403);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("the database is down"),
        "{body}"
    );
    edge.connect(&edge.token("lenient", "alice")).await;
    // Both failures are counted as the function's.
    let metrics = edge.metrics().await;
    for function in ["flaky", "dawdle"] {
        assert!(
            metrics.contains(&format!(
                "echo_function_errors_total{{function=\"{function}\"}} 1"
            )),
            "{function}: {metrics}"
        );
    }

    let mut alice = edge.connect(&edge.token("chat-demo", "alice")).await;
    alice
        .send(json!({"action": "subscribe", "channel": "closed"}))
        .await;
    let refused = alice.recv().await;
    assert_eq!(refused["code"], "forbidden", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("did not answer within"),
        "{refused}"
    );
    assert_eq!(alice.subscribe("open").await["channel"], "open");
}

/// `copy` passes a message on and publishes a copy of it to `audit`; `to-pong` and `to-ping`
/// publish each message to the other channel, and would do so forever.
fn publishing() -> echo_edge::invoker::InProcess {
    let mut functions = echo_chat_demo::functions();
    let to = |channel: &str, data: serde_json::Value| Publication {
        channel: ChannelName::new(channel).unwrap(),
        data,
    };
    functions.register("copy", move |input| async move {
        let copy = to(
            "audit",
            json!({"copied": input.message.data, "from": input.message.from}),
        );
        Ok(FunctionOutput::cont(input.message.data).publishing(vec![copy]))
    });
    functions.register("to-pong", move |input| async move {
        Ok(FunctionOutput::cont(input.message.data.clone())
            .publishing(vec![to("pong", input.message.data)]))
    });
    functions.register("to-ping", move |input| async move {
        Ok(FunctionOutput::drop("bounced").publishing(vec![to("ping", input.message.data)]))
    });
    functions
}

#[tokio::test(flavor = "multi_thread")]
async fn functions_publish_elsewhere_and_a_fourth_hop_is_refused() {
    let edge = TestEdge::start_with(|_| {}, publishing()).await;
    let (status, body) = edge
        .put_associations(
            r#"{"apps":{"chat-demo":{"channels":{
                "orders":{"functions":["copy"]},
                "audit":{"functions":["angry"]},
                "ping":{"functions":["to-pong"]},
                "pong":{"functions":["to-ping"]}
            }}}}"#,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut alice = edge.connect(&edge.token("chat-demo", "alice")).await;
    let mut auditor = edge.connect(&edge.token("chat-demo", "auditor")).await;
    auditor.subscribe("audit").await;
    let ack = alice
        .publish("orders", json!({"text": "order 7"}), "o7")
        .await;
    assert_eq!(ack["seq"], 1, "{ack}");
    // The copy went through audit's own functions, from the function, not from alice.
    let (m, _) = auditor.recv_until("message").await;
    assert_eq!(m["from"], "$fn:copy");
    assert_eq!(m["data"]["copied"], json!({"text": "order 7"}));
    assert_eq!(m["data"]["from"], "alice");

    // ping → pong → ping → pong, and the fourth hop (to ping again) is refused.
    let mut watcher = edge.connect(&edge.token("chat-demo", "watcher")).await;
    watcher.subscribe("ping").await;
    let ack = alice.publish("ping", json!("ball"), "b1").await;
    assert_eq!(ack["seq"], 1, "{ack}");
    let (first, _) = watcher.recv_until("message").await;
    let (second, _) = watcher.recv_until("message").await;
    assert_eq!(
        (first["from"].as_str(), second["from"].as_str()),
        (Some("alice"), Some("$fn:to-ping"))
    );
    watcher.silent_for(300).await;
    let metrics = edge.metrics().await;
    assert!(
        metrics.contains("echo_function_publishes_refused_total{function=\"to-ping\"} 1"),
        "{metrics}"
    );
    // No token can pose as a function: a `$` sender is refused at connect.
    assert_eq!(
        edge.refused(&edge.url(&edge.token("chat-demo", "$fn:copy")))
            .await,
        401
    );
}

/// `greeter` lets everyone in and announces each arrival in `lobby` (but the watcher's, whose own
/// arrival would race its subscriptions); it keeps `vault` shut and
/// rings `doorbell` for each knock: hooks publish as message functions do, allowing or denying.
#[tokio::test(flavor = "multi_thread")]
async fn hook_functions_publish_at_connect_and_subscribe() {
    let mut functions = publishing();
    functions.register_hook("greeter", |input: Value| async move {
        let sub = input["user"]["sub"].as_str().unwrap_or_default().to_owned();
        Ok(match input["hook"].as_str() {
            Some("connect") if sub == "watcher" => json!({"action": "allow"}),
            Some("connect") => json!({"action": "allow", "publish": [
                {"channel": "lobby", "data": {"text": format!("{sub} arrived")}}
            ]}),
            _ => json!({"action": "deny", "reason": "the vault is shut", "publish": [
                {"channel": "doorbell", "data": {"text": format!("{sub} knocked on {}", input["channel"].as_str().unwrap_or_default())}}
            ]}),
        })
    });
    let edge = TestEdge::start_with(|_| {}, functions).await;
    let (status, body) = edge
        .put_associations(
            r#"{"apps":{"chat-demo":{"onConnect":["greeter"],"channels":{
                "lobby":{"functions":["angry"]},
                "vault":{"onSubscribe":["greeter"]}
            }}}}"#,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut watcher = edge.connect(&edge.token("chat-demo", "watcher")).await;
    watcher.subscribe("lobby").await;
    watcher.subscribe("doorbell").await;

    // bob's arrival, through lobby's own functions, from the hook's function.
    let mut bob = edge.connect(&edge.token("chat-demo", "bob")).await;
    let (m, _) = watcher.recv_until("message").await;
    assert_eq!(
        (m["channel"].as_str(), m["from"].as_str()),
        (Some("lobby"), Some("$fn:greeter")),
        "{m}"
    );
    assert!(
        m["data"]["text"]
            .as_str()
            .unwrap()
            .starts_with("BOB ARRIVED"),
        "{m}"
    );

    // The denial reaches bob with its reason; the knock reaches the doorbell.
    bob.send(json!({"action": "subscribe", "channel": "vault"}))
        .await;
    let refused = bob.recv().await;
    assert_eq!(
        (refused["code"].as_str(), refused["message"].as_str()),
        (Some("forbidden"), Some("the vault is shut")),
        "{refused}"
    );
    let (m, _) = watcher.recv_until("message").await;
    assert_eq!(m["channel"], "doorbell");
    assert_eq!(m["data"]["text"], "bob knocked on vault");
    assert_eq!(m["from"], "$fn:greeter");
    watcher.silent_for(300).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schedule_publishes_through_the_channels_functions() {
    let edge = TestEdge::start_with(|_| {}, functions()).await;
    let (status, body) = edge
        .put_associations(
            r#"{"apps":{"chat-demo":{
                "schedules":[{"function":"ticker","every":"1s"},{"function":"flaky","every":"1s"}],
                "channels":{"clock":{"functions":["angry"]}}
            }}}"#,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut watcher = edge.connect(&edge.token("chat-demo", "watcher")).await;
    watcher.subscribe("clock").await;
    // The first run is a period after the schedule appears; the failing one changes nothing.
    let (first, _) = watcher.recv_until("message").await;
    assert_eq!(first["from"], "$fn:ticker");
    let text = first["data"]["text"].as_str().unwrap();
    assert!(
        text.starts_with("TICK AT ") && text.ends_with("!!!"),
        "{first}"
    );
    let (second, _) = watcher.recv_until("message").await;
    let at = |m: &Value| m["data"]["at"].as_u64().unwrap();
    assert!(at(&second) >= at(&first) + 900, "{first} then {second}");
}

#[tokio::test(flavor = "multi_thread")]
async fn after_presence_sees_each_join_and_leave_once() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let mut functions = functions();
    functions.register_hook("audit", {
        let seen = seen.clone();
        move |input: Value| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(input);
                Ok(json!({}))
            }
        }
    });
    let edge = TestEdge::start_with(|_| {}, functions).await;
    let (status, body) = edge
        .put_associations(
            r#"{"apps":{"chat-demo":{"channels":{"team-*":{"afterPresence":["audit","flaky"]}}}}}"#,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut phone = edge.connect(&edge.token("chat-demo", "alice")).await;
    let mut laptop = edge.connect(&edge.token("chat-demo", "alice")).await;
    phone.subscribe("team-blue").await;
    laptop.subscribe("team-blue").await;
    laptop.subscribe("lobby").await;
    phone
        .send(json!({"action": "unsubscribe", "channel": "team-blue"}))
        .await;
    phone.recv_until("unsubscribed").await;
    // The user's last connection there goes away: a leave.
    laptop.close().await;
    let events = || {
        seen.lock()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["channel"].as_str().unwrap().to_owned(),
                    e["event"]["type"].as_str().unwrap().to_owned(),
                    e["event"]["seq"].as_u64().unwrap(),
                )
            })
            .collect::<Vec<_>>()
    };
    let started = std::time::Instant::now();
    while events().len() < 2 && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        events(),
        [
            ("team-blue".to_owned(), "join".to_owned(), 1),
            ("team-blue".to_owned(), "leave".to_owned(), 2)
        ]
    );
    let first = seen.lock().unwrap()[0].clone();
    assert_eq!(first["hook"], "presence");
    assert_eq!(first["app"], "chat-demo");
    assert_eq!(first["event"]["sub"], "alice");
    // The failing function beside it was counted, and changed nothing.
    let metrics = edge.metrics().await;
    assert!(
        metrics.contains("echo_after_publish_total{function=\"flaky\",outcome=\"failed\"} 2"),
        "{metrics}"
    );
}
