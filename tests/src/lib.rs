//! The harness for Echo's system tests: starts a real edge on `127.0.0.1:0` with a fresh data
//! directory, and drives it with real WebSocket and HTTP clients.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod dynamo_front;
pub mod oidc;
pub mod proxy;
pub mod services;

use std::path::{Path, PathBuf};
use std::time::Duration;

use echo_core::auth::{Claims, Permissions, Role, TokenIssuer};
use echo_core::channel::AppId;
use echo_core::clock::{Clock, SystemClock};
use echo_core::limits::DEFAULT_MAX_MESSAGE_BYTES;
use echo_edge::invoker::InProcess;
use echo_edge::{EdgeConfig, RunningEdge};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const SECRET: &str = "system-test-secret-system-test-secret";
pub const MANAGE_TOKEN: &str = "system-test-manage-token";
/// How long to wait for a frame that should arrive.
pub const WAIT: Duration = Duration::from_secs(10);

/// A running edge and what tests need to talk to it.
pub struct TestEdge {
    pub edge: RunningEdge,
    pub config: EdgeConfig,
    pub functions: InProcess,
    /// Keeps the data directory alive for the edge's lifetime (and across restarts).
    pub dir: std::sync::Arc<tempfile::TempDir>,
}

impl TestEdge {
    pub fn config(dir: &Path) -> EdgeConfig {
        let mut config = EdgeConfig::new(
            dir.to_path_buf(),
            SECRET.as_bytes().to_vec(),
            MANAGE_TOKEN.into(),
        );
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.manage_listen = "127.0.0.1:0".parse().unwrap();
        config.dev_mode = true;
        // The chat demo's page and associations, as `echoctl dev` serves them.
        echo_chat_demo::serve(&mut config);
        // Tests publish far faster than any person; the limit has its own test.
        config.publish_rate = 0;
        config
    }

    /// The demo edge.
    pub async fn start() -> Self {
        Self::start_with(|_| {}, echo_chat_demo::functions()).await
    }

    /// An edge with `functions`, its config adjusted by `configure`.
    pub async fn start_with(configure: impl FnOnce(&mut EdgeConfig), functions: InProcess) -> Self {
        let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
        let mut config = Self::config(dir.path());
        configure(&mut config);
        let edge = echo_edge::start_with(config.clone(), functions.clone())
            .await
            .expect("edge starts");
        Self {
            edge,
            config,
            functions,
            dir,
        }
    }

    /// Shuts the edge down and starts a new one on the same data directory and ports.
    pub async fn restart(self) -> Self {
        let mut config = self.config.clone();
        config.listen = self.edge.addr;
        config.manage_listen = self.edge.manage_addr;
        self.edge.shutdown().await;
        let edge = echo_edge::start_with(config.clone(), self.functions.clone())
            .await
            .expect("edge restarts");
        Self {
            edge,
            config,
            functions: self.functions,
            dir: self.dir,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    pub fn token_for(&self, claims: &Claims) -> String {
        TokenIssuer::new(SECRET.as_bytes())
            .unwrap()
            .issue(claims)
            .unwrap()
    }

    pub fn claims(app: &str, sub: &str) -> Claims {
        Claims::new(AppId::new(app).unwrap(), sub, SystemClock.now_secs() + 600)
    }

    pub fn token(&self, app: &str, sub: &str) -> String {
        self.token_for(&Self::claims(app, sub))
    }

    pub fn admin_token(&self, app: &str) -> String {
        let mut c = Self::claims(app, "admin");
        c.role = Role::Admin;
        self.token_for(&c)
    }

    pub fn restricted_token(&self, app: &str, sub: &str, permissions: Permissions) -> String {
        let mut c = Self::claims(app, sub);
        c.channels = Some(permissions);
        self.token_for(&c)
    }

    pub fn url(&self, token: &str) -> String {
        format!("ws://{}/?token={token}", self.edge.addr)
    }

    /// What the HTTP API says of the connect attempt `attempt`: its status, its
    /// `Access-Control-Allow-Origin` and its body.
    pub async fn connect_attempt(&self, attempt: &str) -> (u16, Option<String>, Value) {
        let r = self
            .http()
            .get(format!(
                "http://{}/v1/connect-attempts/{attempt}",
                self.edge.addr
            ))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let origin = r
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (status, origin, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn connect(&self, token: &str) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(self.url(token))
            .await
            .expect("connects");
        Client {
            ws,
            pending: Default::default(),
        }
    }

    /// Connects and expects a refusal; returns the HTTP status.
    pub async fn refused(&self, url: &str) -> u16 {
        match tokio_tungstenite::connect_async(url).await {
            Ok(_) => panic!("connection to {url} was accepted"),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                response.status().as_u16()
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }

    /// Connects and expects a refusal; returns the HTTP status and the JSON body.
    pub async fn refusal(&self, url: &str) -> (u16, Value) {
        match tokio_tungstenite::connect_async(url).await {
            Ok(_) => panic!("connection to {url} was accepted"),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                let body = response.body().as_deref().unwrap_or_default();
                (
                    response.status().as_u16(),
                    serde_json::from_slice(body).unwrap_or(Value::Null),
                )
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }

    /// `GET /metrics` from the management API: Prometheus' text.
    pub async fn metrics(&self) -> String {
        self.http()
            .get(self.manage_url("/metrics"))
            .bearer_auth(MANAGE_TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub fn manage_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.edge.manage_addr)
    }

    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::new()
    }

    /// Replaces the associations through the management API; returns status and body.
    pub async fn put_associations(&self, doc: &str) -> (u16, Value) {
        let r = self
            .http()
            .put(self.manage_url("/associations"))
            .bearer_auth(MANAGE_TOKEN)
            .body(doc.to_owned())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

/// A real WebSocket client.
pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Frames read while looking for another one (an ack), handed out by the next `recv`s.
    pending: std::collections::VecDeque<Value>,
}

impl Client {
    pub async fn send(&mut self, v: Value) {
        self.ws.send(Message::text(v.to_string())).await.unwrap();
    }

    pub async fn send_text(&mut self, s: &str) {
        self.ws.send(Message::text(s.to_owned())).await.unwrap();
    }

    pub async fn send_raw(&mut self, m: Message) {
        self.ws.send(m).await.unwrap();
    }

    /// The next JSON text frame; panics after [`WAIT`], on close, or on a frame API Gateway
    /// would not carry (over 128 KB): every system test checks every frame Echo sends.
    pub async fn recv(&mut self) -> Value {
        if let Some(v) = self.pending.pop_front() {
            return v;
        }
        loop {
            let m = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame within the wait")
                .expect("connection open")
                .expect("frame ok");
            match m {
                Message::Text(t) => {
                    assert!(
                        t.len() <= DEFAULT_MAX_MESSAGE_BYTES,
                        "a {}-byte frame, over API Gateway's {DEFAULT_MAX_MESSAGE_BYTES}",
                        t.len()
                    );
                    return serde_json::from_str(t.as_str()).unwrap();
                }
                Message::Close(c) => panic!("connection closed: {c:?}"),
                _ => continue,
            }
        }
    }

    /// Frames until one of type `ty`; the others are returned too, in order.
    pub async fn recv_until(&mut self, ty: &str) -> (Value, Vec<Value>) {
        let mut skipped = Vec::new();
        loop {
            let v = self.recv().await;
            if v["type"] == ty {
                return (v, skipped);
            }
            skipped.push(v);
        }
    }

    /// Asserts nothing arrives for `ms`.
    pub async fn silent_for(&mut self, ms: u64) {
        assert!(
            self.pending.is_empty(),
            "expected silence, have {:?}",
            self.pending
        );
        if let Ok(Some(Ok(m))) =
            tokio::time::timeout(Duration::from_millis(ms), self.ws.next()).await
        {
            panic!("expected silence, got {m:?}");
        }
    }

    /// Subscribes and returns the `subscribed` frame.
    pub async fn subscribe(&mut self, channel: &str) -> Value {
        self.send(json!({"action": "subscribe", "channel": channel}))
            .await;
        let v = self.recv().await;
        assert_eq!(v["type"], "subscribed", "{v}");
        v
    }

    /// Publishes and returns the ack or error; frames that come first stay queued for `recv`.
    pub async fn publish(&mut self, channel: &str, data: Value, id: &str) -> Value {
        self.send(json!({"action": "publish", "channel": channel, "data": data, "id": id}))
            .await;
        let mut skipped = Vec::new();
        let found = loop {
            let v = self.recv().await;
            if (v["type"] == "ack" || v["type"] == "error") && v["id"] == id {
                break v;
            }
            skipped.push(v);
        };
        for v in skipped.into_iter().rev() {
            self.pending.push_front(v);
        }
        found
    }

    /// Reads until the connection closes; returns the close code if a close frame came.
    pub async fn closed(&mut self) -> Option<u16> {
        self.closed_with().await.map(|(code, _)| code)
    }

    /// Reads until the connection closes; returns the close frame's code and reason if one came.
    pub async fn closed_with(&mut self) -> Option<(u16, String)> {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("closes within the wait")
            {
                Some(Ok(Message::Close(c))) => {
                    return c.map(|c| (u16::from(c.code), c.reason.to_string()));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self
            .ws
            .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: CloseCode::Normal,
                reason: "bye".into(),
            }))
            .await;
    }
}
