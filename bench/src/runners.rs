//! What a function's round trip costs through each local runner: `echoctl dev` (the binary
//! beside this one) serving a project whose JavaScript and Python functions pass each message on
//! unchanged, and `--calls` invocations of each, one after another over one kept-alive
//! connection, exactly as the edge invokes them (a function input in, the Lambda Invoke API),
//! alternated between the runners for `--rounds` rounds. Milliseconds, median and p99.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use clap::Args;
use serde_json::json;

use crate::stats::{Latency, histogram};

#[derive(Args)]
pub struct RunnersArgs {
    /// Invocations of each function per round.
    #[arg(long, default_value_t = 2000)]
    calls: usize,
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

const JS: &str = "export async function handler(event) {\n  return { action: 'continue', data: event.message.data };\n}\n";
const PY: &str = "def handler(event, context):\n    return {\"action\": \"continue\", \"data\": event[\"message\"][\"data\"]}\n";

/// `echoctl dev` in a project of its own, killed when dropped.
struct Dev {
    child: Child,
    dir: PathBuf,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn write(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, text)
}

/// Starts `echoctl dev` on the project; the Node.js and Python runners' endpoints.
fn start() -> Result<(Dev, String, String), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("echo-bench-runners-{}", std::process::id()));
    write(&dir.join("functions/pass-js/index.mjs"), JS)?;
    write(&dir.join("functions/pass-py/handler.py"), PY)?;
    let echoctl = std::env::current_exe()?
        .parent()
        .map(|d| d.join("echoctl"))
        .ok_or("no directory for echoctl")?;
    let mut child = Command::new(echoctl)
        .args([
            "dev",
            "--port",
            "0",
            "--manage-port",
            "0",
            "--data-dir",
            "data",
        ])
        .current_dir(&dir)
        .env("ECHO_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let dev = Dev { child, dir };
    let (mut node, mut python) = (None, None);
    let endpoint = |line: &str| {
        line.split("Lambda Invoke API on ")
            .nth(1)
            .map(|r| r.trim_end_matches(')').to_owned())
    };
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        let trimmed = line.trim_start();
        if trimmed.starts_with("Node.js functions") {
            node = endpoint(trimmed);
        } else if trimmed.starts_with("Python functions") {
            python = endpoint(trimmed);
        } else if trimmed.starts_with("ready in") {
            break;
        }
    }
    match (node, python) {
        (Some(n), Some(p)) => Ok((dev, n, p)),
        _ => Err("echoctl dev did not list both runners".into()),
    }
}

/// `calls` invocations of `name` at `endpoint`, one after another.
async fn round(
    client: &reqwest::Client,
    endpoint: &str,
    name: &str,
    calls: usize,
) -> Result<Latency, Box<dyn std::error::Error>> {
    let url = format!("{endpoint}/2015-03-31/functions/{name}/invocations");
    let input = json!({"app": "bench", "channel": "chat", "message": {
        "id": "m1", "data": {"text": "a message of about a hundred bytes, as a chat sends them"},
        "from": "alice", "ts": 0}});
    let body = serde_json::to_vec(&input)?;
    let mut h = histogram();
    for _ in 0..calls {
        let started = Instant::now();
        let answer = client.post(&url).body(body.clone()).send().await?;
        if !answer.status().is_success() || answer.headers().contains_key("x-amz-function-error") {
            return Err(format!("{name} failed: {}", answer.text().await?).into());
        }
        answer.bytes().await?;
        h.record(started.elapsed().as_micros().max(1) as u64)?;
    }
    Ok(Latency::of(&h))
}

pub async fn run(a: RunnersArgs) -> Result<(), Box<dyn std::error::Error>> {
    let (_dev, node, python) = start()?;
    let client = reqwest::Client::new();
    // Warm both: the first call loads each module.
    round(&client, &node, "pass-js", 200).await?;
    round(&client, &python, "pass-py", 200).await?;
    println!("| round | Node.js p50 / p99 (ms) | Python p50 / p99 (ms) |");
    println!("| --- | --- | --- |");
    for r in 1..=a.rounds {
        let js = round(&client, &node, "pass-js", a.calls).await?;
        let py = round(&client, &python, "pass-py", a.calls).await?;
        println!(
            "| {r} | {:.3} / {:.3} | {:.3} / {:.3} |",
            js.p50, js.p99, py.p50, py.p99
        );
    }
    Ok(())
}
