//! The ceiling: the least a WebSocket broadcaster can do, on the same transport crates as the
//! edge (axum's WebSockets over tokio-tungstenite). No auth, no routing, no middleware, no
//! storage: every text frame a publisher sends is written to every subscriber.
//!
//! `ceiling --port P`; clients connect to `/` (subscribers) or `/?role=pub` (publishers, which
//! get a one-byte `a` back per frame once it is queued for every subscriber, so that they can
//! pace themselves as Echo's publishers do on acks). Prints `ceiling listening on P` when ready.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::serve::ListenerExt;
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Frames queued per subscriber before it is dropped.
    #[arg(long, default_value_t = 4096)]
    queue: usize,
}

#[derive(Default)]
struct Hub {
    next: AtomicU64,
    subscribers: Mutex<HashMap<u64, mpsc::Sender<Message>>>,
    queue: usize,
}

#[derive(serde::Deserialize)]
struct Role {
    role: Option<String>,
}

async fn upgrade(
    ws: WebSocketUpgrade,
    Query(role): Query<Role>,
    State(hub): State<Arc<Hub>>,
) -> Response {
    let publisher = role.role.as_deref() == Some("pub");
    // The same buffer sizes as the edge.
    ws.read_buffer_size(512)
        .write_buffer_size(64 * 1024)
        .on_upgrade(move |socket| serve(socket, hub, publisher))
}

async fn serve(socket: WebSocket, hub: Arc<Hub>, publisher: bool) {
    let (mut sink, mut stream) = socket.split();
    let id = hub.next.fetch_add(1, Ordering::Relaxed);
    let (tx, mut rx) = mpsc::channel::<Message>(hub.queue);
    if !publisher && let Ok(mut subs) = hub.subscribers.lock() {
        subs.insert(id, tx.clone());
    }
    let writer = tokio::spawn(async move {
        // Write what is queued, flushing once the queue is empty.
        while let Some(m) = rx.recv().await {
            if sink.feed(m).await.is_err() {
                return;
            }
            while let Ok(m) = rx.try_recv() {
                if sink.feed(m).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    while let Some(Ok(message)) = stream.next().await {
        if let Message::Text(text) = message {
            let targets: Vec<mpsc::Sender<Message>> = match hub.subscribers.lock() {
                Ok(subs) => subs.values().cloned().collect(),
                Err(_) => break,
            };
            for t in targets {
                // Utf8Bytes clones share the buffer: the frame is built once.
                let _ = t.try_send(Message::Text(text.clone()));
            }
            if publisher {
                let _ = tx.send(Message::Text("a".into())).await;
            }
        }
    }
    if let Ok(mut subs) = hub.subscribers.lock() {
        subs.remove(&id);
    }
    writer.abort();
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let hub = Arc::new(Hub {
        queue: args.queue,
        ..Hub::default()
    });
    let app = Router::new().route("/", get(upgrade)).with_state(hub);
    let listener =
        tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], args.port))).await?;
    println!("ceiling listening on {}", listener.local_addr()?.port());
    // As the edge: small frames go out at once.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await
}
