//! The management API's hot path: `POST /@connections/{id}`, signed with SigV4
//! ([`PostSigner`]) and sent over a kept-alive connection pool.
//!
//! A post is a small body out and an empty body back, and fan-out makes one per subscriber. The
//! SDK's general request pipeline (interceptors, endpoint rules, config lookups) cost most of a
//! post's CPU, and Lambda gives CPU in proportion to memory, so this path skips it (the figures
//! are in bench/README.md, item 13). It keeps what matters from it: the same request and
//! signature, the SDK's retry settings, credentials refreshed before they expire, and a bound on
//! each attempt.
//!
//! - [`endpoint`]: where posts go, checked once.
//! - `https`: the connection pool and TLS.
//! - [`retry`]: how often and how patiently a post is tried.
//! - [`credentials`]: the credentials posts are signed with, cached.

mod credentials;
mod endpoint;
pub(crate) mod https;
mod retry;

pub use endpoint::BadEndpoint;
pub use retry::Retry;

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_smithy_async::time::SharedTimeSource;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use thiserror::Error;

use crate::sigv4::{self, PostSigner};
use credentials::CachedIdentity;
use endpoint::Endpoint;

/// The most of an error body kept for the error message.
const ERROR_BODY_LIMIT: usize = 1024;

/// Why a post failed, once its attempts are spent.
#[derive(Debug, Error)]
pub enum PostError {
    #[error("the management API answered {status}: {message}")]
    Status { status: StatusCode, message: String },
    #[error("no response from the management API within {0:?}")]
    Timeout(Duration),
    #[error("management API request failed: {0}")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("no AWS credentials to sign with: {0}")]
    Credentials(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("no AWS region to sign for: set AWS_REGION")]
    NoRegion,
    #[error("could not sign the request: {0}")]
    Signing(#[from] sigv4::SignError),
    #[error("could not build the request: {0}")]
    Request(#[source] http::Error),
    #[error("TLS could not be set up: {0}")]
    Tls(#[source] rustls::Error),
    #[error(transparent)]
    Endpoint(#[from] BadEndpoint),
}

impl PostError {
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// What the SDK's standard retry policy retries: throttling, server errors and requests that
    /// got no answer. A post is idempotent for Echo: clients drop a frame they already have.
    fn retryable(&self) -> bool {
        match self {
            Self::Status { status, .. } => {
                *status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
            }
            Self::Timeout(_) | Self::Transport(_) => true,
            Self::Credentials(_)
            | Self::NoRegion
            | Self::Signing(_)
            | Self::Request(_)
            | Self::Tls(_)
            | Self::Endpoint(_) => false,
        }
    }
}

/// Posts frames to connections.
#[derive(Clone)]
pub struct SignedPoster {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: Result<Endpoint, BadEndpoint>,
    /// For the region to sign for; `None` without one.
    signer: Option<PostSigner>,
    identity: Option<CachedIdentity>,
    time: SharedTimeSource,
    /// The connection pool, or why TLS could not be set up.
    http: Result<https::Pool, rustls::Error>,
    retry: Retry,
}

impl std::fmt::Debug for SignedPoster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedPoster")
            .field("endpoint", &self.inner.endpoint)
            .field("signer", &self.inner.signer)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

impl SignedPoster {
    /// Signs for `sdk`'s region with its credentials and clock. A bad endpoint or missing
    /// credentials make every post fail with an error that says so.
    pub fn new(sdk: &SdkConfig, endpoint: &str, retry: Retry) -> Self {
        let http = https::pool();
        Self {
            inner: Arc::new(Inner {
                endpoint: Endpoint::parse(endpoint),
                signer: sdk
                    .region()
                    .map(|r| r.as_ref())
                    .filter(|r| !r.is_empty())
                    .map(PostSigner::new),
                identity: sdk.credentials_provider().map(CachedIdentity::new),
                time: sdk.time_source().unwrap_or_default(),
                http,
                retry,
            }),
        }
    }

    /// Posts `data` to connection `id`, retrying as [`Retry`] says.
    pub async fn post(&self, id: &str, data: Bytes) -> Result<(), PostError> {
        let retry = self.inner.retry;
        let mut attempt = 1;
        loop {
            match self.attempt(id, data.clone()).await {
                Ok(()) => return Ok(()),
                Err(e) if e.retryable() && attempt < retry.max_attempts => {
                    tracing::debug!(error = %e, attempt, "post failed; retrying");
                    tokio::time::sleep(retry.backoff(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn attempt(&self, id: &str, data: Bytes) -> Result<(), PostError> {
        let inner = &self.inner;
        let endpoint = inner.endpoint.as_ref().map_err(BadEndpoint::clone)?;
        let signer = inner.signer.as_ref().ok_or(PostError::NoRegion)?;
        let now = inner.time.now();
        let credentials = match &inner.identity {
            Some(cache) => cache.get(now).await?,
            None => {
                return Err(PostError::Credentials(
                    "no credentials provider is configured".into(),
                ));
            }
        };
        let uri = endpoint.connection(id)?;
        let signature = signer.sign(&credentials, now, &endpoint.authority, uri.path(), &data)?;
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(HOST, endpoint.host.clone())
            .header(CONTENT_TYPE, sigv4::CONTENT_TYPE)
            .header(CONTENT_LENGTH, data.len())
            .header("x-amz-date", signature.amz_date)
            .header(AUTHORIZATION, signature.authorization);
        if let Some(token) = signature.security_token {
            request = request.header("x-amz-security-token", token);
        }
        let request = request.body(Full::new(data)).map_err(PostError::Request)?;
        let http = inner.http.as_ref().map_err(|e| PostError::Tls(e.clone()))?;
        let timeout = inner.retry.attempt_timeout;
        tokio::time::timeout(timeout, async {
            let response = http
                .request(request)
                .await
                .map_err(|e| PostError::Transport(Box::new(e)))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), ERROR_BODY_LIMIT)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            if status.is_success() {
                return Ok(());
            }
            Err(PostError::Status {
                status,
                message: error_message(&body),
            })
        })
        .await
        .map_err(|_| PostError::Timeout(timeout))?
    }
}

/// API Gateway's error body is `{"message": "..."}`; anything else is shown as text.
fn error_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(alias = "Message")]
        message: String,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(b) => b.message,
        Err(_) => String::from_utf8_lossy(body).trim().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Mutex;
    use std::time::SystemTime;

    use aws_credential_types::Credentials;
    use aws_credential_types::provider::SharedCredentialsProvider;
    use aws_sdk_apigatewaymanagement::primitives::Blob;
    use aws_smithy_async::time::StaticTimeSource;
    use aws_types::region::Region;
    use axum::extract::State;
    use axum::response::IntoResponse;
    use http::HeaderMap;

    use super::*;

    /// A request as the server saw it.
    #[derive(Debug, Clone)]
    struct Seen {
        method: Method,
        path: String,
        headers: HeaderMap,
        body: Bytes,
    }

    /// Answers each request with the next scripted status (200 once the script runs out),
    /// after `delay`, and keeps what it saw.
    #[derive(Clone, Default)]
    struct Script {
        statuses: Arc<Mutex<Vec<u16>>>,
        seen: Arc<Mutex<Vec<Seen>>>,
        delay: Duration,
    }

    async fn answer(
        State(script): State<Script>,
        request: axum::extract::Request,
    ) -> impl IntoResponse {
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        script.seen.lock().unwrap().push(Seen {
            method: parts.method,
            path: parts.uri.path().to_owned(),
            headers: parts.headers,
            body,
        });
        tokio::time::sleep(script.delay).await;
        let next = {
            let mut s = script.statuses.lock().unwrap();
            if s.is_empty() { 200 } else { s.remove(0) }
        };
        let status = StatusCode::from_u16(next).unwrap();
        (status, format!(r#"{{"message":"scripted {next}"}}"#))
    }

    async fn serve(script: Script) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(answer).with_state(script);
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/prod")
    }

    fn time() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000)
    }

    fn credentials() -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some("session-token".into()),
            None,
            "tests",
        )
    }

    fn sdk() -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .credentials_provider(SharedCredentialsProvider::new(credentials()))
            .time_source(StaticTimeSource::new(time()))
            .build()
    }

    fn quick(max_attempts: u32, attempt_timeout: Duration) -> Retry {
        Retry {
            max_attempts,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            attempt_timeout,
        }
    }

    /// Signs what the server saw again, with the headers its signature covered, and returns the
    /// `Authorization` that gives.
    fn resign(endpoint: &str, seen: &Seen) -> String {
        let auth = seen.headers["authorization"].to_str().unwrap();
        let signed: Vec<&str> = auth
            .split(", ")
            .find_map(|p| p.strip_prefix("SignedHeaders="))
            .unwrap()
            .split(';')
            .collect();
        let authority = endpoint
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap();
        let mut request = Request::builder()
            .method(seen.method.clone())
            .uri(format!("http://{authority}{}", seen.path))
            .body(())
            .unwrap();
        for (name, value) in &seen.headers {
            let added_by_signing = ["x-amz-date", "x-amz-security-token"].contains(&name.as_str());
            if signed.contains(&name.as_str()) && !added_by_signing {
                request.headers_mut().append(name, value.clone());
            }
        }
        crate::sigv4::sign_generally(
            &mut request,
            &seen.body,
            &credentials(),
            "eu-west-1",
            time(),
        );
        request.headers()["authorization"]
            .to_str()
            .unwrap()
            .to_owned()
    }

    #[tokio::test]
    async fn signs_a_post_as_the_sdk_does() {
        let script = Script::default();
        let endpoint = serve(script.clone()).await;
        let id = "AbC=dEf/+é";

        // The SDK's own post, with the same credentials and clock.
        let sdk = sdk();
        let client = aws_sdk_apigatewaymanagement::Client::from_conf(
            crate::gateway::configure(
                aws_sdk_apigatewaymanagement::config::Builder::from(&sdk).endpoint_url(&endpoint),
            )
            .build(),
        );
        client
            .post_to_connection()
            .connection_id(id)
            .data(Blob::new(&b"{\"n\":1}"[..]))
            .send()
            .await
            .unwrap();
        // This path's post.
        SignedPoster::new(&sdk, &endpoint, quick(1, Duration::from_secs(5)))
            .post(id, Bytes::from_static(b"{\"n\":1}"))
            .await
            .unwrap();

        let seen = script.seen.lock().unwrap().clone();
        let [by_sdk, ours] = &seen[..] else {
            panic!("expected two requests, saw {seen:?}")
        };
        // The signer, given the SDK's request, signs it as the SDK did: same service, region,
        // header selection, path escaping and payload hash.
        assert_eq!(resign(&endpoint, by_sdk), by_sdk.headers["authorization"]);
        // Both ask for the same thing.
        assert_eq!(ours.method, by_sdk.method);
        assert_eq!(ours.path, by_sdk.path);
        assert_eq!(ours.body, by_sdk.body);
        for header in [
            "host",
            "content-type",
            "content-length",
            "x-amz-date",
            "x-amz-security-token",
        ] {
            assert_eq!(
                ours.headers.get(header),
                by_sdk.headers.get(header),
                "{header}"
            );
        }
        // And what was sent is what was signed: nothing signed changed on the way.
        assert_eq!(resign(&endpoint, ours), ours.headers["authorization"]);
        let auth = ours.headers["authorization"].to_str().unwrap();
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260921/eu-west-1/execute-api/aws4_request"), "{auth}");
    }

    #[tokio::test]
    async fn retries_what_may_pass_and_stops_at_what_will_not() {
        for (statuses, attempts, expect) in [
            (vec![503, 200], 2, None),
            (vec![500, 502], 3, None),
            (vec![429, 429, 429], 3, Some(429)),
            (vec![410], 1, Some(410)),
            (vec![403], 1, Some(403)),
        ] {
            let script = Script {
                statuses: Arc::new(Mutex::new(statuses.clone())),
                ..Script::default()
            };
            let endpoint = serve(script.clone()).await;
            let result = SignedPoster::new(&sdk(), &endpoint, quick(3, Duration::from_secs(5)))
                .post("abc=", Bytes::from_static(b"{}"))
                .await;
            assert_eq!(
                result
                    .as_ref()
                    .err()
                    .and_then(PostError::status)
                    .map(|s| s.as_u16()),
                expect,
                "{statuses:?}: {result:?}"
            );
            assert_eq!(script.seen.lock().unwrap().len(), attempts, "{statuses:?}");
        }
    }

    #[tokio::test]
    async fn a_slow_answer_ends_each_attempt_at_its_bound() {
        let script = Script {
            delay: Duration::from_secs(5),
            ..Script::default()
        };
        let endpoint = serve(script.clone()).await;
        let started = std::time::Instant::now();
        let result = SignedPoster::new(&sdk(), &endpoint, quick(2, Duration::from_millis(200)))
            .post("abc=", Bytes::from_static(b"{}"))
            .await;
        assert!(
            matches!(result, Err(PostError::Timeout(d)) if d == Duration::from_millis(200)),
            "{result:?}"
        );
        assert_eq!(
            script.seen.lock().unwrap().len(),
            2,
            "both attempts were made"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "gave up before the server answered"
        );
    }

    /// One post of `{}` with `sdk`'s settings, one attempt.
    async fn post_once(sdk: &SdkConfig, endpoint: &str) -> Result<(), PostError> {
        SignedPoster::new(sdk, endpoint, quick(1, Duration::from_secs(1)))
            .post("abc=", Bytes::from_static(b"{}"))
            .await
    }

    #[tokio::test]
    async fn bad_endpoints_and_missing_credentials_are_clear_errors() {
        for endpoint in [
            "not a url",
            "ftp://example.com/prod",
            "https://example.com/prod?x=1",
            "/prod",
            "https://example.com//prod",
            "https://example.com/a/../prod",
        ] {
            let err = post_once(&sdk(), endpoint).await.unwrap_err();
            assert!(matches!(err, PostError::Endpoint(_)), "{endpoint}: {err}");
            assert!(
                err.to_string()
                    .starts_with(&format!("bad management API endpoint {endpoint:?}: ")),
                "{err}"
            );
        }
        let local = "http://127.0.0.1:9/prod";
        let no_credentials = SdkConfig::builder()
            .region(Region::new("eu-west-1"))
            .build();
        let err = post_once(&no_credentials, local).await.unwrap_err();
        assert!(matches!(err, PostError::Credentials(_)), "{err}");
        let no_region = SdkConfig::builder()
            .credentials_provider(SharedCredentialsProvider::new(credentials()))
            .build();
        let err = post_once(&no_region, local).await.unwrap_err();
        assert!(matches!(err, PostError::NoRegion), "{err}");
    }
}
