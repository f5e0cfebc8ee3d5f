//! The task that owns the WebSocket: it sends the caller's requests, matches Echo's replies to
//! them, delivers messages in seq order, and reconnects.
//!
//! Replies are matched the way Echo produces them: acks and publish errors by message id; the
//! replies to subscribe, unsubscribe and history (and their errors) by channel, in the order the
//! requests were sent on that connection (Echo handles one connection's frames in order); pongs
//! in order.
//!
//! - this file: the task, its loop and how it stops.
//! - `requests`: the caller's requests, sent or queued.
//! - `replies`: Echo's frames matched to what waits for them.
//! - `delivery`: messages in seq order, gaps filled from history.
//! - `presence`: presence subscriptions' member lists, and join and leave events in seq order.
//! - `reconnect`: a lost connection and the next one.
//! - `renewal`: a replacement opened before the maximum age.
//! - `refresh`: a new token presented on the open connection ahead of the old one's expiry.
//! - `conn`: one WebSocket and the requests waiting on it.
//! - `socket`: opening the WebSocket.

use std::collections::{HashMap, VecDeque};

use futures_util::StreamExt;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

mod conn;
mod delivery;
mod presence;
mod reconnect;
mod refresh;
mod renewal;
mod replies;
mod requests;
mod socket;

use crate::error::Error;
use crate::events::{Event, State};
use crate::options::Options;
use crate::presence::PresenceList;
use crate::published::Published;
use crate::subscription::Subscription;
use crate::token::Token;
use crate::wire::{self, HistoryPage, ServerFrame};
use conn::{Conn, Waiter};
use delivery::Sub;
use socket::open;

pub(super) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
pub(super) type Reply<T> = oneshot::Sender<Result<T, Error>>;

pub(crate) enum Command {
    Subscribe {
        channel: String,
        since: Option<u64>,
        presence: bool,
        reply: Reply<Subscription>,
    },
    Presence {
        channel: String,
        reply: Reply<PresenceList>,
    },
    Unsubscribe {
        channel: String,
        reply: Reply<()>,
    },
    Publish {
        channel: String,
        data: Value,
        id: Option<String>,
        reply: Reply<Published>,
        /// When it was first sent, for a publish sent again after its connection was lost.
        first_sent: Option<Instant>,
    },
    History {
        channel: String,
        since: u64,
        limit: u32,
        reply: Reply<HistoryPage>,
    },
    Ping {
        reply: Reply<()>,
    },
    Close {
        reply: oneshot::Sender<()>,
    },
}

impl Command {
    fn fail(self, error: Error) {
        match self {
            Self::Subscribe { reply, .. } => drop(reply.send(Err(error))),
            Self::Unsubscribe { reply, .. } => drop(reply.send(Err(error))),
            Self::Publish { reply, .. } => drop(reply.send(Err(error))),
            Self::History { reply, .. } => drop(reply.send(Err(error))),
            Self::Presence { reply, .. } => drop(reply.send(Err(error))),
            Self::Ping { reply } => drop(reply.send(Err(error))),
            Self::Close { reply } => drop(reply.send(())),
        }
    }
}

pub(crate) struct Setup {
    pub(crate) url: String,
    pub(crate) token: Token,
    pub(crate) options: Options,
    pub(crate) state: watch::Sender<State>,
    pub(crate) events: broadcast::Sender<Event>,
    /// Keys of the channels this client encrypts: what it hands over is decrypted.
    pub(crate) ciphers: crate::e2e::Ciphers,
}

/// Opens the first connection, then runs the connection task in the background.
pub(crate) async fn start(setup: Setup, commands: mpsc::Receiver<Command>) -> Result<(), Error> {
    let (ws, exp) = open(&setup.url, &setup.token, setup.options.connect_timeout).await?;
    let mut task = Task {
        setup,
        commands,
        conn: None,
        draining: None,
        drain_until: Instant::now(),
        subs: HashMap::new(),
        queued: VecDeque::new(),
        dropped: (None, String::new()),
        session_ended: false,
    };
    task.install(ws, exp, false).await;
    tokio::spawn(task.run());
    Ok(())
}

/// Which connection a frame came from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Current,
    /// The connection being replaced; read until its replies are in.
    Draining,
}

pub(super) struct Task {
    setup: Setup,
    commands: mpsc::Receiver<Command>,
    conn: Option<Conn>,
    draining: Option<Conn>,
    drain_until: Instant,
    subs: HashMap<String, Sub>,
    /// Requests made while disconnected, sent once connected.
    queued: VecDeque<Command>,
    /// Why the current connection was lost: close code and reason, for the reconnect events.
    dropped: (Option<u16>, String),
    /// Echo said the app ended this user's sessions: the close that follows ends the client,
    /// whatever its code (API Gateway's carries none).
    session_ended: bool,
}

async fn next(conn: &mut Option<Conn>) -> Option<Result<WsMessage, tungstenite::Error>> {
    match conn {
        Some(c) => c.ws.next().await,
        None => std::future::pending().await,
    }
}

impl Task {
    async fn run(mut self) {
        loop {
            let Some(conn) = &self.conn else {
                if self.reconnect().await {
                    continue;
                }
                return;
            };
            let ping_at = conn.last_sent + self.setup.options.ping_interval;
            let renew_at = conn.renew_at;
            let refresh_at = conn.refresh_at;
            let hold_at = self.hold_deadline();
            let draining = self.draining.is_some();
            let drain_until = self.drain_until;
            let running = tokio::select! {
                command = self.commands.recv() => match command {
                    Some(command) => self.command(command).await,
                    None => {
                        self.close().await;
                        false
                    }
                },
                item = next(&mut self.conn) => self.socket(Which::Current, item).await,
                item = next(&mut self.draining) => self.socket(Which::Draining, item).await,
                () = sleep_until(ping_at) => {
                    if let Some(conn) = &mut self.conn {
                        conn.pings.push_back(None);
                        conn.send(wire::ping()).await;
                    }
                    true
                }
                () = sleep_until(renew_at) => {
                    self.renew().await;
                    true
                }
                () = sleep_until(refresh_at.unwrap_or(renew_at)), if refresh_at.is_some() => {
                    self.refresh().await;
                    true
                }
                () = sleep_until(hold_at.unwrap_or(renew_at)), if hold_at.is_some() => {
                    self.holds_expired().await;
                    true
                }
                () = sleep_until(drain_until), if draining => {
                    self.stop_draining().await;
                    true
                }
            };
            if !running {
                return;
            }
        }
    }

    fn emit(&self, event: Event) {
        let _ = self.setup.events.send(event);
    }

    fn conn_mut(&mut self, which: Which) -> Option<&mut Conn> {
        match which {
            Which::Current => self.conn.as_mut(),
            Which::Draining => self.draining.as_mut(),
        }
    }

    /// Makes `ws` the current connection, renews the subscriptions on it and sends what waited.
    /// `exp` is its token's expiry, when known: a refresh is planned ahead of it.
    async fn install(&mut self, ws: Ws, exp: Option<u64>, planned: bool) {
        let mut conn = Conn::new(ws, self.setup.options.renew_after);
        if self.setup.token.renewable() {
            conn.refresh_at = exp.map(refresh::ahead_of);
        }
        for (channel, sub) in &self.subs {
            conn.wait(channel, Waiter::Resubscribe);
            conn.send(wire::subscribe(
                channel,
                Some(sub.last_seq),
                sub.presence.is_some(),
            ))
            .await;
        }
        if let Some(old) = self.conn.replace(conn) {
            if let Some(older) = self.draining.replace(old) {
                self.requeue(older.abandon(&Error::Disconnected, self.setup.options.resend_within));
            }
            self.drain_until = Instant::now() + self.setup.options.request_timeout;
        }
        self.setup.state.send_replace(State::Open);
        self.emit(Event::Open { planned });
        self.flush().await;
    }

    fn requeue(&mut self, commands: Vec<Command>) {
        for command in commands.into_iter().rev() {
            self.queued.push_front(command);
        }
    }

    /// Handles what a socket yielded; false when the client stops.
    async fn socket(
        &mut self,
        which: Which,
        item: Option<Result<WsMessage, tungstenite::Error>>,
    ) -> bool {
        let running = match item {
            Some(Ok(WsMessage::Text(text))) => {
                match serde_json::from_str::<ServerFrame>(text.as_str()) {
                    Ok(frame) => self.frame(which, frame).await,
                    Err(e) => {
                        tracing::warn!(error = %e, frame = %text.as_str(), "unreadable frame")
                    }
                }
                self.maybe_finish_draining().await;
                return true;
            }
            Some(Ok(WsMessage::Close(frame))) => {
                let (code, reason) = match frame {
                    Some(f) => (Some(u16::from(f.code)), f.reason.as_str().to_owned()),
                    None => (None, "closed without a code".to_owned()),
                };
                self.lost(which, code, reason)
            }
            Some(Ok(_)) => return true,
            Some(Err(e)) => self.lost(which, None, e.to_string()),
            None => self.lost(which, None, "the connection ended".to_owned()),
        };
        if running {
            self.flush().await;
        }
        running
    }

    /// The caller closes the client.
    async fn close(&mut self) {
        for conn in [self.conn.as_mut(), self.draining.as_mut()]
            .into_iter()
            .flatten()
        {
            let _ = conn.ws.close(Some(normal_close())).await;
        }
        self.stop(Some(1000), "closed by the client");
    }

    /// Stops for good: every waiting request fails with `Closed`, subscriptions end.
    fn stop(&mut self, code: Option<u16>, reason: &str) {
        for conn in [self.conn.take(), self.draining.take()]
            .into_iter()
            .flatten()
        {
            for command in conn.abandon(&Error::Closed, std::time::Duration::ZERO) {
                command.fail(Error::Closed);
            }
        }
        for command in self.queued.drain(..) {
            command.fail(Error::Closed);
        }
        self.subs.clear();
        self.setup.state.send_replace(State::Closed);
        self.emit(Event::Closed {
            code,
            reason: reason.to_owned(),
        });
    }
}

pub(super) fn normal_close() -> CloseFrame {
    CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }
}
