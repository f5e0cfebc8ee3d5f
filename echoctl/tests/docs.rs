//! The examples of README.md and docs/ run as printed, so that an example that stops being true
//! fails here. Each checked block is marked in the docs with a comment naming this file:
//!
//! - every associations document (a `json` block with `"apps"`) passes `echoctl associations
//!   validate`;
//! - the wscat transcript (`<!-- checked: wscat ... -->`) is replayed against a fresh `echoctl dev`,
//!   each reply compared in shape with the one printed (the same fields, of the same types; the
//!   `type`, `code` and an error's `message` equal; values such as ids, times and tokens left
//!   free);
//! - the HTTP API's commands (`<!-- checked: http-api ... -->`) run in order against a fresh
//!   `echoctl dev`, and each output printed under a command (`# {...}`) is compared in shape.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

mod common;

use common::{ECHOCTL, blocks, echoctl, marked, ok, start_dev, workspace};

fn read(doc: &str) -> String {
    std::fs::read_to_string(workspace().join(doc)).unwrap()
}

/// Whether `got` has the shape of `want`: the same fields, recursively, of the same JSON types,
/// and the same `type`, `code` and an error's `message`.
fn same_shape(want: &Value, got: &Value) -> Result<(), String> {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            let (mut wk, mut gk): (Vec<_>, Vec<_>) = (w.keys().collect(), g.keys().collect());
            wk.sort();
            gk.sort();
            if wk != gk {
                return Err(format!("fields {wk:?} printed, {gk:?} sent"));
            }
            for (k, wv) in w {
                if (k == "type" || k == "code" || (k == "message" && w.contains_key("code")))
                    && wv != &g[k]
                {
                    return Err(format!("{k} {wv} printed, {} sent", g[k]));
                }
                same_shape(wv, &g[k]).map_err(|e| format!("{k}: {e}"))?;
            }
            Ok(())
        }
        (Value::Array(w), Value::Array(g)) => match (w.first(), g.first()) {
            (Some(w), Some(g)) => same_shape(w, g),
            (None, None) => Ok(()),
            _ => Err(format!("{} items printed, {} sent", w.len(), g.len())),
        },
        (Value::String(_), Value::String(_))
        | (Value::Number(_), Value::Number(_))
        | (Value::Bool(_), Value::Bool(_))
        | (Value::Null, Value::Null) => Ok(()),
        _ => Err(format!("{want} printed, {got} sent")),
    }
}

#[test]
fn every_associations_example_is_valid() {
    // The functions each document's examples may name besides the demo's.
    for (doc, extra) in [
        ("README.md", "admit,member-check"),
        ("docs/functions.md", "tidy,shout"),
        ("docs/echoctl.md", ""),
        ("docs/security.md", ""),
        ("docs/aws.md", ""),
    ] {
        for (i, (info, body)) in blocks(&read(doc)).into_iter().enumerate() {
            if info != "json" || !body.contains("\"apps\"") {
                continue;
            }
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("associations.json");
            std::fs::write(&file, &body).unwrap();
            let mut args = vec!["associations", "validate", "associations.json"];
            if !extra.is_empty() {
                args.extend(["--functions", extra]);
            }
            let out = echoctl(dir.path(), &args).output().unwrap();
            assert!(
                out.status.success(),
                "{doc}, block {i}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_wscat_transcript_is_what_the_edge_says() {
    let transcript = marked(&read("README.md"), "wscat");
    let dir = tempfile::tempdir().unwrap();
    let dev = start_dev(dir.path(), &[]);
    let token = common::token(dir.path(), "chat-demo", "alice");
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/?token={token}", dev.addr))
        .await
        .unwrap();
    for line in transcript.lines() {
        if let Some(sent) = line.strip_prefix("> ") {
            ws.send(Message::text(sent.to_owned())).await.unwrap();
        } else if let Some(printed) = line.strip_prefix("< ") {
            let want: Value = serde_json::from_str(printed).unwrap();
            let got = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
                .await
                .expect("a reply")
                .unwrap()
                .unwrap();
            let got: Value = serde_json::from_str(got.to_text().unwrap()).unwrap();
            if let Err(e) = same_shape(&want, &got) {
                panic!("README's wscat transcript: {e}\n  printed: {want}\n  sent:    {got}");
            }
        }
    }
    let mut child = dev.child;
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn the_http_api_examples_run_in_order() {
    let block = marked(&read("README.md"), "http-api");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join(".echo");
    let dev = start_dev(&data, &[]);
    // The commands, continuation lines joined, each with the outputs printed under it.
    let mut commands: Vec<(String, Vec<Value>)> = Vec::new();
    let mut pending = String::new();
    for line in block.lines() {
        if let Some(printed) = line.strip_prefix("# ") {
            commands
                .last_mut()
                .unwrap()
                .1
                .push(serde_json::from_str(printed).unwrap());
            continue;
        }
        let line = line.split("   # ").next().unwrap();
        match line.strip_suffix('\\') {
            Some(part) => pending.push_str(part),
            None => {
                pending.push_str(line);
                commands.push((std::mem::take(&mut pending), Vec::new()));
            }
        }
    }
    let mut script = String::from("set -e\n");
    for (i, (command, _)) in commands.iter().enumerate() {
        let command = command.replace("127.0.0.1:8080", &dev.addr);
        script.push_str(&format!("echo '@@@{i}'\n{command}\necho\n"));
    }
    let bin = Path::new(ECHOCTL).parent().unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = ok(Command::new("bash")
        .args(["-c", &script])
        .current_dir(dir.path())
        .env("PATH", path)
        .env("ECHO_HTTP_ENDPOINT", format!("http://{}", dev.addr))
        .env_remove("ECHO_JWT_SECRET")
        .output()
        .unwrap());
    for (i, (command, printed)) in commands.iter().enumerate() {
        let said = out
            .split(&format!("@@@{i}\n"))
            .nth(1)
            .unwrap()
            .split("@@@")
            .next()
            .unwrap()
            .trim();
        for want in printed {
            let got: Value =
                serde_json::from_str(said).unwrap_or_else(|e| panic!("{command}: {e}: {said:?}"));
            if let Err(e) = same_shape(want, &got) {
                panic!("{command}: {e}\n  printed: {want}\n  said:    {got}");
            }
        }
        assert!(!said.contains("\"error\""), "{command}: {said}");
    }
    let mut child = dev.child;
    child.kill().unwrap();
    child.wait().unwrap();
}
