//! Error codes and refusals: what an `error` frame says.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{ErrorFrame, ServerFrame};
use crate::channel::ChannelName;

/// The closed set of error codes in `error` frames. Codes are stable; messages are for humans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is malformed, names an unknown action, lacks or mistypes a field, or names an
    /// invalid channel. Fix the frame; do not resend it as is.
    BadRequest,
    /// The token is missing, invalid or expired (at connect, as HTTP 401); a `refresh` token
    /// that is not valid; or the connection's record is gone.
    Unauthorized,
    /// The token does not allow this (channel permissions, `$status` for non-admins, publishing
    /// to a reserved channel). Do not retry with the same token.
    Forbidden,
    /// The frame or the message after functions exceeds the size limit. Do not resend as is.
    TooLarge,
    /// Too many frames too fast. Retry after a pause.
    RateLimited,
    /// A per-connection limit (such as the number of subscriptions) is reached: free some first.
    /// When connecting (as HTTP 503), the edge holds all the connections it may: retry later.
    LimitExceeded,
    /// A function on the channel failed or timed out and the channel's policy is `reject`:
    /// nothing was delivered. Retrying may succeed if the failure was transient.
    FunctionFailed,
    /// Echo failed (storage, delivery). The frame may be retried; publishes are not known to be
    /// delivered.
    Internal,
    /// The connection's token has expired: nothing but `refresh` and `ping` is accepted. Send
    /// `refresh` with a new token within the grace period, or reconnect with one.
    TokenExpired,
}

impl ErrorCode {
    /// Every error code, in the order of the enum.
    pub const ALL: [ErrorCode; 9] = [
        Self::BadRequest,
        Self::Unauthorized,
        Self::Forbidden,
        Self::TooLarge,
        Self::RateLimited,
        Self::LimitExceeded,
        Self::FunctionFailed,
        Self::Internal,
        Self::TokenExpired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::TooLarge => "too_large",
            Self::RateLimited => "rate_limited",
            Self::LimitExceeded => "limit_exceeded",
            Self::FunctionFailed => "function_failed",
            Self::Internal => "internal",
            Self::TokenExpired => "token_expired",
        }
    }
}

/// A refused frame: what goes back to the client as an `error` frame.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("{code:?}: {message}")]
pub struct ProtocolError {
    pub code: ErrorCode,
    pub message: String,
    pub id: Option<String>,
    pub channel: Option<ChannelName>,
}

impl ProtocolError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            id: None,
            channel: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    pub fn with_id(mut self, id: Option<String>) -> Self {
        if self.id.is_none() {
            self.id = id;
        }
        self
    }

    pub fn with_channel(mut self, channel: &ChannelName) -> Self {
        self.channel = Some(channel.clone());
        self
    }

    pub fn to_frame(&self) -> ServerFrame {
        ServerFrame::Error(ErrorFrame {
            code: self.code,
            message: self.message.clone(),
            id: self.id.clone(),
            channel: self.channel.clone(),
        })
    }
}
