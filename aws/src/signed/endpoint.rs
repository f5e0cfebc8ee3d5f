//! Where posts go: `{scheme}://{authority}{prefix}/@connections/{id}`, checked once.

use aws_smithy_http::label::{EncodingStrategy, fmt_string};
use http::Uri;
use thiserror::Error;

use crate::sigv4;

/// An endpoint posts cannot be sent to.
#[derive(Debug, Clone, Error)]
#[error("bad management API endpoint {endpoint:?}: {reason}")]
pub struct BadEndpoint {
    pub endpoint: String,
    pub reason: String,
}

/// Where posts go: `{scheme}://{authority}{prefix}/@connections/{id}`.
#[derive(Debug, Clone)]
pub(super) struct Endpoint {
    base: String,
    pub(super) authority: String,
    pub(super) host: http::HeaderValue,
}

impl Endpoint {
    pub(super) fn parse(endpoint: &str) -> Result<Self, BadEndpoint> {
        let bad = |reason: &str| BadEndpoint {
            endpoint: endpoint.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = endpoint.parse().map_err(|_| bad("not a URL"))?;
        match uri.scheme_str() {
            Some("https" | "http") => {}
            _ => return Err(bad("the scheme must be https (or http, locally)")),
        }
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        if uri.query().is_some() {
            return Err(bad("a query is not allowed"));
        }
        let host = http::HeaderValue::from_str(authority.as_str()).map_err(|_| bad("bad host"))?;
        let path = uri.path().trim_end_matches('/');
        // Said once here rather than at every post, which the signer would refuse.
        if !path.is_empty() && sigv4::normalised_away(path) {
            return Err(bad("the path has an empty or dot segment"));
        }
        Ok(Self {
            base: format!(
                "{}://{authority}{path}",
                uri.scheme_str().unwrap_or("https")
            ),
            authority: authority.as_str().to_owned(),
            host,
        })
    }

    /// The connection's URL, its id escaped as the SDK escapes an `httpLabel`.
    pub(super) fn connection(&self, id: &str) -> Result<Uri, BadEndpoint> {
        format!(
            "{}/@connections/{}",
            self.base,
            fmt_string(id, EncodingStrategy::Default)
        )
        .parse()
        .map_err(|e: http::uri::InvalidUri| BadEndpoint {
            endpoint: self.base.clone(),
            reason: e.to_string(),
        })
    }
}
