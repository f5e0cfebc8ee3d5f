//! The management API's hot path: `POST /@connections/{id}`, signed with SigV4
//! ([`PostSigner`]) and sent over a kept-alive hyper connection pool.
//!
//! A post is a small body out and an empty body back, and fan-out makes one per subscriber. The
//! SDK's general request pipeline (interceptors, endpoint rules, config lookups) cost most of a
//! post's CPU, and Lambda gives CPU in proportion to memory, so this path skips it. It keeps
//! what matters from it: the same request and signature, credentials refreshed before they
//! expire, a bound on each attempt, and the SDK's standard retry policy (three attempts,
//! exponential backoff with full jitter).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_async::time::SharedTimeSource;
use aws_smithy_http::label::{EncodingStrategy, fmt_string};
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use thiserror::Error;
use tokio::sync::Mutex as AsyncMutex;

use crate::sigv4::{self, PostSigner};

/// Credentials are fetched again this long before they expire.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

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
    #[error(transparent)]
    Endpoint(#[from] BadEndpoint),
}

/// An endpoint posts cannot be sent to.
#[derive(Debug, Clone, Error)]
#[error("bad management API endpoint {endpoint:?}: {reason}")]
pub struct BadEndpoint {
    pub endpoint: String,
    pub reason: String,
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
            | Self::Endpoint(_) => false,
        }
    }
}

/// How often and how patiently a post is tried.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub max_attempts: u32,
    /// The first backoff's ceiling; each further one doubles it, up to `max_backoff`. The wait
    /// is drawn uniformly below the ceiling (full jitter).
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// The longest one attempt may take, response body included.
    pub attempt_timeout: Duration,
}

impl Retry {
    /// The SDK's standard retry mode, with Echo's bound on an attempt.
    pub fn standard(attempt_timeout: Duration) -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(20),
            attempt_timeout,
        }
    }

    fn backoff(&self, failed_attempts: u32) -> Duration {
        let ceiling = self
            .initial_backoff
            .saturating_mul(1 << failed_attempts.saturating_sub(1).min(16))
            .min(self.max_backoff);
        ceiling.mul_f64(rand::random::<f64>())
    }
}

/// Where posts go: `{scheme}://{authority}{prefix}/@connections/{id}`.
#[derive(Debug, Clone)]
struct Endpoint {
    base: String,
    authority: String,
    host: http::HeaderValue,
}

impl Endpoint {
    fn parse(endpoint: &str) -> Result<Self, BadEndpoint> {
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
    fn connection(&self, id: &str) -> Result<Uri, BadEndpoint> {
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

/// Credentials kept until shortly before they expire; one refresh at a time.
#[derive(Debug)]
struct CachedIdentity {
    provider: SharedCredentialsProvider,
    current: Mutex<Option<Credentials>>,
    refreshing: AsyncMutex<()>,
}

impl CachedIdentity {
    fn fresh(&self, now: SystemTime) -> Option<Credentials> {
        let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        current
            .as_ref()
            .filter(|c| c.expiry().is_none_or(|e| now + REFRESH_BEFORE_EXPIRY < e))
            .cloned()
    }

    async fn get(&self, now: SystemTime) -> Result<Credentials, PostError> {
        if let Some(identity) = self.fresh(now) {
            return Ok(identity);
        }
        let _one = self.refreshing.lock().await;
        if let Some(identity) = self.fresh(now) {
            return Ok(identity);
        }
        let credentials = self
            .provider
            .provide_credentials()
            .await
            .map_err(|e| PostError::Credentials(Box::new(e)))?;
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(credentials.clone());
        Ok(credentials)
    }
}

/// HTTPS with the system's CA certificates (and plain HTTP, for the local edge).
fn connector() -> Result<HttpsConnector<HttpConnector>, String> {
    let provider = || rustls::crypto::aws_lc_rs::default_provider();
    let builder = match hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(provider())
    {
        Ok(builder) => builder,
        Err(e) => {
            tracing::warn!(error = %e, "no CA certificates found: HTTPS posts will fail");
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS setup failed: {e}"))?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config)
        }
    };
    Ok(builder.https_or_http().enable_http1().build())
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
    http: Result<Client<HttpsConnector<HttpConnector>, Full<Bytes>>, String>,
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
        let http = connector().map(|https| {
            Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(60))
                .build(https)
        });
        Self {
            inner: Arc::new(Inner {
                endpoint: Endpoint::parse(endpoint),
                signer: sdk
                    .region()
                    .map(|r| r.as_ref())
                    .filter(|r| !r.is_empty())
                    .map(PostSigner::new),
                identity: sdk.credentials_provider().map(|provider| CachedIdentity {
                    provider,
                    current: Mutex::new(None),
                    refreshing: AsyncMutex::new(()),
                }),
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
        let timeout = inner.retry.attempt_timeout;
        tokio::time::timeout(timeout, async {
            let http = inner
                .http
                .as_ref()
                .map_err(|e| PostError::Transport(e.clone().into()))?;
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

    use std::sync::atomic::{AtomicUsize, Ordering};

    use aws_credential_types::Credentials;
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

    #[tokio::test]
    async fn credentials_are_fetched_again_before_they_expire() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let cache = CachedIdentity {
            provider: SharedCredentialsProvider::new(
                aws_credential_types::credential_fn::provide_credentials_fn(move || {
                    let n = counted.fetch_add(1, Ordering::SeqCst);
                    async move {
                        Ok(Credentials::new(
                            format!("AKID{n}"),
                            "secret",
                            None,
                            Some(time() + Duration::from_secs(600)),
                            "tests",
                        ))
                    }
                }),
            ),
            current: Mutex::new(None),
            refreshing: AsyncMutex::new(()),
        };
        let key = |c: &Credentials| c.access_key_id().to_owned();
        assert_eq!(key(&cache.get(time()).await.unwrap()), "AKID0");
        assert_eq!(
            key(&cache.get(time() + Duration::from_secs(60)).await.unwrap()),
            "AKID0"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1, "kept while fresh");
        // Within five minutes of expiry: fetched again.
        assert_eq!(
            key(&cache.get(time() + Duration::from_secs(360)).await.unwrap()),
            "AKID1"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
