//! Fetching trusted OIDC issuers' discovery documents and key sets over HTTPS, through the
//! same connection pool the management API's posts use.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use echo_core::auth::jwks::{Fetch, FetchError, MAX_DOCUMENT_BYTES};
use http_body_util::{BodyExt, Full, Limited};

use crate::signed::https::Pool;

/// How long one fetch may take.
const TIMEOUT: Duration = Duration::from_secs(5);

pub struct HttpsFetch {
    pool: Result<Pool, String>,
}

impl std::fmt::Debug for HttpsFetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpsFetch")
    }
}

impl HttpsFetch {
    pub fn new() -> Self {
        Self {
            pool: crate::signed::https::pool().map_err(|e| e.to_string()),
        }
    }
}

impl Default for HttpsFetch {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Fetch for HttpsFetch {
    async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let fail = |source: Box<dyn std::error::Error + Send + Sync>| FetchError {
            url: url.to_owned(),
            source,
        };
        let pool = self.pool.as_ref().map_err(|e| fail(e.clone().into()))?;
        let request = http::Request::get(url)
            .body(Full::new(Bytes::new()))
            .map_err(|e| fail(Box::new(e)))?;
        let response = tokio::time::timeout(TIMEOUT, pool.request(request))
            .await
            .map_err(|_| fail(format!("no answer within {TIMEOUT:?}").into()))?
            .map_err(|e| fail(Box::new(e)))?;
        if !response.status().is_success() {
            return Err(fail(format!("HTTP {}", response.status()).into()));
        }
        let body = tokio::time::timeout(
            TIMEOUT,
            Limited::new(response.into_body(), MAX_DOCUMENT_BYTES).collect(),
        )
        .await
        .map_err(|_| fail(format!("the body did not arrive within {TIMEOUT:?}").into()))?
        .map_err(fail)?;
        Ok(body.to_bytes().to_vec())
    }
}
