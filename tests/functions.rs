//! Middleware: drop, failures under both policies, timeouts, and associations replaced live.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use echo_core::function::{FunctionError, FunctionOutput};
use echo_edge::invoker::InProcess;
use echo_tests::TestEdge;
use serde_json::json;

fn functions() -> InProcess {
    let mut f = echo_chat_demo::functions();
    f.register_sync("drop-all", |_| Ok(FunctionOutput::drop("not today")));
    f.register_sync("fail", |_| Err(FunctionError::new("boom")));
    f.register("hang", |_| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Err(FunctionError::new("unreachable"))
    });
    #[allow(clippy::panic)]
    f.register_sync("panic", |_| panic!("function bug"));
    f
}

const ASSOCIATIONS: &str = r#"{"apps":{"t":{"channels":{
    "dropped":      {"functions":["angry","drop-all"]},
    "fail-reject":  {"functions":["angry","fail"]},
    "fail-pass":    {"functions":["angry","fail","emojify"],"onError":"pass"},
    "hang-reject":  {"functions":["hang"],"timeoutMs":200},
    "hang-pass":    {"functions":["angry","hang"],"onError":"pass","timeoutMs":200},
    "panic":        {"functions":["panic"]},
    "room*":        {"functions":["backwards"]},
    "room1":        {"functions":["angry"]}
}}}}"#;

async fn edge() -> TestEdge {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("associations.json");
    std::fs::write(&file, ASSOCIATIONS).unwrap();
    let edge = TestEdge::start_with(|c| c.associations_file = Some(file), functions()).await;
    std::mem::forget(dir);
    edge
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_message_is_acked_dropped_and_reaches_no_one() {
    let edge = edge().await;
    let mut a = edge.connect(&edge.token("t", "a")).await;
    let mut b = edge.connect(&edge.token("t", "b")).await;
    a.subscribe("dropped").await;
    b.subscribe("dropped").await;
    let ack = a.publish("dropped", json!({"text": "x"}), "d1").await;
    assert_eq!(
        ack,
        json!({"type": "ack", "id": "d1", "channel": "dropped", "dropped": true, "reason": "not today"})
    );
    a.silent_for(300).await;
    b.silent_for(100).await;
    a.send(json!({"action": "history", "channel": "dropped"}))
        .await;
    assert_eq!(
        a.recv().await["messages"],
        json!([]),
        "a dropped message is not stored"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_functions_follow_on_error() {
    let edge = edge().await;
    let mut a = edge.connect(&edge.token("t", "a")).await;
    let mut b = edge.connect(&edge.token("t", "b")).await;
    b.subscribe("fail-reject").await;
    b.subscribe("fail-pass").await;

    let e = a.publish("fail-reject", json!({"text": "x"}), "r1").await;
    assert_eq!(e["type"], "error");
    assert_eq!(e["code"], "function_failed");
    assert_eq!(e["channel"], "fail-reject");
    assert!(e["message"].as_str().unwrap().contains("fail"), "{e}");
    b.silent_for(300).await;

    let ack = a.publish("fail-pass", json!({"text": "x"}), "p1").await;
    assert_eq!(ack["seq"], 1);
    let m = b.recv().await;
    assert_eq!(
        m["data"]["text"], "X!!!",
        "the last good data is delivered, later functions skipped"
    );

    let e = a.publish("panic", json!({"text": "x"}), "x1").await;
    assert_eq!(e["code"], "function_failed");
    assert!(e["message"].as_str().unwrap().contains("panicked"));
}

#[tokio::test(flavor = "multi_thread")]
async fn hanging_functions_time_out_and_the_edge_stays_responsive() {
    let edge = edge().await;
    let mut a = edge.connect(&edge.token("t", "a")).await;
    let mut other = edge.connect(&edge.token("t", "o")).await;
    other.subscribe("room2").await;

    a.send(
        json!({"action": "publish", "channel": "hang-reject", "data": {"text": "x"}, "id": "h1"}),
    )
    .await;
    // While a's publish waits on the hanging function, other connections are served.
    other.send(json!({"action": "ping"})).await;
    assert_eq!(other.recv().await["type"], "pong");
    let ack = other.publish("room2", json!({"text": "abc"}), "o1").await;
    assert_eq!(ack["seq"], 1);
    assert_eq!(other.recv().await["data"]["text"], "cba");

    let e = a.recv().await;
    assert_eq!(e["code"], "function_failed", "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("did not answer"),
        "{e}"
    );

    let ack = a.publish("hang-pass", json!({"text": "y"}), "h2").await;
    assert_eq!(ack["seq"], 1, "pass delivers despite the timeout: {ack}");
    a.send(json!({"action": "history", "channel": "hang-pass"}))
        .await;
    assert_eq!(a.recv().await["messages"][0]["data"]["text"], "Y!!!");
}

#[tokio::test(flavor = "multi_thread")]
async fn exact_names_beat_patterns_without_prefix_accidents() {
    let edge = edge().await;
    let mut a = edge.connect(&edge.token("t", "a")).await;
    for (channel, expected) in [
        ("room1", "HI!!!"),
        ("room10", "ih"),
        ("room", "ih"),
        ("lobby", "hi"),
    ] {
        a.subscribe(channel).await;
        a.publish(channel, json!({"text": "hi"}), channel).await;
        a.send(json!({"action": "history", "channel": channel}))
            .await;
        let (h, _) = a.recv_until("history").await;
        assert_eq!(
            h["messages"][0]["data"]["text"], expected,
            "channel {channel}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn associations_replaced_through_the_api_apply_to_the_next_publish() {
    let edge = TestEdge::start().await;
    let mut a = edge.connect(&edge.token("chat-demo", "a")).await;
    a.subscribe("boring").await;
    a.publish("boring", json!({"text": "before"}), "1").await;
    assert_eq!(a.recv().await["data"]["text"], "before");

    let (status, body) = edge
        .put_associations(
            r#"{"apps":{"chat-demo":{"channels":{"boring":{"functions":["angry"]}}}}}"#,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    a.publish("boring", json!({"text": "after"}), "2").await;
    assert_eq!(a.recv().await["data"]["text"], "AFTER!!!");

    // An invalid document is refused with a precise error and changes nothing.
    let (status, body) = edge
        .put_associations(
            r#"{"apps":{"chat-demo":{"channels":{"boring":{"functions":["nope"]}}}}}"#,
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("apps.chat-demo.channels.boring.functions[0]: unknown function \"nope\""),
        "{body}"
    );
    let (status, _) = edge.put_associations("{not json").await;
    assert_eq!(status, 400);
    a.publish("boring", json!({"text": "still"}), "3").await;
    assert_eq!(a.recv().await["data"]["text"], "STILL!!!");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lambda_arn_runs_the_function_of_its_name_locally() {
    let edge = TestEdge::start().await;
    let mut a = edge.connect(&edge.token("chat-demo", "a")).await;
    a.subscribe("boring").await;
    let (status, body) = edge
        .put_associations(
            r#"{"apps":{"chat-demo":{"channels":{"boring":{"functions":[
                "arn:aws:lambda:eu-west-1:123456789012:function:angry:live"]}}}}}"#,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    a.publish("boring", json!({"text": "arn"}), "1").await;
    assert_eq!(a.recv().await["data"]["text"], "ARN!!!");

    // An ARN whose name part is not a function here is as unknown as that name; a malformed
    // one is neither a name nor an ARN.
    for (doc, error) in [
        (
            "arn:aws:lambda:eu-west-1:123456789012:function:nope",
            "unknown function \"arn:aws:lambda:eu-west-1:123456789012:function:nope\"",
        ),
        (
            "arn:aws:lambda:eu-west-1:42:function:angry",
            "is not a valid function name (1 to 64 of a-z A-Z 0-9 _ -) or Lambda function ARN",
        ),
    ] {
        let (status, body) = edge
            .put_associations(&format!(
                r#"{{"apps":{{"chat-demo":{{"channels":{{"boring":{{"functions":["{doc}"]}}}}}}}}}}"#
            ))
            .await;
        assert_eq!(status, 400);
        assert!(body["error"].as_str().unwrap().contains(error), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn associations_file_changes_are_picked_up_while_connected() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("associations.json");
    std::fs::write(
        &file,
        r#"{"apps":{"t":{"channels":{"c":{"functions":["angry"]}}}}}"#,
    )
    .unwrap();
    let path = file.clone();
    let edge = TestEdge::start_with(
        |c| {
            c.associations_file = Some(path);
            c.associations_poll = Duration::from_millis(50);
        },
        echo_chat_demo::functions(),
    )
    .await;
    let mut a = edge.connect(&edge.token("t", "a")).await;
    a.subscribe("c").await;
    a.publish("c", json!({"text": "one"}), "1").await;
    assert_eq!(a.recv().await["data"]["text"], "ONE!!!");

    // A broken file is ignored.
    std::fs::write(
        &file,
        r#"{"apps":{"t":{"channels":{"c":{"functions":["missing"]}}}}}"#,
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.publish("c", json!({"text": "two"}), "2").await;
    assert_eq!(a.recv().await["data"]["text"], "TWO!!!");

    std::fs::write(
        &file,
        r#"{"apps":{"t":{"channels":{"c":{"functions":["backwards"]}}}}}"#,
    )
    .unwrap();
    let mut seen = String::new();
    for i in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        a.publish("c", json!({"text": "abc"}), &format!("w{i}"))
            .await;
        seen = a.recv().await["data"]["text"].as_str().unwrap().to_owned();
        if seen == "cba" {
            break;
        }
    }
    assert_eq!(seen, "cba", "the new file took effect without a restart");
}

/// After-publish functions get each committed message once, with its seq, and cannot hold up
/// delivery: here one waits for a gate that opens only after every subscriber has its messages
/// and every publisher its acks, so a delivery that waited for it would never come.
#[tokio::test(flavor = "multi_thread")]
async fn after_publish_functions_see_every_message_once_and_delay_no_one() {
    use std::sync::{Arc, Mutex};
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (gate, opened) = tokio::sync::watch::channel(false);
    let mut f = functions();
    {
        let seen = seen.clone();
        f.register("ledger", move |input| {
            let (seen, mut opened) = (seen.clone(), opened.clone());
            async move {
                let _ = opened.wait_for(|open| *open).await;
                let m = input.message;
                seen.lock().unwrap().push((m.id, m.seq, m.data));
                Ok(FunctionOutput::drop("ignored"))
            }
        });
    }
    let edge = TestEdge::start_with(|_| {}, f).await;
    let (status, body) = edge
        .put_associations(
            r#"{"apps":{"t":{"channels":{"orders":{"functions":["angry"],
                "afterPublish":["ledger","fail"],"timeoutMs":20000}}}}}"#,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut sub = edge.connect(&edge.token("t", "sub")).await;
    sub.subscribe("orders").await;
    let mut publisher = edge.connect(&edge.token("t", "pub")).await;
    for i in 1..=3 {
        // `fail` fails after each publish: the publisher still gets its ack.
        let ack = publisher
            .publish("orders", json!({"text": format!("o{i}")}), &format!("m{i}"))
            .await;
        assert_eq!(ack["seq"], i, "{ack}");
        let delivered = sub.recv().await;
        assert_eq!(delivered["data"]["text"], format!("O{i}!!!"));
    }
    assert!(seen.lock().unwrap().is_empty(), "the gate is still shut");

    gate.send(true).unwrap();
    let started = std::time::Instant::now();
    while seen.lock().unwrap().len() < 3 && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_by_key(|(_, seq, _)| *seq);
    assert_eq!(
        seen,
        (1..=3u64)
            .map(|i| (
                format!("m{i}"),
                Some(i),
                json!({"text": format!("O{i}!!!")})
            ))
            .collect::<Vec<_>>(),
        "each committed message once, as delivered, with its seq"
    );

    // Counted once each hand-over has finished, which may be just after `ledger` returned.
    let lines = [
        "echo_after_publish_total{function=\"ledger\",outcome=\"ok\"} 3",
        "echo_after_publish_total{function=\"fail\",outcome=\"failed\"} 3",
    ];
    let started = std::time::Instant::now();
    loop {
        let text = edge
            .http()
            .get(edge.manage_url("/metrics"))
            .bearer_auth(echo_tests::MANAGE_TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if lines.iter().all(|line| text.lines().any(|l| l == *line)) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not all of {lines:?} in\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
