//! End-to-end encryption as the edge sees it: a canary published on an encrypted channel is
//! read by the subscribers that hold the key, and appears nowhere in the edge's data directory
//! or its log (at trace level, where frames are logged). A canary on a plain channel is found in
//! both, which shows the search would find it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use echo_client::Client;
use echo_client::e2e::Key;
use serde_json::json;

/// Whether `needle` occurs in any file under `dir`.
fn found_under(dir: &Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().any(|entry| {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found_under(&path, needle)
        } else {
            let bytes = std::fs::read(&path).unwrap_or_default();
            bytes.windows(needle.len()).any(|w| w == needle)
        }
    })
}

#[tokio::test]
async fn a_canary_on_an_encrypted_channel_is_nowhere_on_disk_or_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log_path = dir.path().join("edge.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(common::ECHOCTL)
        .args(["dev", "--port", "0", "--manage-port", "0", "--data-dir"])
        .arg(&data)
        .env("ECHO_LOG", "trace")
        .env_remove("ECHO_JWT_SECRET")
        .env_remove("ECHO_MANAGE_TOKEN")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let addr = {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        std::thread::spawn(move || for _ in lines {});
        first
            .strip_prefix("echo edge listening on http://")
            .unwrap()
            .to_owned()
    };
    let connect = async |sub: &str| {
        Client::builder(format!("ws://{addr}/"))
            .token(common::demo_token(&data, sub))
            .connect()
            .await
            .unwrap()
    };
    let key = Key::from_passphrase("a passphrase for the canary", "chat-demo:secret");
    let (alice, bob) = (connect("alice").await, connect("bob").await);
    alice.encrypt_channel("secret", vec![key.clone()]).unwrap();
    bob.encrypt_channel("secret", vec![key]).unwrap();
    let mut secret = bob.subscribe("secret").await.unwrap();
    let mut boring = bob.subscribe("boring").await.unwrap();

    let canary = format!("secret-canary-{}", std::process::id());
    let plain_canary = format!("plain-canary-{}", std::process::id());
    alice
        .publish("secret", json!({"text": canary}))
        .await
        .unwrap();
    alice
        .publish("boring", json!({"text": plain_canary}))
        .await
        .unwrap();
    let read = tokio::time::timeout(Duration::from_secs(10), secret.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        read.data,
        json!({"text": canary}),
        "the key's holders read it"
    );
    let plain = tokio::time::timeout(Duration::from_secs(10), boring.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(plain.data["text"], json!(plain_canary));
    alice.close().await;
    bob.close().await;

    // Stopped, so that everything is on disk and in the log.
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert!(
        found_under(&data, plain_canary.as_bytes()),
        "the plain channel's canary is in the data directory: the search works"
    );
    assert!(
        !found_under(&data, canary.as_bytes()),
        "the encrypted channel's canary is in the data directory"
    );
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("secret"),
        "the log is at trace level and mentions the channel"
    );
    assert!(
        log.contains(&plain_canary),
        "at trace level the frames are logged: the plain channel's canary is there"
    );
    assert!(
        !log.contains(&canary),
        "the encrypted channel's canary is in the log"
    );
}
