//! The token a connection opens with: fixed, or from the application's provider.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::error::Error;

pub(crate) type TokenFuture = Pin<Box<dyn Future<Output = Result<String, String>> + Send>>;
pub(crate) type TokenProvider = Arc<dyn Fn() -> TokenFuture + Send + Sync>;

#[derive(Clone)]
pub(crate) enum Token {
    Static(String),
    Provider(TokenProvider),
}

impl Token {
    pub(crate) async fn get(&self) -> Result<String, Error> {
        match self {
            Self::Static(t) => Ok(t.clone()),
            Self::Provider(f) => f().await.map_err(Error::Token),
        }
    }

    /// Whether a new token can be had (to `refresh` the connection with).
    pub(crate) fn renewable(&self) -> bool {
        matches!(self, Self::Provider(_))
    }
}

/// The `exp` claim of a JWT (seconds since the epoch), read without checking the signature:
/// the client only needs to know when to refresh. `None` for a token that is not a JWT.
pub(crate) fn expiry(token: &str) -> Option<u64> {
    use base64::Engine;
    #[derive(serde::Deserialize)]
    struct Exp {
        exp: u64,
    }
    let payload = token.split('.').nth(1)?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice::<Exp>(&json).ok().map(|c| c.exp)
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Static(_) => "Token::Static(<redacted>)",
            Self::Provider(_) => "Token::Provider",
        })
    }
}

/// Adds `token` to `url` as the `token` query parameter.
pub(crate) fn url_with_token(url: &str, token: &str) -> String {
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
    fn the_expiry_is_read_from_the_payload() {
        // {"alg":"HS256"} . {"sub":"a","exp":1700000000} . signature
        let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIiwiZXhwIjoxNzAwMDAwMDAwfQ.c2ln";
        assert_eq!(expiry(token), Some(1_700_000_000));
        assert_eq!(expiry("opaque"), None);
        assert_eq!(expiry("a.!!!.c"), None);
    }

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
}
