//! The handle callers hold: building a client, and the requests it makes through the
//! connection task.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::connection::{self, Command};
use crate::error::Error;
use crate::events::{Event, State};
use crate::options::Options;
use crate::presence::{PresenceList, SubscribeOptions};
use crate::published::Published;
use crate::subscription::Subscription;
use crate::token::Token;
use crate::wire::HistoryPage;

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
        let ciphers = crate::e2e::Ciphers::default();
        connection::start(
            connection::Setup {
                url: self.url,
                token,
                options: self.options,
                state: state_tx,
                events: events.clone(),
                ciphers: ciphers.clone(),
            },
            rx,
        )
        .await?;
        Ok(Client {
            commands,
            events,
            state: state_rx,
            request_timeout,
            ciphers,
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
    ciphers: crate::e2e::Ciphers,
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
        self.subscribe_with(channel, SubscribeOptions::default())
            .await
    }

    /// Subscribes to `channel`, first replaying stored messages with seq > `since`.
    pub async fn subscribe_since(&self, channel: &str, since: u64) -> Result<Subscription, Error> {
        let options = SubscribeOptions {
            since: Some(since),
            ..SubscribeOptions::default()
        };
        self.subscribe_with(channel, options).await
    }

    /// Subscribes to `channel` with `options`: a replay from `since`, and with `presence` the
    /// channel's member list kept ([`Subscription::members`]) and [`Event::Join`] and
    /// [`Event::Leave`] reported.
    pub async fn subscribe_with(
        &self,
        channel: &str,
        options: SubscribeOptions,
    ) -> Result<Subscription, Error> {
        check_channel(channel)?;
        self.request(|reply| Command::Subscribe {
            channel: channel.to_owned(),
            since: options.since,
            presence: options.presence,
            reply,
        })
        .await
    }

    /// The channel's members, every page read, in `sub` order. Needs permission to subscribe
    /// to the channel. The pages share the request timeout.
    pub async fn presence(&self, channel: &str) -> Result<PresenceList, Error> {
        check_channel(channel)?;
        self.request(|reply| Command::Presence {
            channel: channel.to_owned(),
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

    /// Encrypts `channel` end to end with `keys` ([`crate::e2e`]): publishes are encrypted with
    /// the first key, and messages delivered or read from history are decrypted with whichever
    /// key their envelope names, so a key can rotate by putting the new one first. Messages that
    /// do not decrypt are reported as [`Event::DecryptError`] and not handed over. No keys: the
    /// channel is no longer encrypted by this client.
    pub fn encrypt_channel(&self, channel: &str, keys: Vec<crate::e2e::Key>) -> Result<(), Error> {
        check_channel(channel)?;
        self.ciphers.set(channel, keys);
        Ok(())
    }

    /// Publishes with the given message id (1–128 bytes), echoed in the ack and the message.
    pub async fn publish_with_id(
        &self,
        channel: &str,
        data: impl Serialize,
        id: Option<String>,
    ) -> Result<Published, Error> {
        check_channel(channel)?;
        let mut data = serde_json::to_value(data).map_err(|e| Error::Encode(e.to_string()))?;
        if let Some(keys) = self.ciphers.get(channel) {
            data = keys[0].encrypt(channel, &data);
        }
        self.request(|reply| Command::Publish {
            channel: channel.to_owned(),
            data,
            id,
            reply,
            first_sent: None,
        })
        .await
    }

    /// Stored messages on `channel` with seq > `since`, oldest first, at most `limit` (1–1,000)
    /// and at most one frame's worth (128 KB): when the page says `more`, read on from its last
    /// seq.
    pub async fn history(
        &self,
        channel: &str,
        since: u64,
        limit: u32,
    ) -> Result<HistoryPage, Error> {
        check_channel(channel)?;
        let mut page = self
            .request(|reply| Command::History {
                channel: channel.to_owned(),
                since,
                limit,
                reply,
            })
            .await?;
        if let Some(keys) = self.ciphers.get(channel) {
            for m in &mut page.messages {
                match crate::e2e::decrypt(&keys, channel, &m.data) {
                    Ok(data) => m.data = data,
                    Err(error) => {
                        m.data = serde_json::Value::Null;
                        m.decrypt_error = Some(error.clone());
                        let _ = self.events.send(Event::DecryptError {
                            channel: channel.to_owned(),
                            seq: m.seq,
                            id: m.id.clone(),
                            error,
                        });
                    }
                }
            }
        }
        Ok(page)
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

#[cfg(test)]
mod tests {
    use super::*;

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
