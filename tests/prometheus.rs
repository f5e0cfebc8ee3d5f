//! `GET /metrics` as Prometheus reads it: every series has its `# HELP` text, and
//! `promtool check metrics` (from Debian's `prometheus` package, which the test script installs)
//! reports nothing, after activity that makes every kind of series: functions run, fan-out,
//! a refused upgrade, a rate-limited frame, an after-publish function.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};

use echo_tests::{MANAGE_TOKEN, TestEdge};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn metrics_have_help_for_every_series_and_pass_promtool() {
    let edge = TestEdge::start_with(
        |c| {
            c.publish_rate = 1;
            c.publish_burst = 3;
        },
        echo_chat_demo::functions(),
    )
    .await;
    let mut a = edge.connect(&edge.token("chat-demo", "a")).await;
    a.subscribe("angry").await;
    a.publish("angry", json!({"text": "hi"}), "m1").await;
    a.send(json!({"action": "publish", "channel": "angry", "data": 1, "id": "m2"}))
        .await;
    a.send(json!({"action": "publish", "channel": "angry", "data": 2, "id": "m3"}))
        .await;
    let (refused, _) = a.recv_until("error").await;
    assert_eq!(refused["code"], "rate_limited", "{refused}");
    assert_eq!(edge.refused(&edge.url("not-a-token")).await, 401);

    let text = edge
        .http()
        .get(edge.manage_url("/metrics"))
        .bearer_auth(MANAGE_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let typed: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(typed.len() >= 10, "{text}");
    for name in &typed {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("# HELP {name} "))),
            "{name} has no help text:\n{text}"
        );
    }

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (apt-get install prometheus)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "{said}\n{text}"
    );
}
