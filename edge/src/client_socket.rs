//! Client sockets, from accept to close: each holds a place in the edge's socket capacity for
//! as long as it is open, so that sockets which never become WebSockets cannot take the files
//! that clients and the management API need; and one that is not a WebSocket within the
//! handshake time (silent, drip-feeding its request, or an idle keep-alive after the demo page)
//! is closed.
//!
//! Past the capacity an accepted socket is closed at once: nothing has been read from it, so
//! there is nobody to answer yet. WebSocket upgrades have a capacity of their own, smaller, and
//! get 503 with `Retry-After` past it ([`crate::upgrade`]).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;

use crate::capacity::{Capacity, Slot};

/// The client port's listener.
pub struct ClientListener {
    listener: TcpListener,
    sockets: Arc<Capacity>,
    handshake: Duration,
}

impl ClientListener {
    pub fn new(listener: TcpListener, sockets: Arc<Capacity>, handshake: Duration) -> Self {
        Self {
            listener,
            sockets,
            handshake,
        }
    }
}

impl Listener for ClientListener {
    type Io = ClientSocket;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (ClientSocket, SocketAddr) {
        loop {
            let (tcp, addr) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of files or a connection reset before it was taken: the listener is
                    // fine, and trying again at once would spin.
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            };
            let Some(slot) = self.sockets.try_take() else {
                continue;
            };
            // Small frames go out at once: a delivery never waits for the previous one's ACK.
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
            return (ClientSocket::new(tcp, slot, self.handshake), addr);
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// One client socket and its place in the capacity.
pub struct ClientSocket {
    tcp: TcpStream,
    _slot: Slot,
    /// Until it is a WebSocket: whether the request said it is one, and when the socket is
    /// closed otherwise. Both dropped once it is, so that an idle WebSocket keeps neither.
    handshake: Option<Handshake>,
}

struct Handshake {
    upgraded: Arc<AtomicBool>,
    deadline: Pin<Box<Sleep>>,
}

impl ClientSocket {
    fn new(tcp: TcpStream, slot: Slot, handshake: Duration) -> Self {
        Self {
            tcp,
            _slot: slot,
            handshake: Some(Handshake {
                upgraded: Arc::new(AtomicBool::new(false)),
                deadline: Box::pin(tokio::time::sleep(handshake)),
            }),
        }
    }
}

impl AsyncRead for ClientSocket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(handshake) = &mut this.handshake {
            if handshake.upgraded.load(Ordering::Relaxed) {
                this.handshake = None;
            } else if handshake.deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "not a WebSocket within the handshake time",
                )));
            }
        }
        Pin::new(&mut this.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for ClientSocket {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}

/// What a request knows of its socket: the peer, and how to say the socket became a WebSocket.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    upgraded: Arc<AtomicBool>,
}

impl Peer {
    /// The socket is a WebSocket now: the handshake time no longer applies.
    pub fn upgraded(&self) {
        self.upgraded.store(true, Ordering::Relaxed);
    }
}

impl Connected<IncomingStream<'_, ClientListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, ClientListener>) -> Self {
        let upgraded = match &stream.io().handshake {
            Some(h) => h.upgraded.clone(),
            // Already a WebSocket: nothing to say.
            None => Arc::new(AtomicBool::new(true)),
        };
        Self {
            addr: *stream.remote_addr(),
            upgraded,
        }
    }
}
