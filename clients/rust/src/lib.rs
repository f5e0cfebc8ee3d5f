//! Echo's Rust client, on tokio.
//!
//! ```no_run
//! # async fn demo() -> Result<(), echo_client::Error> {
//! let client = echo_client::Client::builder("ws://127.0.0.1:8080/")
//!     .token("eyJ...")
//!     .connect()
//!     .await?;
//! let mut angry = client.subscribe("angry").await?;
//! client.publish("angry", serde_json::json!({"text": "hello"})).await?;
//! while let Some(message) = angry.recv().await {
//!     println!("{} #{}: {}", message.channel, message.seq, message.data);
//! }
//! # Ok(()) }
//! ```
//!
//! The client keeps one WebSocket and hides its interruptions:
//! - after an unexpected close it reconnects with exponential backoff and full jitter, asking the
//!   token provider for a fresh token each time, and resubscribes every channel with `since` set
//!   to the last seq it delivered, so messages published meanwhile arrive, in order, once;
//! - it de-duplicates by seq and fills gaps (a replay is capped at 1,000 messages) from history;
//! - it pings when it has sent nothing for a while (API Gateway closes idle connections after
//!   10 minutes) and replaces the connection before API Gateway's 2-hour cap, opening the new
//!   one before closing the old.
//!
//! Modules: `wire` (frames), `connection` (the task that owns the socket).

mod connection;
mod wire;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

pub use wire::{ErrorCode, Message};

use connection::Command;

/// What can go wrong for a caller.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// Echo refused the request with an error frame.
    #[error("{code}: {message}")]
    Server { code: ErrorCode, message: String },
    /// The token was refused when connecting (HTTP 401).
    #[error("the token was refused (HTTP 401)")]
    Unauthorized,
    /// The WebSocket could not be opened.
    #[error("could not connect: {0}")]
    Connect(String),
    /// The connection dropped after the publish was sent and before its ack: it may or may not
    /// have been accepted. Retrying may deliver it twice.
    #[error(
        "the connection dropped before the reply; the request may or may not have taken effect"
    )]
    Disconnected,
    /// The client was closed (by [`Client::close`], or by Echo with a code not to reconnect after:
    /// 1000 or 4500–4999, such as 4500 for a close through the management API).
    #[error("the client is closed")]
    Closed,
    /// No reply within the request timeout.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The client already holds a subscription to the channel.
    #[error("already subscribed to {0}")]
    AlreadySubscribed(String),
    /// Too many publishes are waiting for the connection to come back.
    #[error("{0} publishes are already waiting for the connection")]
    QueueFull(usize),
    /// The token provider failed.
    #[error("the token provider failed: {0}")]
    Token(String),
    /// The channel name cannot be valid: 1–128 characters of `A-Z a-z 0-9 _ - . : @ =`, or a
    /// reserved name starting with `$`. Checked before sending, since Echo could not say which
    /// request its refusal answers.
    #[error("invalid channel name {0:?}: use 1-128 characters of A-Z a-z 0-9 _ - . : @ =")]
    InvalidChannel(String),
    /// The publish frame would be larger than [`Options::max_message_bytes`]; it was not sent.
    #[error("the message is {size} bytes, over the {max}-byte limit")]
    TooLarge { size: usize, max: usize },
    /// The data could not be encoded as JSON.
    #[error("the data is not JSON: {0}")]
    Encode(String),
}

impl Error {
    /// The server's error code, when Echo refused the request.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Server { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// The outcome of a publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// Stored and handed to delivery as `seq`.
    Stored { seq: u64 },
    /// A function dropped it: nobody receives it.
    Dropped { reason: Option<String> },
}

/// The connection's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Connecting,
    Open,
    Reconnecting,
    Closed,
}

/// What happened to the connection, for logs and UIs.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A connection is open (`planned` when it replaced one before its maximum age).
    Open { planned: bool },
    /// The connection dropped; the next attempt starts after `delay`.
    Reconnecting {
        attempt: u32,
        delay: Duration,
        /// The close code, if Echo sent one.
        code: Option<u16>,
        reason: String,
    },
    /// The client stopped for good.
    Closed { code: Option<u16>, reason: String },
    /// Messages `from..=to` on `channel` could not be recovered (history no longer has them).
    Gap { channel: String, from: u64, to: u64 },
    /// Something failed without a caller to tell, such as a resubscribe refused after reconnect
    /// (the subscription then ends).
    Error {
        channel: Option<String>,
        error: Error,
    },
}

type TokenFuture = Pin<Box<dyn Future<Output = Result<String, String>> + Send>>;
type TokenProvider = Arc<dyn Fn() -> TokenFuture + Send + Sync>;

#[derive(Clone)]
enum Token {
    Static(String),
    Provider(TokenProvider),
}

impl Token {
    async fn get(&self) -> Result<String, Error> {
        match self {
            Self::Static(t) => Ok(t.clone()),
            Self::Provider(f) => f().await.map_err(Error::Token),
        }
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Static(_) => "Token::Static(<redacted>)",
            Self::Provider(_) => "Token::Provider",
        })
    }
}

/// Tunables, with defaults for API Gateway.
#[derive(Debug, Clone)]
pub struct Options {
    /// Ping when nothing was sent for this long (API Gateway's idle timeout is 10 minutes).
    pub ping_interval: Duration,
    /// Replace the connection after this long (API Gateway closes connections at 2 hours).
    pub renew_after: Duration,
    /// How long a request waits for its reply.
    pub request_timeout: Duration,
    /// How long opening a WebSocket may take.
    pub connect_timeout: Duration,
    /// First reconnect delay; it doubles per failed attempt up to `backoff_max` (full jitter).
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Publishes kept while disconnected, sent once the connection is back.
    pub publish_queue: usize,
    /// Messages buffered per subscription; when full, reading from the socket waits.
    pub subscription_buffer: usize,
    /// Largest publish frame sent (Echo's and API Gateway's limit is 128 KB); larger ones fail
    /// with [`Error::TooLarge`] without being sent.
    pub max_message_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(5 * 60),
            renew_after: Duration::from_secs(115 * 60),
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            backoff_base: Duration::from_millis(250),
            backoff_max: Duration::from_secs(30),
            publish_queue: 1000,
            subscription_buffer: 1024,
            max_message_bytes: 128 * 1024,
        }
    }
}

/// Builds a [`Client`].
#[derive(Debug)]
pub struct ClientBuilder {
    url: String,
    token: Option<Token>,
    options: Options,
}

impl ClientBuilder {
    /// A fixed token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(Token::Static(token.into()));
        self
    }

    /// A function asked for a token before every connection attempt.
    pub fn token_provider<F, Fut>(mut self, provider: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, String>> + Send + 'static,
    {
        self.token = Some(Token::Provider(Arc::new(move || Box::pin(provider()))));
        self
    }

    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// Opens the first connection; an error here (bad token, nothing listening) is returned rather
    /// than retried.
    pub async fn connect(self) -> Result<Client, Error> {
        let token = self
            .token
            .ok_or_else(|| Error::Token("no token or token provider was given".into()))?;
        let (state_tx, state_rx) = watch::channel(State::Connecting);
        let (events, _) = broadcast::channel(256);
        let (commands, rx) = mpsc::channel(1024);
        let request_timeout = self.options.request_timeout;
        connection::start(
            connection::Setup {
                url: self.url,
                token,
                options: self.options,
                state: state_tx,
                events: events.clone(),
            },
            rx,
        )
        .await?;
        Ok(Client {
            commands,
            events,
            state: state_rx,
            request_timeout,
        })
    }
}

/// A connection to Echo. Cheap to clone; the connection closes when the last clone is dropped or
/// [`Client::close`] is called.
#[derive(Debug, Clone)]
pub struct Client {
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<Event>,
    state: watch::Receiver<State>,
    request_timeout: Duration,
}

impl Client {
    /// Starts building a client for `url` (`ws://` or `wss://`; the token is added as `?token=`).
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            url: url.into(),
            token: None,
            options: Options::default(),
        }
    }

    /// Subscribes to `channel`; messages published from now on arrive on the subscription.
    pub async fn subscribe(&self, channel: &str) -> Result<Subscription, Error> {
        self.subscribe_from(channel, None).await
    }

    /// Subscribes to `channel`, first replaying stored messages with seq > `since`.
    pub async fn subscribe_since(&self, channel: &str, since: u64) -> Result<Subscription, Error> {
        self.subscribe_from(channel, Some(since)).await
    }

    async fn subscribe_from(
        &self,
        channel: &str,
        since: Option<u64>,
    ) -> Result<Subscription, Error> {
        check_channel(channel)?;
        self.request(|reply| Command::Subscribe {
            channel: channel.to_owned(),
            since,
            reply,
        })
        .await
    }

    /// Ends the subscription to `channel` (dropping the [`Subscription`] does too).
    pub async fn unsubscribe(&self, channel: &str) -> Result<(), Error> {
        check_channel(channel)?;
        self.request(|reply| Command::Unsubscribe {
            channel: channel.to_owned(),
            reply,
        })
        .await
    }

    /// Publishes `data` to `channel` through its functions. While disconnected the publish waits
    /// (up to [`Options::publish_queue`] of them) for the connection to come back.
    pub async fn publish(&self, channel: &str, data: impl Serialize) -> Result<Published, Error> {
        self.publish_with_id(channel, data, None).await
    }

    /// Publishes with the given message id (1–128 bytes), echoed in the ack and the message.
    pub async fn publish_with_id(
        &self,
        channel: &str,
        data: impl Serialize,
        id: Option<String>,
    ) -> Result<Published, Error> {
        check_channel(channel)?;
        let data = serde_json::to_value(data).map_err(|e| Error::Encode(e.to_string()))?;
        self.request(|reply| Command::Publish {
            channel: channel.to_owned(),
            data,
            id,
            reply,
        })
        .await
    }

    /// Stored messages on `channel` with seq > `since`, oldest first, at most `limit` (1–1,000).
    pub async fn history(
        &self,
        channel: &str,
        since: u64,
        limit: u32,
    ) -> Result<Vec<Message>, Error> {
        check_channel(channel)?;
        self.request(|reply| Command::History {
            channel: channel.to_owned(),
            since,
            limit,
            reply,
        })
        .await
    }

    /// A round trip to Echo.
    pub async fn ping(&self) -> Result<(), Error> {
        self.request(|reply| Command::Ping { reply }).await
    }

    /// Closes the connection (code 1000) and stops reconnecting. Pending requests fail with
    /// [`Error::Closed`] and subscriptions end.
    pub async fn close(&self) {
        let (reply, done) = oneshot::channel();
        if self.commands.send(Command::Close { reply }).await.is_ok() {
            let _ = done.await;
        }
    }

    /// The connection's events from now on.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// The current state.
    pub fn state(&self) -> State {
        *self.state.borrow()
    }

    /// Waits until the state is `state` (or the client is dropped).
    pub async fn wait_for(&self, state: State) -> State {
        let mut rx = self.state.clone();
        match rx.wait_for(|s| *s == state).await {
            Ok(s) => *s,
            Err(_) => State::Closed,
        }
    }

    async fn request<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T, Error>>) -> Command,
    ) -> Result<T, Error> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| Error::Closed)?;
        match tokio::time::timeout(self.request_timeout, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Error::Closed),
            Err(_) => Err(Error::Timeout(self.request_timeout)),
        }
    }
}

/// Messages of one channel, in seq order, each once.
#[derive(Debug)]
pub struct Subscription {
    channel: String,
    seq: u64,
    messages: mpsc::Receiver<Message>,
}

impl Subscription {
    /// The next message; `None` once the subscription ended (unsubscribed, refused on
    /// resubscribe, or the client closed).
    pub async fn recv(&mut self) -> Option<Message> {
        self.messages.recv().await
    }

    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The channel's latest seq when the subscription was made.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

fn check_channel(channel: &str) -> Result<(), Error> {
    let name = channel.strip_prefix('$').unwrap_or(channel);
    let valid = !name.is_empty()
        && channel.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:@=".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidChannel(channel.to_owned()))
    }
}

/// Adds `token` to `url` as the `token` query parameter.
fn url_with_token(url: &str, token: &str) -> String {
    let mut encoded = String::with_capacity(token.len());
    for b in token.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}token={encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_goes_in_the_query() {
        assert_eq!(
            url_with_token("ws://h:1/", "a.b_c-d"),
            "ws://h:1/?token=a.b_c-d"
        );
        assert_eq!(
            url_with_token("ws://h:1/?x=1", "a b"),
            "ws://h:1/?x=1&token=a%20b"
        );
    }

    #[test]
    fn channel_names_are_checked_before_sending() {
        for ok in [
            "boring",
            "room-1",
            "a:b@c=d.e_f",
            "$status",
            &"x".repeat(128),
        ] {
            assert_eq!(check_channel(ok), Ok(()), "{ok}");
        }
        for bad in ["", "$", "no spaces", "é", "a/b", &"x".repeat(129)] {
            assert!(check_channel(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tokens_do_not_show_in_debug() {
        let b = Client::builder("ws://h/").token("secret-token");
        assert!(!format!("{b:?}").contains("secret-token"));
    }
}
