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
fn serve_refuses_to_start_without_keys() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(ECHOCTL)
        .args(["serve", "--port", "0", "--manage-port", "0", "--data-dir"])
        .arg(dir.path())
        .env_remove("ECHO_JWT_SECRET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no keys to verify tokens with") && err.contains("echoctl keys create"),
        "{err}"
    );

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

/// The first line of `echoctl dev`'s banner starting with `prefix`, with `args` added, started
/// with its soft open-file limit lowered to 256; and the limit the process has then.
#[cfg(target_os = "linux")]
fn banner_line_and_open_files(args: &[&str], prefix: &str) -> (String, u64) {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new("bash")
        .args(["-c", r#"ulimit -Sn 256 && exec "$@""#, "bash", ECHOCTL])
        .args(["dev", "--port", "0", "--manage-port", "0", "--data-dir"])
        .arg(dir.path())
        .args(args)
        .env_remove("ECHO_JWT_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines
        .map(Result::unwrap)
        .find(|l| l.trim_start().starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line"));
    let open_files = open_files_field(&format!("/proc/{}/limits", child.id()), 3);
    child.kill().unwrap();
    child.wait().unwrap();
    (line, open_files)
}

/// A field of "Max open files" in a `/proc/<pid>/limits`: the soft limit at index 3, the hard
/// one at 4.
#[cfg(target_os = "linux")]
fn open_files_field(path: &str, index: usize) -> u64 {
    let limits = std::fs::read_to_string(path).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    line.split_whitespace().nth(index).unwrap().parse().unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn the_edge_raises_its_open_file_limit_and_says_how_many_connections_it_holds() {
    let hard = open_files_field("/proc/self/limits", 4);
    let (line, open_files) = banner_line_and_open_files(&[], "connections");
    assert_eq!(open_files, hard, "the soft limit is raised to the hard one");
    let (websockets, sockets) = echo_edge::capacity::limits(None, Some(hard));
    assert_eq!(
        sockets,
        echo_edge::capacity::connections_for(hard),
        "sockets take what the open files leave room for"
    );
    let grouped = websockets
        .to_string()
        .as_bytes()
        .rchunks(3)
        .rev()
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(
        line.trim(),
        format!("connections     up to {grouped} clients")
    );

    let (line, _) = banner_line_and_open_files(&["--max-connections", "3"], "connections");
    assert_eq!(line.trim(), "connections     up to 3 clients");
}

/// The banner says where the dev secret is kept, never the secret; logs to a pipe carry no
/// colour codes.
#[test]
fn the_banner_keeps_the_secret_and_piped_logs_have_no_colour() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(ECHOCTL)
        .args(["dev", "--port", "0", "--manage-port", "0", "--data-dir"])
        .arg(dir.path())
        .env_remove("ECHO_JWT_SECRET")
        .env_remove("ECHO_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut banner = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let last = line.trim_start().starts_with("then send");
        banner.push(line);
        if last {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    let banner = banner.join("\n");
    let secret = std::fs::read_to_string(dir.path().join("dev-secret")).unwrap();
    assert!(secret.trim().len() >= 32);
    assert!(!banner.contains(secret.trim()), "{banner}");
    assert!(
        banner.contains("JWT secret      generated and kept in"),
        "{banner}"
    );
    assert!(logs.contains("associations loaded"), "{logs}");
    assert!(
        !logs.contains('\u{1b}'),
        "colour codes in piped logs: {logs:?}"
    );
}
