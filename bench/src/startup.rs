//! Lambda start-up under `cargo lambda watch`: how long the emulator takes to be ready, the
//! first invocation of each binary (cargo's up-to-date check, process start, the binary's
//! initialisation and one event), a warm invocation, and the binaries' sizes. The emulator is
//! started twice: the first time builds what it needs (not reported), the second is measured.
//!
//! The handler Lambdas get events that they answer without reaching a table or another service
//! (a `$connect` without a token, a `ping`, a malformed fan-out event), so what is timed is
//! start-up, not DynamoDB.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::results::StartupOutcome;

#[derive(clap::Args)]
pub struct StartupArgs {}

/// (package, binary, event)
fn binaries() -> Vec<(&'static str, &'static str, String)> {
    let function = r#"{"app":"chat-demo","channel":"angry","message":{"id":"m","data":{"text":"hello"},"from":"u","ts":1}}"#;
    let connect = r#"{"requestContext":{"routeKey":"$connect","eventType":"CONNECT","connectionId":"c1","requestId":"r","domainName":"localhost","stage":"local","apiId":"local","connectedAt":1,"requestTimeEpoch":1,"identity":{"sourceIp":"127.0.0.1"}},"isBase64Encoded":false}"#;
    let message = r#"{"requestContext":{"routeKey":"$default","eventType":"MESSAGE","connectionId":"c1","requestId":"r","domainName":"localhost","stage":"local","apiId":"local","connectedAt":1,"requestTimeEpoch":1,"messageId":"m","identity":{"sourceIp":"127.0.0.1"}},"body":"{\"action\":\"ping\"}","isBase64Encoded":false}"#;
    let fanout = r#"{"channel":"not-a-key","message":{"channel":"c","seq":1,"id":"m","data":1,"from":"u","ts":1}}"#;
    vec![
        ("connect-handler", "connect-handler", connect.into()),
        ("message-handler", "message-handler", message.into()),
        ("fanout", "fanout", fanout.into()),
        ("echo-fn-angry", "angry", function.into()),
        ("echo-fn-emojify", "emojify", function.into()),
        ("echo-fn-backwards", "backwards", function.into()),
        ("echo-fn-robot", "robot", function.into()),
        ("echo-fn-profanity", "profanity", function.into()),
    ]
}

/// Settings that let the handlers initialise without AWS and never reach it.
const ENV: &[(&str, &str)] = &[
    ("ECHO_CONNECTIONS_TABLE", "echo-connections"),
    ("ECHO_HISTORY_TABLE", "echo-history"),
    (
        "ECHO_JWT_SECRET",
        "startup-secret-startup-secret-startup-secret",
    ),
    ("ECHO_MANAGEMENT_ENDPOINT", "http://127.0.0.1:9"),
    ("ECHO_FANOUT_FUNCTION", "fanout"),
    ("ECHO_RELAY_FUNCTION", "message-handler"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_ACCESS_KEY_ID", "startup"),
    ("AWS_SECRET_ACCESS_KEY", "startup"),
    ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
];

fn size(p: &Path) -> Option<u64> {
    std::fs::metadata(p).ok().map(|m| m.len())
}

/// The arm64 bootstrap `sam build` made for `binary`, if any.
fn arm64(repo: &Path, binary: &str) -> Option<u64> {
    let dir = repo.join("target/sam-build");
    let template = std::fs::read_to_string(repo.join("template.yaml")).ok()?;
    // Find the logical id whose Binary is `binary`.
    let mut logical = None;
    let mut current = None;
    for line in template.lines() {
        if line.starts_with("  ") && !line.starts_with("   ") && line.trim_end().ends_with(':') {
            current = Some(line.trim().trim_end_matches(':').to_owned());
        }
        if line.trim() == format!("Binary: {binary}") {
            logical = current.clone();
        }
    }
    size(&dir.join(logical?).join("bootstrap"))
}

async fn invoke(url: &str, body: &str) -> Duration {
    let started = Instant::now();
    let _ = reqwest::Client::new()
        .post(url)
        .body(body.to_owned())
        .timeout(Duration::from_secs(600))
        .send()
        .await;
    started.elapsed()
}

pub async fn measure_all(repo: &Path) -> crate::Result<Vec<StartupOutcome>> {
    let target = repo.join("target/lambda-watch");
    let mut out = Vec::new();
    for measured in [false, true] {
        let (mut child, port, ready) = start_watch(repo, &target).await?;
        for (_, binary, event) in binaries() {
            let url = format!("http://127.0.0.1:{port}/2015-03-31/functions/{binary}/invocations");
            let first = invoke(&url, &event).await;
            let warm = invoke(&url, &event).await;
            if measured {
                out.push(StartupOutcome {
                    binary: binary.into(),
                    ready_ms: ready.as_secs_f64() * 1000.0,
                    first_invoke_ms: first.as_secs_f64() * 1000.0,
                    warm_invoke_ms: warm.as_secs_f64() * 1000.0,
                    arm64_release_bytes: arm64(repo, binary),
                    debug_bytes: size(&target.join("debug").join(binary)),
                });
            }
        }
        // cargo lambda watch runs the functions as its children: stop the whole group.
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", child.id())])
            .status();
        let _ = child.wait();
    }
    Ok(out)
}

/// Starts `cargo lambda watch` on a free port; returns it, the port and how long it took to
/// accept connections.
async fn start_watch(
    repo: &Path,
    target: &Path,
) -> crate::Result<(std::process::Child, u16, Duration)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut watch = Command::new("cargo");
    watch
        .args([
            "lambda",
            "watch",
            "--ignore-changes",
            "-P",
            &port.to_string(),
        ])
        .current_dir(repo)
        .env("CARGO_TARGET_DIR", target)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    for (k, v) in ENV {
        watch.args(["--env-var", &format!("{k}={v}")]);
    }
    let started = Instant::now();
    let mut child = watch
        .spawn()
        .map_err(|e| format!("cargo lambda watch: {e}"))?;
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok((child, port, started.elapsed()));
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            return Err("cargo lambda watch did not start".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn run(_args: StartupArgs) -> crate::Result {
    let repo: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for o in measure_all(&repo).await? {
        println!("{}", crate::report::startup_line(&o));
    }
    Ok(())
}
