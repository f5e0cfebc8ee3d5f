//! Functions served by `cargo lambda watch` (the Lambda Invoke API), invoked by the edge.
//!
//! Needs `cargo lambda` (`pip install cargo-lambda`; `scripts/test-all.sh` installs it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use echo_edge::invoker::InProcess;
use echo_tests::TestEdge;
use serde_json::json;

/// `cargo lambda watch` in its own process group, stopped (with the functions it runs) on drop.
struct Watch(Child);

impl Drop for Watch {
    fn drop(&mut self) {
        // cargo-lambda does not stop on SIGTERM; the whole group goes, functions included.
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn watch(package: &str, bin: &str) -> (Watch, String) {
    let port = free_port();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let child = Command::new("cargo")
        .args([
            "lambda",
            "watch",
            "--ignore-changes",
            "-p",
            package,
            "--bin",
            bin,
            "-P",
            &port.to_string(),
        ])
        .current_dir(root)
        // Its own target directory: the test build's lock may still be held.
        .env("CARGO_TARGET_DIR", format!("{root}/target/lambda-watch"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("`cargo lambda` is installed (pip install cargo-lambda)");
    let guard = Watch(child);
    let endpoint = format!("http://127.0.0.1:{port}");
    let url = format!("{endpoint}/2015-03-31/functions/{bin}/invocations");
    let probe = json!({"app":"a","channel":"c","message":{"id":"p","data":{"text":"ready?"},"from":"u","ts":1}});
    let started = Instant::now();
    loop {
        // cargo lambda watch may hold an invocation while it builds the function: bound each try.
        let attempt = reqwest::Client::new()
            .post(&url)
            .json(&probe)
            .timeout(Duration::from_secs(20));
        if let Ok(r) = attempt.send().await
            && r.status() == 200
        {
            return (guard, endpoint);
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "cargo lambda watch did not serve {bin} in time"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_edge_invokes_functions_through_the_lambda_invoke_api() {
    let (_watch, endpoint) = watch("echo-fn-robot", "robot").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("associations.json");
    std::fs::write(
        &file,
        r#"{"apps":{"t":{"channels":{
            "remote": {"functions":["robot"]},
            "chain":  {"functions":["angry","robot"]},
            "absent": {"functions":["no-such-function"],"timeoutMs":5000}
        }}}}"#,
    )
    .unwrap();
    let mut local = InProcess::default();
    local.register_sync("angry", |input| {
        Ok(echo_core::function::FunctionOutput::cont(
            echo_core::function::map_text(input.message.data, |t| {
                format!("{}!!!", t.to_uppercase())
            }),
        ))
    });
    let edge = TestEdge::start_with(
        |c| {
            c.associations_file = Some(file);
            c.functions_endpoint = Some(endpoint);
        },
        local,
    )
    .await;
    let mut c = edge.connect(&edge.token("t", "a")).await;
    c.subscribe("remote").await;
    c.subscribe("chain").await;
    c.publish("remote", json!({"text": "hello there"}), "1")
        .await;
    assert_eq!(
        c.recv().await["data"]["text"],
        "🤖 BEEP BOOP. HELLO · THERE. END OF LINE. 🤖"
    );
    c.publish("chain", json!({"text": "hi"}), "2").await;
    assert_eq!(
        c.recv().await["data"]["text"],
        "🤖 BEEP BOOP. HI. END OF LINE. 🤖",
        "in-process, then remote"
    );
    let e = c.publish("absent", json!({"text": "x"}), "3").await;
    assert_eq!(e["code"], "function_failed", "{e}");
}
