//! The task that owns the WebSocket: it sends the caller's requests, matches Echo's replies to
//! them, delivers messages in seq order, and reconnects.
//!
//! Replies are matched the way Echo produces them: acks and publish errors by message id; the
//! replies to subscribe, unsubscribe and history (and their errors) by channel, in the order the
//! requests were sent on that connection (Echo handles one connection's frames in order); pongs
//! in order.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::wire::{self, ServerFrame};
use crate::{Error, Event, Message, Options, Published, State, Subscription, Token};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Reply<T> = oneshot::Sender<Result<T, Error>>;

/// The most messages one history request returns, as Echo caps it.
const HISTORY_PAGE: u32 = 1000;

pub(crate) enum Command {
    Subscribe {
        channel: String,
        since: Option<u64>,
        reply: Reply<Subscription>,
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
    },
    History {
        channel: String,
        since: u64,
        limit: u32,
        reply: Reply<Vec<Message>>,
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
            Self::Ping { reply } => drop(reply.send(Err(error))),
            Self::Close { reply } => drop(reply.send(())),
        }
    }
}

/// A request waiting for a reply addressed by channel.
enum Waiter {
    Subscribe {
        since: Option<u64>,
        reply: Reply<Subscription>,
    },
    /// A subscription renewed on a new connection.
    Resubscribe,
    Unsubscribe {
        reply: Option<Reply<()>>,
    },
    History {
        since: u64,
        limit: u32,
        reply: Reply<Vec<Message>>,
    },
    /// A history page read to fill a gap in a subscription.
    Fill,
}

/// One WebSocket and what is waiting for replies on it.
struct Conn {
    ws: Ws,
    last_sent: Instant,
    renew_at: Instant,
    waiters: HashMap<String, VecDeque<Waiter>>,
    pings: VecDeque<Option<Reply<()>>>,
    publishes: HashMap<String, Reply<Published>>,
}

impl Conn {
    fn new(ws: Ws, renew_after: Duration) -> Self {
        let now = Instant::now();
        Self {
            ws,
            last_sent: now,
            renew_at: now + renew_after,
            waiters: HashMap::new(),
            pings: VecDeque::new(),
            publishes: HashMap::new(),
        }
    }

    async fn send(&mut self, text: String) {
        self.last_sent = Instant::now();
        if let Err(e) = self.ws.send(WsMessage::text(text)).await {
            // The read side sees the failure and reconnects.
            tracing::debug!(error = %e, "send failed");
        }
    }

    fn wait(&mut self, channel: &str, waiter: Waiter) {
        self.waiters
            .entry(channel.to_owned())
            .or_default()
            .push_back(waiter);
    }

    fn pop(&mut self, channel: &str) -> Option<Waiter> {
        let queue = self.waiters.get_mut(channel)?;
        let waiter = queue.pop_front();
        if queue.is_empty() {
            self.waiters.remove(channel);
        }
        waiter
    }

    fn idle(&self) -> bool {
        self.waiters.is_empty() && self.pings.is_empty() && self.publishes.is_empty()
    }

    fn resubscribing(&self) -> bool {
        self.waiters
            .values()
            .flatten()
            .any(|w| matches!(w, Waiter::Resubscribe))
    }

    /// Fails what cannot be retried and gives back, as commands, what can.
    fn abandon(self, error: &Error) -> Vec<Command> {
        for (_, reply) in self.publishes {
            let _ = reply.send(Err(error.clone()));
        }
        for reply in self.pings.into_iter().flatten() {
            let _ = reply.send(Err(error.clone()));
        }
        let mut retry = Vec::new();
        for (channel, waiters) in self.waiters {
            for waiter in waiters {
                match waiter {
                    Waiter::Subscribe { since, reply } => retry.push(Command::Subscribe {
                        channel: channel.clone(),
                        since,
                        reply,
                    }),
                    Waiter::History {
                        since,
                        limit,
                        reply,
                    } => retry.push(Command::History {
                        channel: channel.clone(),
                        since,
                        limit,
                        reply,
                    }),
                    // Unsubscribing is done locally; the server forgets with the connection.
                    Waiter::Unsubscribe { reply } => {
                        if let Some(reply) = reply {
                            let _ = reply.send(Ok(()));
                        }
                    }
                    Waiter::Resubscribe | Waiter::Fill => {}
                }
            }
        }
        retry
    }
}

/// A subscription as the connection task keeps it.
struct Sub {
    messages: mpsc::Sender<Message>,
    /// The last seq delivered: anything at or below it is a duplicate, anything beyond `+ 1` a gap.
    last_seq: u64,
    /// The highest seq known to exist (from `subscribed` and from messages): a replay capped at
    /// a page leaves the rest to read from history.
    latest: u64,
    /// While a gap is being filled from history, messages that arrived after it.
    filling: Option<BTreeMap<u64, Message>>,
}

pub(crate) struct Setup {
    pub(crate) url: String,
    pub(crate) token: Token,
    pub(crate) options: Options,
    pub(crate) state: watch::Sender<State>,
    pub(crate) events: broadcast::Sender<Event>,
}

/// Opens the first connection, then runs the connection task in the background.
pub(crate) async fn start(setup: Setup, commands: mpsc::Receiver<Command>) -> Result<(), Error> {
    let ws = open(&setup.url, &setup.token, setup.options.connect_timeout).await?;
    let mut task = Task {
        setup,
        commands,
        conn: None,
        draining: None,
        drain_until: Instant::now(),
        subs: HashMap::new(),
        queued: VecDeque::new(),
        next_id: 0,
        dropped: (None, String::new()),
    };
    task.install(ws, false).await;
    tokio::spawn(task.run());
    Ok(())
}

async fn open(url: &str, token: &Token, timeout: Duration) -> Result<Ws, Error> {
    let url = crate::url_with_token(url, &token.get().await?);
    match tokio::time::timeout(timeout, connect(url)).await {
        Err(_) => Err(Error::Connect(format!("no answer within {timeout:?}"))),
        Ok(Err(tungstenite::Error::Http(response))) if response.status() == 401 => {
            Err(Error::Unauthorized)
        }
        Ok(Err(e)) => Err(Error::Connect(e.to_string())),
        Ok(Ok(ws)) => Ok(ws),
    }
}

/// Bytes read from the socket at once. tungstenite zero-fills its read buffer up to this size
/// before every read; its default, 128 KiB, costs more than the read itself when a read brings a
/// few small frames.
const READ_BUFFER: usize = 16 * 1024;

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(READ_BUFFER)
}

#[cfg(feature = "tls")]
async fn connect(url: String) -> Result<Ws, tungstenite::Error> {
    let connector = if url.starts_with("wss:") {
        Some(tokio_tungstenite::Connector::Rustls(tls_config()?))
    } else {
        None
    };
    let (ws, _) =
        tokio_tungstenite::connect_async_tls_with_config(url, Some(ws_config()), true, connector)
            .await?;
    Ok(ws)
}

#[cfg(not(feature = "tls"))]
async fn connect(url: String) -> Result<Ws, tungstenite::Error> {
    let (ws, _) =
        tokio_tungstenite::connect_async_with_config(url, Some(ws_config()), true).await?;
    Ok(ws)
}

/// TLS with the platform's root certificates and the `ring` provider, chosen explicitly so that
/// other crates' rustls providers in the same program do not make the choice ambiguous.
#[cfg(feature = "tls")]
fn tls_config() -> Result<std::sync::Arc<rustls::ClientConfig>, tungstenite::Error> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(tungstenite::Error::Io(std::io::Error::other(
            "no root certificates found on this system",
        )));
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| tungstenite::Error::Io(std::io::Error::other(e)))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(std::sync::Arc::new(config))
}

/// Which connection a frame came from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Current,
    /// The connection being replaced; read until its replies are in.
    Draining,
}

struct Task {
    setup: Setup,
    commands: mpsc::Receiver<Command>,
    conn: Option<Conn>,
    draining: Option<Conn>,
    drain_until: Instant,
    subs: HashMap<String, Sub>,
    /// Requests made while disconnected, sent once connected.
    queued: VecDeque<Command>,
    next_id: u64,
    /// Why the current connection was lost: close code and reason, for the reconnect events.
    dropped: (Option<u16>, String),
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
    async fn install(&mut self, ws: Ws, planned: bool) {
        let mut conn = Conn::new(ws, self.setup.options.renew_after);
        for (channel, sub) in &self.subs {
            conn.wait(channel, Waiter::Resubscribe);
            conn.send(wire::subscribe(channel, Some(sub.last_seq)))
                .await;
        }
        if let Some(old) = self.conn.replace(conn) {
            if let Some(older) = self.draining.replace(old) {
                self.requeue(older.abandon(&Error::Disconnected));
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

    /// Waits (handling requests) and retries until connected; false when the client stops.
    async fn reconnect(&mut self) -> bool {
        let options = self.setup.options.clone();
        let (mut code, mut reason) = std::mem::take(&mut self.dropped);
        for attempt in 1u32.. {
            let exp = options
                .backoff_base
                .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
            let cap = exp.min(options.backoff_max);
            let delay = Duration::from_millis(
                rand::rng().random_range(0..=u64::try_from(cap.as_millis()).unwrap_or(u64::MAX)),
            );
            self.setup.state.send_replace(State::Reconnecting);
            self.emit(Event::Reconnecting {
                attempt,
                delay,
                code,
                reason: reason.clone(),
            });
            let deadline = Instant::now() + delay;
            loop {
                tokio::select! {
                    () = sleep_until(deadline) => break,
                    command = self.commands.recv() => match command {
                        None => {
                            self.stop(None, "the client was dropped");
                            return false;
                        }
                        Some(Command::Close { reply }) => {
                            self.stop(Some(1000), "closed by the client");
                            let _ = reply.send(());
                            return false;
                        }
                        Some(command) => self.enqueue(command),
                    }
                }
            }
            match open(&self.setup.url, &self.setup.token, options.connect_timeout).await {
                Ok(ws) => {
                    self.install(ws, false).await;
                    return true;
                }
                Err(Error::Unauthorized) if matches!(self.setup.token, Token::Static(_)) => {
                    // A fixed token that is refused will not be accepted later.
                    self.stop(None, "the token was refused (HTTP 401)");
                    return false;
                }
                Err(e) => {
                    code = None;
                    reason = e.to_string();
                }
            }
        }
        false
    }

    /// Keeps a request made while disconnected.
    fn enqueue(&mut self, command: Command) {
        match command {
            Command::Publish { reply, .. }
                if self
                    .queued
                    .iter()
                    .filter(|c| matches!(c, Command::Publish { .. }))
                    .count()
                    >= self.setup.options.publish_queue =>
            {
                let _ = reply.send(Err(Error::QueueFull(self.setup.options.publish_queue)));
            }
            Command::Subscribe { channel, reply, .. } if self.subscribed(&channel) => {
                let _ = reply.send(Err(Error::AlreadySubscribed(channel)));
            }
            Command::Unsubscribe { channel, reply } => {
                self.subs.remove(&channel);
                let _ = reply.send(Ok(()));
            }
            command => self.queued.push_back(command),
        }
    }

    fn subscribed(&self, channel: &str) -> bool {
        self.subs.contains_key(channel)
            || self.queued.iter().any(
                |c| matches!(c, Command::Subscribe { channel: queued, .. } if queued == channel),
            )
            || self.conn.as_ref().is_some_and(|c| {
                c.waiters
                    .get(channel)
                    .is_some_and(|w| w.iter().any(|w| matches!(w, Waiter::Subscribe { .. })))
            })
    }

    /// Handles a caller's request; false when the client stops.
    async fn command(&mut self, command: Command) -> bool {
        if let Command::Close { reply } = command {
            self.close().await;
            let _ = reply.send(());
            return false;
        }
        if self.conn.is_none() {
            self.enqueue(command);
            return true;
        }
        match command {
            Command::Subscribe {
                channel,
                since,
                reply,
            } => {
                if self.subscribed(&channel) {
                    let _ = reply.send(Err(Error::AlreadySubscribed(channel)));
                } else if let Some(conn) = &mut self.conn {
                    conn.wait(&channel, Waiter::Subscribe { since, reply });
                    conn.send(wire::subscribe(&channel, since)).await;
                }
            }
            Command::Unsubscribe { channel, reply } => {
                if self.subs.remove(&channel).is_none() {
                    let _ = reply.send(Ok(()));
                } else if let Some(conn) = &mut self.conn {
                    conn.wait(&channel, Waiter::Unsubscribe { reply: Some(reply) });
                    conn.send(wire::unsubscribe(&channel)).await;
                }
            }
            Command::Publish {
                channel,
                data,
                id,
                reply,
            } => {
                let id = id.unwrap_or_else(|| {
                    self.next_id += 1;
                    format!("r{}", self.next_id)
                });
                let frame = wire::publish(&channel, &data, &id);
                let max = self.setup.options.max_message_bytes;
                if frame.len() > max {
                    let _ = reply.send(Err(Error::TooLarge {
                        size: frame.len(),
                        max,
                    }));
                } else if let Some(conn) = &mut self.conn {
                    match conn.publishes.entry(id) {
                        Entry::Occupied(e) => {
                            let _ = reply.send(Err(Error::Encode(format!(
                                "a publish with id {:?} is already waiting for its ack",
                                e.key()
                            ))));
                        }
                        Entry::Vacant(e) => {
                            e.insert(reply);
                            conn.send(frame).await;
                        }
                    }
                }
            }
            Command::History {
                channel,
                since,
                limit,
                reply,
            } => {
                if let Some(conn) = &mut self.conn {
                    conn.wait(
                        &channel,
                        Waiter::History {
                            since,
                            limit,
                            reply,
                        },
                    );
                    conn.send(wire::history(&channel, since, limit)).await;
                }
            }
            Command::Ping { reply } => {
                if let Some(conn) = &mut self.conn {
                    conn.pings.push_back(Some(reply));
                    conn.send(wire::ping()).await;
                }
            }
            Command::Close { .. } => {}
        }
        true
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

    /// Sends the requests that waited, if connected.
    async fn flush(&mut self) {
        while self.conn.is_some()
            && let Some(command) = self.queued.pop_front()
        {
            self.command(command).await;
        }
    }

    /// A connection ended without the caller asking; false when the client stops.
    fn lost(&mut self, which: Which, code: Option<u16>, reason: String) -> bool {
        let conn = match which {
            Which::Current => self.conn.take(),
            Which::Draining => self.draining.take(),
        };
        if let Some(conn) = conn {
            let retry = conn.abandon(&Error::Disconnected);
            self.requeue(retry);
        }
        if which == Which::Draining {
            return true;
        }
        if let Some(draining) = self.draining.take() {
            let retry = draining.abandon(&Error::Disconnected);
            self.requeue(retry);
        }
        // Gap fills were asked on the lost connection; the resubscribe replays from last_seq.
        for sub in self.subs.values_mut() {
            sub.filling = None;
        }
        tracing::debug!(?code, %reason, "connection lost");
        if code.is_some_and(|c| !wire::reconnects_after(c)) {
            self.stop(code, "closed by Echo, not to be reconnected");
            return false;
        }
        self.dropped = (code, reason);
        true
    }

    async fn frame(&mut self, which: Which, frame: ServerFrame) {
        match frame {
            ServerFrame::Message(message) => self.deliver(message).await,
            ServerFrame::Subscribed { channel, seq } => {
                match self.conn_mut(which).and_then(|c| c.pop(&channel)) {
                    Some(Waiter::Subscribe { since, reply }) => {
                        let (tx, rx) = mpsc::channel(self.setup.options.subscription_buffer.max(1));
                        self.subs.insert(
                            channel.clone(),
                            Sub {
                                messages: tx,
                                last_seq: since.map_or(seq, |s| s.min(seq)),
                                latest: seq,
                                filling: None,
                            },
                        );
                        let _ = reply.send(Ok(Subscription {
                            channel: channel.clone(),
                            seq,
                            messages: rx,
                        }));
                    }
                    Some(Waiter::Resubscribe) | None => {}
                    Some(other) => {
                        self.unexpected(which, &channel, other, "subscribed");
                        return;
                    }
                }
                self.caught_up(&channel, seq).await;
            }
            ServerFrame::Unsubscribed { channel } => {
                match self.conn_mut(which).and_then(|c| c.pop(&channel)) {
                    Some(Waiter::Unsubscribe { reply: Some(reply) }) => {
                        let _ = reply.send(Ok(()));
                    }
                    Some(Waiter::Unsubscribe { reply: None }) | None => {}
                    Some(other) => self.unexpected(which, &channel, other, "unsubscribed"),
                }
            }
            ServerFrame::Ack {
                id,
                seq,
                dropped,
                reason,
            } => {
                if let Some(reply) = self.conn_mut(which).and_then(|c| c.publishes.remove(&id)) {
                    let _ = reply.send(Ok(if dropped {
                        Published::Dropped { reason }
                    } else {
                        Published::Stored {
                            seq: seq.unwrap_or_default(),
                        }
                    }));
                }
            }
            ServerFrame::History { channel, messages } => {
                match self.conn_mut(which).and_then(|c| c.pop(&channel)) {
                    Some(Waiter::History { reply, .. }) => {
                        let _ = reply.send(Ok(messages));
                    }
                    Some(Waiter::Fill) => self.filled(&channel, messages).await,
                    None => {}
                    Some(other) => self.unexpected(which, &channel, other, "history"),
                }
            }
            ServerFrame::Pong => {
                if let Some(Some(reply)) = self.conn_mut(which).and_then(|c| c.pings.pop_front()) {
                    let _ = reply.send(Ok(()));
                }
            }
            ServerFrame::Error {
                code,
                message,
                id,
                channel,
            } => {
                let error = Error::Server { code, message };
                if let Some(reply) = id
                    .as_ref()
                    .and_then(|id| self.conn_mut(which)?.publishes.remove(id))
                {
                    let _ = reply.send(Err(error));
                    return;
                }
                let Some(channel) = channel else {
                    self.emit(Event::Error {
                        channel: None,
                        error,
                    });
                    return;
                };
                match self.conn_mut(which).and_then(|c| c.pop(&channel)) {
                    Some(Waiter::Subscribe { reply, .. }) => drop(reply.send(Err(error))),
                    Some(Waiter::History { reply, .. }) => drop(reply.send(Err(error))),
                    Some(Waiter::Unsubscribe { reply: Some(reply) }) => {
                        drop(reply.send(Err(error)));
                    }
                    Some(Waiter::Resubscribe) => {
                        // The subscription cannot be renewed (permissions changed): it ends.
                        self.subs.remove(&channel);
                        self.emit(Event::Error {
                            channel: Some(channel),
                            error,
                        });
                    }
                    Some(Waiter::Fill) => {
                        self.emit(Event::Error {
                            channel: Some(channel.clone()),
                            error,
                        });
                        self.filled(&channel, Vec::new()).await;
                    }
                    Some(Waiter::Unsubscribe { reply: None }) | None => self.emit(Event::Error {
                        channel: Some(channel),
                        error,
                    }),
                }
            }
        }
    }

    fn unexpected(&mut self, which: Which, channel: &str, waiter: Waiter, got: &str) {
        tracing::warn!(channel, got, "reply out of order");
        if let Some(conn) = self.conn_mut(which) {
            conn.waiters
                .entry(channel.to_owned())
                .or_default()
                .push_front(waiter);
        }
    }

    /// Echo said `seq` is the channel's latest: when that is beyond what a replay carries, read
    /// the rest from history.
    async fn caught_up(&mut self, channel: &str, seq: u64) {
        let Some(sub) = self.subs.get_mut(channel) else {
            return;
        };
        sub.latest = sub.latest.max(seq);
        if sub.filling.is_none() && seq > sub.last_seq + u64::from(HISTORY_PAGE) {
            // The replay that follows lands in the buffer; the page read covers it too, so it
            // does not matter which arrives first.
            sub.filling = Some(BTreeMap::new());
            let since = sub.last_seq;
            self.fill(channel, since).await;
        }
    }

    async fn fill(&mut self, channel: &str, since: u64) {
        if let Some(conn) = &mut self.conn {
            conn.wait(channel, Waiter::Fill);
            conn.send(wire::history(channel, since, HISTORY_PAGE)).await;
        }
    }

    /// Delivers `message` to its subscription in seq order, once.
    async fn deliver(&mut self, message: Message) {
        let channel = message.channel.clone();
        let Some(sub) = self.subs.get_mut(&channel) else {
            return;
        };
        sub.latest = sub.latest.max(message.seq);
        if message.seq <= sub.last_seq {
            return;
        }
        if let Some(waiting) = &mut sub.filling {
            waiting.insert(message.seq, message);
            return;
        }
        if message.seq > sub.last_seq + 1 {
            let since = sub.last_seq;
            sub.filling = Some(BTreeMap::from([(message.seq, message)]));
            self.fill(&channel, since).await;
            return;
        }
        sub.last_seq = message.seq;
        if sub.messages.send(message).await.is_err() {
            self.forget(&channel).await;
        }
    }

    /// A history page for a gap arrived: deliver what is now contiguous; ask for the next page,
    /// or report what history no longer has.
    async fn filled(&mut self, channel: &str, page: Vec<Message>) {
        let Some(sub) = self.subs.get_mut(channel) else {
            return;
        };
        let Some(mut waiting) = sub.filling.take() else {
            return;
        };
        let more = page.len() >= HISTORY_PAGE as usize;
        for m in page {
            if m.seq > sub.last_seq {
                sub.latest = sub.latest.max(m.seq);
                waiting.insert(m.seq, m);
            }
        }
        let mut ready = Vec::new();
        let mut gaps = Vec::new();
        while let Some(entry) = waiting.first_entry() {
            let seq = *entry.key();
            if seq <= sub.last_seq {
                entry.remove();
                continue;
            }
            if seq > sub.last_seq + 1 {
                if more {
                    break;
                }
                gaps.push((sub.last_seq + 1, seq - 1));
            }
            ready.push(entry.remove());
            sub.last_seq = seq;
        }
        if waiting.is_empty() && sub.last_seq < sub.latest && !more {
            // History no longer has the end of the gap.
            gaps.push((sub.last_seq + 1, sub.latest));
            sub.last_seq = sub.latest;
        }
        let since = sub.last_seq;
        let still_filling = !waiting.is_empty() || sub.last_seq < sub.latest;
        if still_filling {
            sub.filling = Some(waiting);
        }
        let messages = sub.messages.clone();
        for (from, to) in gaps {
            self.emit(Event::Gap {
                channel: channel.to_owned(),
                from,
                to,
            });
        }
        for m in ready {
            if messages.send(m).await.is_err() {
                self.forget(channel).await;
                return;
            }
        }
        if still_filling {
            self.fill(channel, since).await;
        }
    }

    /// The caller dropped the subscription: unsubscribe.
    async fn forget(&mut self, channel: &str) {
        self.subs.remove(channel);
        if let Some(conn) = &mut self.conn {
            conn.wait(channel, Waiter::Unsubscribe { reply: None });
            conn.send(wire::unsubscribe(channel)).await;
        }
    }

    /// Opens a replacement before the connection reaches its maximum age.
    async fn renew(&mut self) {
        match open(
            &self.setup.url,
            &self.setup.token,
            self.setup.options.connect_timeout,
        )
        .await
        {
            Ok(ws) => self.install(ws, true).await,
            Err(e) => {
                tracing::warn!(error = %e, "could not open a replacement connection; retrying");
                if let Some(conn) = &mut self.conn {
                    conn.renew_at = Instant::now() + self.setup.options.backoff_max;
                }
            }
        }
    }

    /// Closes the replaced connection once its replies are in and the new one has every
    /// subscription.
    async fn maybe_finish_draining(&mut self) {
        let done = self.draining.as_ref().is_some_and(Conn::idle)
            && self.conn.as_ref().is_some_and(|c| !c.resubscribing());
        if done {
            self.stop_draining().await;
        }
    }

    async fn stop_draining(&mut self) {
        if let Some(mut old) = self.draining.take() {
            let _ = old.ws.close(Some(normal_close())).await;
            let retry = old.abandon(&Error::Disconnected);
            self.requeue(retry);
            self.flush().await;
        }
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
            for command in conn.abandon(&Error::Closed) {
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

fn normal_close() -> CloseFrame {
    CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }
}
