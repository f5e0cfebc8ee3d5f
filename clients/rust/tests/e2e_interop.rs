//! The Rust and JavaScript clients on one encrypted channel through a real edge: each reads what
//! the other encrypted, and the edge holds only envelopes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::Duration;

use echo_client::Client;
use echo_client::e2e::Key;
use echo_tests::TestEdge;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_js_and_a_rust_client_read_each_others_encrypted_messages() {
    let edge = TestEdge::start().await;
    let (channel, passphrase, salt) = ("secret", "shared passphrase", "chat-demo:secret");
    let peer_script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../js/test-support/e2e-peer.mjs"
    );
    let mut node = Command::new("node")
        .args(["--experimental-websocket", "--no-warnings", peer_script])
        .arg(format!("ws://{}/", edge.edge.addr))
        .arg(edge.token("chat-demo", "js"))
        .args([channel, passphrase, salt])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (the JavaScript client's tests need it too)");
    let mut lines = BufReader::new(node.stdout.take().unwrap()).lines();
    let mut next_line = async || {
        timeout(WAIT, lines.next_line())
            .await
            .expect("the JS peer answers in time")
            .unwrap()
            .expect("the JS peer is running")
    };
    assert_eq!(next_line().await, "ready");

    let rust = Client::builder(format!("ws://{}/", edge.edge.addr))
        .token(edge.token("chat-demo", "rust"))
        .connect()
        .await
        .unwrap();
    rust.encrypt_channel(channel, vec![Key::from_passphrase(passphrase, salt)])
        .unwrap();
    let mut sub = rust.subscribe(channel).await.unwrap();

    // Rust to JS.
    rust.publish(channel, json!({"text": "hello from rust"}))
        .await
        .unwrap();
    let from_rust: Value = serde_json::from_str(&next_line().await).unwrap();
    assert_eq!(
        from_rust["data"],
        json!({"text": "hello from rust"}),
        "{from_rust}"
    );
    assert_eq!(from_rust["from"], "rust");
    let own = timeout(WAIT, sub.recv()).await.unwrap().unwrap();
    assert_eq!(own.data, json!({"text": "hello from rust"}));

    // JS to Rust.
    let mut stdin = node.stdin.take().unwrap();
    stdin.write_all(b"hello from js\n").await.unwrap();
    let m = timeout(WAIT, sub.recv()).await.unwrap().unwrap();
    assert_eq!(
        (m.from.as_str(), &m.data),
        ("js", &json!({"text": "hello from js"}))
    );

    // What the edge stored is ciphertext.
    let history = edge
        .http()
        .get(format!(
            "http://{}/v1/apps/chat-demo/channels/{channel}/messages",
            edge.edge.addr
        ))
        .bearer_auth(edge.admin_token("chat-demo"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(history.contains("\"e2e\":\"v1\""), "{history}");
    assert!(!history.contains("hello from"), "{history}");
    drop(stdin);
    let _ = timeout(WAIT, node.wait()).await;
}
