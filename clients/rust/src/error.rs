//! What can go wrong for a caller.

use std::time::Duration;

use crate::error_code::ErrorCode;

/// What can go wrong for a caller.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// Echo refused the request with an error frame.
    #[error("{code}: {message}")]
    Server { code: ErrorCode, message: String },
    /// The token was refused when connecting (HTTP 401).
    #[error("the token was refused (HTTP 401)")]
    Unauthorized,
    /// The app's `onConnect` hook refused the connection (HTTP 403): the reason it gave.
    #[error("the connection was refused: {0}")]
    Denied(String),
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
