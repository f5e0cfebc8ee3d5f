//! Client sockets, from accept to close: each holds a place in the edge's socket capacity for
//! as long as it is open, so that sockets which never become WebSockets cannot take the files
//! that clients and the management API need; and one that is not a WebSocket within the
//! handshake time (silent, drip-feeding its request, or an idle keep-alive after the demo page)
//! is closed.
//!
//! Past the capacity the oldest socket still in its handshake gives way to the new one: it is
//! closed and its place goes to the new socket, so that sockets which sit there without a
//! request (or an attacker who keeps opening them) cannot keep a real client, whose request comes
//! at once, out. Only when every place is held by a WebSocket is the new socket closed at once
//! (nothing has been read from it, so there is nobody to answer yet). WebSocket upgrades have a
//! capacity of their own, smaller, and get 503 with `Retry-After` past it ([`crate::upgrade`]).

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};
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
    /// Sockets accepted while in their handshake, oldest first (with some that have upgraded
    /// or closed since, passed over as they come to the front).
    pending: VecDeque<Weak<Handshake>>,
}

impl ClientListener {
    pub fn new(listener: TcpListener, sockets: Arc<Capacity>, handshake: Duration) -> Self {
        Self {
            listener,
            sockets,
            handshake,
            pending: VecDeque::new(),
        }
    }

    /// A place for a new socket: a free one, else the place of the oldest socket still in its
    /// handshake, which is closed.
    fn place(&mut self) -> Option<Slot> {
        if let Some(slot) = self.sockets.try_take() {
            return Some(slot);
        }
        while let Some(oldest) = self.pending.pop_front() {
            if let Some(slot) = oldest.upgrade().and_then(|h| h.give_way()) {
                tracing::debug!("a socket in its handshake gave way to a new one");
                return Some(slot);
            }
        }
        None
    }

    /// Forgets, from the front, sockets that upgraded or closed.
    fn prune(&mut self) {
        while self
            .pending
            .front()
            .is_some_and(|h| h.upgrade().is_none_or(|h| !h.waiting()))
        {
            self.pending.pop_front();
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
            self.prune();
            let Some(slot) = self.place() else {
                continue;
            };
            // Small frames go out at once: a delivery never waits for the previous one's ACK.
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
            let socket = ClientSocket::new(tcp, slot, self.handshake);
            self.pending.push_back(Arc::downgrade(&socket.state));
            return (socket, addr);
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// One client socket and its place in the capacity.
pub struct ClientSocket {
    tcp: TcpStream,
    /// Its place, and where it stands in its handshake; shared with the listener, which may take
    /// the place for a newer socket while this one is still in its handshake.
    state: Arc<Handshake>,
    /// When the socket is closed unless it became a WebSocket; dropped once it did.
    deadline: Option<Pin<Box<Sleep>>>,
}

/// Where a socket stands: in its handshake, a WebSocket, or given way to a newer socket.
struct Handshake {
    inner: Mutex<HandshakeState>,
}

struct HandshakeState {
    /// The socket's place in the capacity; `None` once it gave way.
    slot: Option<Slot>,
    upgraded: bool,
    /// The task reading the socket, to wake when it gives way.
    reader: Option<Waker>,
}

impl Handshake {
    fn lock(&self) -> MutexGuard<'_, HandshakeState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the socket is still in its handshake, holding its place.
    fn waiting(&self) -> bool {
        let s = self.lock();
        !s.upgraded && s.slot.is_some()
    }

    /// Gives this socket's place up, if it is still in its handshake, and wakes its reader,
    /// which closes it.
    fn give_way(&self) -> Option<Slot> {
        let mut s = self.lock();
        if s.upgraded {
            return None;
        }
        let slot = s.slot.take()?;
        if let Some(reader) = s.reader.take() {
            reader.wake();
        }
        Some(slot)
    }
}

impl ClientSocket {
    fn new(tcp: TcpStream, slot: Slot, handshake: Duration) -> Self {
        Self {
            tcp,
            state: Arc::new(Handshake {
                inner: Mutex::new(HandshakeState {
                    slot: Some(slot),
                    upgraded: false,
                    reader: None,
                }),
            }),
            deadline: Some(Box::pin(tokio::time::sleep(handshake))),
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
        if let Some(deadline) = &mut this.deadline {
            let mut state = this.state.lock();
            if state.slot.is_none() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "gave way to a newer socket while in its handshake",
                )));
            }
            if state.upgraded {
                drop(state);
                this.deadline = None;
            } else if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "not a WebSocket within the handshake time",
                )));
            } else {
                state.reader = Some(cx.waker().clone());
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
    socket: Weak<Handshake>,
}

impl std::fmt::Debug for Handshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handshake").finish_non_exhaustive()
    }
}

impl Peer {
    /// The socket is a WebSocket now: the handshake time no longer applies, and it no longer
    /// gives way to newer sockets.
    pub fn upgraded(&self) {
        if let Some(h) = self.socket.upgrade() {
            let mut s = h.lock();
            s.upgraded = true;
            s.reader = None;
        }
    }
}

impl Connected<IncomingStream<'_, ClientListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, ClientListener>) -> Self {
        Self {
            addr: *stream.remote_addr(),
            socket: Arc::downgrade(&stream.io().state),
        }
    }
}
