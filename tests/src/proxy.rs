//! A TCP proxy that tests cut to simulate a network failure between a client and the edge.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Forwards `127.0.0.1:<addr>` to a target until severed.
pub struct Proxy {
    pub addr: SocketAddr,
    open: Arc<AtomicBool>,
    /// What the target sends is dropped while set (an answer lost on the way).
    muted: Arc<AtomicBool>,
    cuts: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(true));
        let muted = Arc::new(AtomicBool::new(false));
        let (cuts, _) = watch::channel(0u64);
        let task = tokio::spawn({
            let open = open.clone();
            let muted = muted.clone();
            let cuts = cuts.clone();
            async move {
                while let Ok((inbound, _)) = listener.accept().await {
                    if !open.load(Ordering::SeqCst) {
                        // Refused: closed before the WebSocket handshake.
                        drop(inbound);
                        continue;
                    }
                    let mut cut = cuts.subscribe();
                    let muted = muted.clone();
                    tokio::spawn(async move {
                        let Ok(outbound) = TcpStream::connect(target).await else {
                            return;
                        };
                        tokio::select! {
                            () = forward(inbound, outbound, &muted) => {}
                            _ = cut.changed() => {}
                        }
                    });
                }
            }
        });
        Self {
            addr,
            open,
            muted,
            cuts,
            task,
        }
    }

    /// Drops every forwarded connection (without a WebSocket close) and refuses new ones.
    /// Drops everything the target sends from now until [`Proxy::sever`].
    pub fn mute(&self) {
        self.muted.store(true, Ordering::SeqCst);
    }

    pub fn sever(&self) {
        self.muted.store(false, Ordering::SeqCst);
        self.open.store(false, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

/// Copies both ways until both sides have finished; what `target` sends is dropped while
/// `muted`.
async fn forward(client: TcpStream, target: TcpStream, muted: &AtomicBool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_target, mut to_target) = target.into_split();
    let up = async {
        let _ = tokio::io::copy(&mut from_client, &mut to_target).await;
        let _ = to_target.shutdown().await;
    };
    let down = async {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n @ 1..) = from_target.read(&mut buf).await {
            if !muted.load(Ordering::SeqCst) && to_client.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = to_client.shutdown().await;
    };
    tokio::join!(up, down);
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
