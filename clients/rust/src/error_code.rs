//! The error codes Echo's `error` frames carry.

use std::fmt;

use serde::Deserialize;

/// Echo's error codes. The set is closed on the server; `Other` keeps the client working if a
/// newer server adds one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    TooLarge,
    RateLimited,
    LimitExceeded,
    FunctionFailed,
    Internal,
    /// The connection's token expired; the client refreshes it when it has a token provider.
    TokenExpired,
    /// The app ended this user's sessions: the connection closes and is not reconnected.
    SessionEnded,
    #[serde(other)]
    Other,
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
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
            Self::Other => "other",
        })
    }
}
