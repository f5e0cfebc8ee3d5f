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
