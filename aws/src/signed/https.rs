//! The connection pool posts go through: HTTP/1.1 kept alive, HTTPS with the system's CA
//! certificates (and plain HTTP, for the local edge).
//!
//! Built on hyper-util and hyper-rustls, the crates the SDK's own connector wraps, rather than
//! on that connector (`aws-smithy-http-client`): through it an invocation's 1,000 posts took
//! about a quarter more CPU, and deliveries were slower (bench/README.md, item 15); Lambda gives
//! CPU in proportion to memory.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Kept-alive connections to the management API.
pub(crate) type Pool = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// How long an idle connection is kept.
const IDLE: Duration = Duration::from_secs(60);

/// The pool, or why TLS could not be set up (every post then fails saying so).
pub(crate) fn pool() -> Result<Pool, rustls::Error> {
    let provider = || rustls::crypto::aws_lc_rs::default_provider();
    let builder = match hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(provider())
    {
        Ok(builder) => builder,
        Err(e) => {
            tracing::warn!(error = %e, "no CA certificates found: HTTPS posts will fail");
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider()))
                .with_safe_default_protocol_versions()?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config)
        }
    };
    let https = builder.https_or_http().enable_http1().build();
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(IDLE)
        .build(https))
}
