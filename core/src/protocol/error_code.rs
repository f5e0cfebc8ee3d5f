//! The closed set of error codes `error` frames carry.

use serde::{Deserialize, Serialize};

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
    /// The app ended this user's sessions (the HTTP API's `DELETE
    /// /v1/apps/{app}/users/{sub}/connections`): the connection closes next (4501). Do not
    /// reconnect on its own; the app decides whether the user may come back.
    SessionEnded,
}

impl ErrorCode {
    /// Every error code, in the order of the enum.
    pub const ALL: [ErrorCode; 10] = [
        Self::BadRequest,
        Self::Unauthorized,
        Self::Forbidden,
        Self::TooLarge,
        Self::RateLimited,
        Self::LimitExceeded,
        Self::FunctionFailed,
        Self::Internal,
        Self::TokenExpired,
        Self::SessionEnded,
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
            Self::SessionEnded => "session_ended",
        }
    }
}
