//! Fetching trusted issuers' discovery documents and key sets, over HTTPS (or HTTP from this
//! machine, as [`echo_core::auth::keys`] allows).

use std::time::Duration;

use async_trait::async_trait;
use echo_core::auth::jwks::{Fetch, FetchError, MAX_DOCUMENT_BYTES};

/// How long one fetch may take.
const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct HttpFetch {
    client: reqwest::Client,
}

impl HttpFetch {
    pub fn new() -> Self {
        Self {
            client: reqwest::Client::builder()
                .timeout(TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
        }
    }
}

impl Default for HttpFetch {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Fetch for HttpFetch {
    async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let fail = |source: Box<dyn std::error::Error + Send + Sync>| FetchError {
            url: url.to_owned(),
            source,
        };
        let mut response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| fail(Box::new(e)))?;
        if !response.status().is_success() {
            return Err(fail(format!("HTTP {}", response.status()).into()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| fail(Box::new(e)))? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(fail(
                    format!("the document is larger than {MAX_DOCUMENT_BYTES} bytes").into(),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}
