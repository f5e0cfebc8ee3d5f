//! Why a token was refused, and why a key set was.

use thiserror::Error;

use crate::channel::AppId;

/// Shortest secret accepted for signing tokens, in bytes (256 bits, as RFC 7518 asks for HS256).
pub const MIN_SECRET_LEN: usize = 32;

/// Why a token was refused. Every variant but [`AuthError::Unavailable`] means HTTP 401 at
/// connect and `unauthorized` at `refresh`.
#[derive(Debug, Error)]
pub enum AuthError {
    #[error("no token: connect with ?token=JWT")]
    Missing,
    #[error("token is not a valid Echo token: {0}")]
    Invalid(#[source] jsonwebtoken::errors::Error),
    #[error("token expired")]
    Expired,
    #[error("token not valid yet")]
    NotYetValid,
    #[error("token claims are invalid: {0}")]
    BadClaims(String),
    #[error("token is signed with key {0:?}, which Echo does not know")]
    UnknownKey(String),
    #[error("token is signed with key {0:?}, which was revoked")]
    Revoked(String),
    #[error("token is signed with key {kid:?} of app {owner}, not of app {app}")]
    WrongApp {
        kid: String,
        owner: AppId,
        app: String,
    },
    #[error("app {0} has its own keys: its tokens must name one in their kid header")]
    KidRequired(AppId),
    #[error("token has no kid header, and Echo has no key for tokens without one")]
    NoInstanceKey,
    #[error("token of issuer {issuer} is refused: {reason}")]
    Issuer { issuer: String, reason: String },
    /// The keys could not be read, or an issuer's keys could not be fetched: not the token's
    /// fault (HTTP 503 at connect).
    #[error("the keys to check the token are unavailable: {0}")]
    Unavailable(String),
}

impl AuthError {
    /// Whether the token was not judged at all (retry later) rather than refused.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// Why a secret was refused.
#[derive(Debug, Error)]
#[error("the JWT secret must be at least {MIN_SECRET_LEN} bytes, got {0}")]
pub struct WeakSecret(pub usize);

/// Why a key set was refused; the message names the key or issuer.
#[derive(Debug, Error)]
pub enum KeysError {
    #[error("the key set is not valid JSON of the documented shape: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{place}: {reason}")]
    Invalid { place: String, reason: String },
    #[error("the key set could not be read: {0}")]
    Read(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl KeysError {
    pub(crate) fn invalid(place: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            place: place.into(),
            reason: reason.into(),
        }
    }
}
