//! What the tests of the echoctl binary share: starting `echoctl dev`, getting tokens and
//! connecting.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub const ECHOCTL: &str = env!("CARGO_BIN_EXE_echoctl");

/// The repository.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// echoctl in `dir`, with no ECHO_* or AWS settings from the environment.
pub fn echoctl(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(ECHOCTL);
    c.args(args).current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("ECHO_") || k.starts_with("AWS_") {
            c.env_remove(k);
        }
    }
    c
}

/// The fenced blocks of `text` (a Markdown document) with their info string.
pub fn blocks(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.trim_start().strip_prefix("```") else {
            continue;
        };
        let body: Vec<&str> = lines
            .by_ref()
            .take_while(|l| !l.trim_start().starts_with("```"))
            .collect();
        out.push((info.trim().to_owned(), body.join("\n")));
    }
    out
}

/// The block right after the marker `<!-- checked: NAME ... -->` in `text`.
pub fn marked(text: &str, name: &str) -> String {
    let marker = format!("<!-- checked: {name} ");
    let (_, after) = text
        .split_once(&marker)
        .unwrap_or_else(|| panic!("no {marker}"));
    blocks(after)
        .into_iter()
        .next()
        .map(|(_, body)| body)
        .unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The command succeeded; its stdout.
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The command failed; its stderr.
pub fn failed(out: Output) -> String {
    assert_eq!(out.status.code(), Some(1), "stdout: {}", text(&out.stdout));
    text(&out.stderr)
}

/// A running `echoctl dev`.
pub struct Dev {
    pub child: Child,
    /// Where clients connect: `HOST:PORT`.
    pub addr: String,
    pub manage_port: u16,
}

/// `echoctl dev` on free ports and `data_dir`, with `args` added and no ECHO_JWT_SECRET (the dev
/// secret is generated in `data_dir`).
pub fn start_dev(data_dir: &Path, args: &[&str]) -> Dev {
    start_dev_in(Path::new("."), data_dir, args)
}

/// [`start_dev`] in the folder `cwd`, whose `echo.toml` and functions it then uses.
pub fn start_dev_in(cwd: &Path, data_dir: &Path, args: &[&str]) -> Dev {
    start_dev_with(cwd, data_dir, args, &[])
}

/// [`start_dev_in`] with `env` set for echoctl (and what it starts).
pub fn start_dev_with(cwd: &Path, data_dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> Dev {
    let mut child = Command::new(ECHOCTL)
        .current_dir(cwd)
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .args(["dev", "--port", "0", "--manage-port", "0", "--data-dir"])
        .arg(data_dir)
        .args(args)
        .env_remove("ECHO_JWT_SECRET")
        .env_remove("ECHO_MANAGE_TOKEN")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(stderr_of(data_dir)).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first
        .strip_prefix("echo edge listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();
    let manage_port = loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(rest) = line
            .trim()
            .strip_prefix("management API  http://127.0.0.1:")
        {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Dev {
        child,
        addr,
        manage_port,
    }
}

/// Where [`start_dev_with`] keeps the standard error of `echoctl dev` on `data_dir`.
pub fn stderr_of(data_dir: &Path) -> PathBuf {
    data_dir.with_extension("stderr")
}

/// A token for `sub` in `app`, signed with the dev secret in `data_dir`.
pub fn token(data_dir: &Path, app: &str, sub: &str) -> String {
    let out = Command::new(ECHOCTL)
        .args(["jwt", app, "--sub", sub, "--ttl", "1h", "--data-dir"])
        .arg(data_dir)
        .env_remove("ECHO_JWT_SECRET")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// `echoctl dev` with no publish rate limit: the traffic tests publish as fast as acks come.
/// Returns the process and the client address.
pub fn start_unlimited(data_dir: &Path) -> (Child, String) {
    let dev = start_dev(data_dir, &["--publish-rate", "0"]);
    (dev.child, dev.addr)
}

/// A token for `sub` in the `chat-demo` app.
pub fn demo_token(data_dir: &Path, sub: &str) -> String {
    token(data_dir, "chat-demo", sub)
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket to the edge at `addr` with `token`.
pub async fn connect(addr: &str, token: &str) -> Ws {
    tokio_tungstenite::connect_async(format!("ws://{addr}/?token={token}"))
        .await
        .unwrap()
        .0
}

/// The next text frame as JSON, skipping others; `None` when the socket ends or stays silent
/// for 10 s.
pub async fn next_json(ws: &mut Ws) -> Option<serde_json::Value> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(t.as_str()).ok(),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}
