//! The three systems a load runs against, and how a subscriber and a publisher speak to each.
//!
//! Subscribers of every system use the same minimal reader (find the publish time in the frame,
//! nothing else) and publishers of every system the same loop (send, count the answers) so that
//! the generator costs each system the same. Echo's publishers send `publish` frames with an id
//! and count `ack`s; the socket.io publishers speak Engine.IO v4 / Socket.IO v5 over a plain
//! WebSocket as `bench/baseline/README.md` documents.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use echo_core::auth::{Claims, TokenIssuer};
use echo_core::channel::AppId;
use echo_core::clock::{Clock, SystemClock};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a handshake step may take.
const STEP: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("unexpected answer while {0}")]
    Handshake(&'static str),
    #[error("no answer while {0}")]
    Timeout(&'static str),
    #[error("token: {0}")]
    Token(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum System {
    /// The Echo edge.
    Echo,
    /// The socket.io server with the Redis adapter.
    Socketio,
    /// The raw broadcaster.
    Ceiling,
}

impl System {
    pub fn label(self) -> &'static str {
        match self {
            Self::Echo => "Echo",
            Self::Socketio => "socket.io + Redis",
            Self::Ceiling => "ceiling",
        }
    }
}

/// A running system to connect to.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub system: System,
    pub addr: SocketAddr,
    /// Echo's JWT secret, to make tokens.
    pub secret: Option<String>,
    pub app: String,
}

impl Endpoint {
    pub fn token(&self, sub: &str) -> Result<String, TargetError> {
        let secret = self.secret.as_deref().unwrap_or_default();
        let issuer =
            TokenIssuer::new(secret.as_bytes()).map_err(|e| TargetError::Token(e.to_string()))?;
        let app = AppId::new(self.app.clone()).map_err(|e| TargetError::Token(e.to_string()))?;
        issuer
            .issue(&Claims::new(app, sub, SystemClock.now_secs() + 3600))
            .map_err(|e| TargetError::Token(e.to_string()))
    }

    /// An admin token: the HTTP API takes only those.
    pub fn admin_token(&self, sub: &str) -> Result<String, TargetError> {
        let secret = self.secret.as_deref().unwrap_or_default();
        let issuer =
            TokenIssuer::new(secret.as_bytes()).map_err(|e| TargetError::Token(e.to_string()))?;
        let app = AppId::new(self.app.clone()).map_err(|e| TargetError::Token(e.to_string()))?;
        let claims = Claims::new(app, sub, SystemClock.now_secs() + 3600)
            .with_role(echo_core::auth::Role::Admin);
        issuer
            .issue(&claims)
            .map_err(|e| TargetError::Token(e.to_string()))
    }

    async fn open(&self, sub: &str, publisher: bool) -> Result<Ws, TargetError> {
        let url = match self.system {
            System::Echo => format!("ws://{}/?token={}", self.addr, self.token(sub)?),
            System::Socketio => format!(
                "ws://{}/socket.io/?EIO=4&transport=websocket&app={}&sub={sub}",
                self.addr, self.app
            ),
            System::Ceiling if publisher => format!("ws://{}/?role=pub", self.addr),
            System::Ceiling => format!("ws://{}/", self.addr),
        };
        let mut ws = tokio::time::timeout(STEP, connect(url))
            .await
            .map_err(|_| TargetError::Timeout("connecting"))??;
        if self.system == System::Socketio {
            // Engine.IO open packet, then connect to the main namespace.
            expect(&mut ws, "engine.io open", |t| t.starts_with('0')).await?;
            send(&mut ws, "40".to_owned()).await?;
            expect(&mut ws, "namespace connect", |t| t.starts_with("40")).await?;
        }
        Ok(ws)
    }

    /// A connection subscribed to `channel`, ready to read deliveries.
    pub async fn subscriber(&self, sub: &str, channel: &str) -> Result<Ws, TargetError> {
        let mut ws = self.open(sub, false).await?;
        match self.system {
            System::Echo => {
                send(
                    &mut ws,
                    json!({"action": "subscribe", "channel": channel}).to_string(),
                )
                .await?;
                expect(&mut ws, "subscribing", |t| {
                    t.contains("\"type\":\"subscribed\"")
                })
                .await?;
            }
            System::Socketio => {
                send(
                    &mut ws,
                    format!("420{}", json!(["subscribe", {"channel": channel}])),
                )
                .await?;
                expect(&mut ws, "subscribing", |t| t.starts_with("430")).await?;
            }
            System::Ceiling => {}
        }
        Ok(ws)
    }

    /// A publisher connection.
    pub async fn publisher(&self, sub: &str) -> Result<Ws, TargetError> {
        self.open(sub, true).await
    }
}

/// Bytes a generator connection reads at once. tungstenite zero-fills its read buffer up to this
/// size before every read, so the default (128 KiB) would make the generator's cost grow with
/// the number of reads rather than with what is read.
const READ_BUFFER: usize = 8 * 1024;

/// Loopback source addresses the generator's connections take in turn. A connection to a server
/// is one of the source address's ephemeral ports (about 28,000 on Linux), so from one address no
/// more than that could reach one server.
const SOURCES: u32 = 8;
static NEXT_SOURCE: AtomicU32 = AtomicU32::new(0);

/// Opens a WebSocket the way every generator connection does.
pub async fn connect(url: String) -> Result<Ws, TargetError> {
    let failed = |e: &dyn std::fmt::Display| TargetError::Connect(e.to_string());
    let request = url.as_str().into_client_request().map_err(|e| failed(&e))?;
    let host = request.uri().host().unwrap_or_default();
    let port = request.uri().port_u16().unwrap_or(80);
    let server: SocketAddr = format!("{host}:{port}").parse().map_err(|e| failed(&e))?;
    let tcp = open_tcp(server).await.map_err(|e| failed(&e))?;
    tcp.set_nodelay(true).map_err(|e| failed(&e))?;
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    tokio_tungstenite::client_async_with_config(request, MaybeTlsStream::Plain(tcp), Some(config))
        .await
        .map(|(ws, _)| ws)
        .map_err(|e| failed(&e))
}

/// A TCP connection to `server`; to 127.0.0.1, from the next of [`SOURCES`] loopback addresses
/// (from the system's choice where those are not usable, as on macOS by default).
async fn open_tcp(server: SocketAddr) -> std::io::Result<TcpStream> {
    if server.ip() != IpAddr::V4(Ipv4Addr::LOCALHOST) {
        return TcpStream::connect(server).await;
    }
    let n = NEXT_SOURCE.fetch_add(1, Ordering::Relaxed) % SOURCES;
    let source = SocketAddr::from((Ipv4Addr::new(127, 0, 0, 1 + n as u8), 0));
    let socket = TcpSocket::new_v4()?;
    // A socket bound this way, once closed, would otherwise keep its port from a server started
    // later (the suite's next system) while it waits out TIME_WAIT.
    socket.set_reuseaddr(true)?;
    if socket.bind(source).is_err() {
        return TcpStream::connect(server).await;
    }
    socket.connect(server).await
}

pub async fn send(ws: &mut Ws, text: String) -> Result<(), TargetError> {
    ws.send(Message::text(text))
        .await
        .map_err(|e| TargetError::Connect(e.to_string()))
}

/// Reads until a text frame satisfies `want` (answering Engine.IO pings on the way).
async fn expect(
    ws: &mut Ws,
    what: &'static str,
    want: impl Fn(&str) -> bool,
) -> Result<(), TargetError> {
    tokio::time::timeout(STEP, async {
        while let Some(m) = ws.next().await {
            match m {
                Ok(Message::Text(t)) if want(t.as_str()) => return Ok(()),
                Ok(Message::Text(t)) if t.as_str() == "2" => send(ws, "3".to_owned()).await?,
                Ok(Message::Text(t)) if t.contains("\"type\":\"error\"") || t.starts_with("44") => {
                    tracing::warn!(frame = %t.as_str(), "{what}");
                    return Err(TargetError::Handshake(what));
                }
                Ok(_) => {}
                Err(e) => return Err(TargetError::Connect(e.to_string())),
            }
        }
        Err(TargetError::Handshake(what))
    })
    .await
    .map_err(|_| TargetError::Timeout(what))?
}

/// The data every system's publishers send: about `size` bytes of JSON with the publish time.
pub fn data(size: usize, t_us: u64) -> serde_json::Value {
    let pad = size.saturating_sub(26).max(1);
    json!({"text": "x".repeat(pad), "t": t_us})
}
