//! The `echoctl` binary as users run it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

mod common;

use common::{ECHOCTL, start_dev, token};

#[tokio::test(flavor = "multi_thread")]
async fn dev_tokens_from_jwt_work_and_sigterm_shuts_down_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let common::Dev {
        mut child, addr, ..
    } = start_dev(dir.path(), &[]);
    let token = token(dir.path(), "chat-demo", "cli-user");
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/?token={token}"))
        .await
        .unwrap();
    ws.send(Message::text(
        r#"{"action":"publish","channel":"angry","data":{"text":"hi"},"id":"1"}"#,
    ))
    .await
    .unwrap();
    let ack = ws.next().await.unwrap().unwrap();
    let ack: serde_json::Value = serde_json::from_str(ack.to_text().unwrap()).unwrap();
    assert_eq!(ack["seq"], 1, "{ack}");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let close = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(c))) => return c.map(|c| u16::from(c.code)),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(close, Some(1001), "clients are told the edge is going away");
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "exits cleanly: {exit:?}");

    // The same data directory, the same dev secret: the token still works and seq continues.
    let common::Dev {
        mut child, addr, ..
    } = start_dev(dir.path(), &[]);
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/?token={token}"))
        .await
        .unwrap();
    ws.send(Message::text(
        r#"{"action":"publish","channel":"angry","data":{"text":"again"},"id":"2"}"#,
    ))
    .await
    .unwrap();
    let ack: serde_json::Value =
        serde_json::from_str(ws.next().await.unwrap().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(ack["seq"], 2, "{ack}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn serve_refuses_to_start_without_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(ECHOCTL)
        .args(["serve", "--port", "0", "--manage-port", "0", "--data-dir"])
        .arg(dir.path())
        .env_remove("ECHO_JWT_SECRET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ECHO_JWT_SECRET is not set"), "{err}");

    let out = Command::new(ECHOCTL)
        .args(["serve", "--port", "0", "--manage-port", "0", "--data-dir"])
        .arg(dir.path())
        .env("ECHO_JWT_SECRET", "short")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 32 bytes"));
}

#[test]
fn bad_associations_stop_the_start_with_a_precise_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.json");
    std::fs::write(
        &file,
        r#"{"apps":{"x":{"channels":{"c":{"functions":["angri"]}}}}}"#,
    )
    .unwrap();
    let out = Command::new(ECHOCTL)
        .args(["dev", "--port", "0", "--manage-port", "0", "--data-dir"])
        .arg(dir.path())
        .arg("--associations")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("apps.x.channels.c.functions[0]: unknown function \"angri\""),
        "{err}"
    );
}
