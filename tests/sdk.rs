//! The local @connections API as the official AWS SDKs see it: boto3 and the AWS SDK for
//! JavaScript v3, pointed at the edge's management port as application code points them at API
//! Gateway, post, read and delete connections and raise each error as its modeled exception
//! (`GoneException`, `PayloadTooLargeException`, `ForbiddenException`,
//! `LimitExceededException`), dates parsed; both sign with the management token as the key id and
//! the secret, and a wrong secret is refused as API Gateway refuses it
//! (`InvalidSignatureException`). The scripts are `tests/sdk/`; boto3 comes from the
//! SAM virtualenv the test script installs (`ECHO_SAM_VENV`, default `.venv-sam`), the JavaScript
//! SDK from `(cd tests/sdk && npm ci)`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use echo_tests::{Client, MANAGE_TOKEN, TestEdge};
use serde_json::{Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// An edge whose connections may queue one frame, and the connections the scripts drive: one
/// that reads, one that never reads, and the id of one that closed.
struct Scene {
    edge: TestEdge,
    live: (Client, String),
    _slow: Client,
    slow_id: String,
    gone_id: String,
}

async fn scene() -> Scene {
    let edge = TestEdge::start_with(|c| c.outbound_queue = 1, echo_chat_demo::functions()).await;
    let mut admin = edge.connect(&edge.admin_token("chat-demo")).await;
    admin.subscribe("$status").await;
    let mut id_of_next = async |name: &str| {
        let c = edge.connect(&edge.token("chat-demo", name)).await;
        let id = admin.recv().await["data"]["connectionId"]
            .as_str()
            .unwrap()
            .to_owned();
        (c, id)
    };
    let live = id_of_next("live").await;
    let (slow, slow_id) = id_of_next("slow").await;
    let (gone, gone_id) = id_of_next("gone").await;
    gone.close().await;
    assert_eq!(admin.recv().await["data"]["event"], "disconnected");
    Scene {
        edge,
        live,
        _slow: slow,
        slow_id,
        gone_id,
    }
}

/// Runs `program` with the scene in its environment (on a blocking thread: the edge answers it
/// from this runtime); its one line of JSON.
async fn run(scene: &Scene, mut program: Command) -> Value {
    program
        .current_dir(root())
        .env(
            "ENDPOINT",
            format!("http://{}", scene.edge.edge.manage_addr),
        )
        .env("TOKEN", MANAGE_TOKEN)
        .env("LIVE_ID", &scene.live.1)
        .env("SLOW_ID", &scene.slow_id)
        .env("GONE_ID", &scene.gone_id)
        .env("AWS_EC2_METADATA_DISABLED", "true");
    let out = tokio::task::spawn_blocking(move || program.output())
        .await
        .unwrap()
        .expect("the SDK script runs");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

async fn check(mut scene: Scene, out: Value, from: &str) {
    assert_eq!(out["post"], "ok", "{out}");
    assert_eq!(scene.live.0.recv().await, json!({"from": from}));
    let get = &out["get"];
    assert_eq!(get["connectedAtIsDate"], true, "{out}");
    assert_eq!(get["lastActiveAtIsDate"], true, "{out}");
    assert_eq!(get["sourceIp"], "127.0.0.1", "{out}");
    assert!(
        get["connectedAt"].as_str().unwrap().starts_with("20"),
        "{out}"
    );
    assert_eq!(out["gone"], "GoneException", "{out}");
    assert_eq!(out["getGone"], "GoneException", "{out}");
    assert_eq!(out["tooLarge"], "PayloadTooLargeException", "{out}");
    assert_eq!(out["forbidden"], "ForbiddenException", "{out}");
    // Not a modeled error: each SDK raises it under API Gateway's name, as it would on AWS.
    assert!(
        out["badSignature"]
            .as_str()
            .unwrap()
            .ends_with("InvalidSignatureException"),
        "{out}"
    );
    assert_eq!(out["limit"], "LimitExceededException", "{out}");
    assert_eq!(out["delete"], "ok", "{out}");
    assert!(scene.live.0.closed().await.is_some(), "deleted: closed");
}

#[tokio::test(flavor = "multi_thread")]
async fn boto3_raises_each_modeled_error_by_name() {
    let scene = scene().await;
    let venv = root().join(std::env::var_os("ECHO_SAM_VENV").unwrap_or_else(|| ".venv-sam".into()));
    let mut python = Command::new(venv.join("bin").join("python"));
    python.arg("tests/sdk/management_boto3.py");
    let out = run(&scene, python).await;
    check(scene, out, "boto3").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_javascript_sdk_raises_each_modeled_error_by_name() {
    let scene = scene().await;
    let mut node = Command::new("node");
    node.arg("tests/sdk/management.mjs");
    let out = run(&scene, node).await;
    check(scene, out, "js").await;
}
