//! Functions served by `cargo lambda watch` (the Lambda Invoke API), invoked by the edge.
//!
//! Needs `cargo lambda` (`pip install cargo-lambda`; `scripts/test-all.sh` installs it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use echo_edge::invoker::InProcess;
use echo_tests::{TestEdge, services};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn the_edge_invokes_functions_through_the_lambda_invoke_api() {
    let watch = services::lambda_watch(Some(("echo-fn-robot", "robot")), &[], &["robot"]).await;
    let endpoint = watch.endpoint.clone();
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
