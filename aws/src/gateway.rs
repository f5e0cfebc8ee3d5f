//! API Gateway's management API (`@connections`) as the core's [`Gateway`]: posts go through
//! [`SignedPoster`](crate::signed::SignedPoster), the rarer calls through the AWS SDK.

use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::config::{Builder, StalledStreamProtectionConfig, timeout};
use echo_core::gateway::{ConnectionInfo, Frame, Gateway, GatewayError, Identity};
use echo_core::ids::ConnectionId;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use crate::signed::{PostError, Retry, SignedPoster};

/// The management API at one endpoint, with bounded concurrency.
#[derive(Debug, Clone)]
pub struct ManagementApi {
    client: Client,
    poster: SignedPoster,
    /// Posts in flight at once in `post_many`: fan-out spends the account's shared request budget.
    concurrency: usize,
}

impl ManagementApi {
    /// The API at `endpoint` (`https://{api}.execute-api.{region}.amazonaws.com/{stage}`), with
    /// `sdk`'s region, credentials and clock.
    pub fn new(sdk: &SdkConfig, endpoint: &str, concurrency: usize) -> Self {
        let config = configure(Builder::from(sdk).endpoint_url(endpoint)).build();
        Self {
            client: Client::from_conf(config),
            poster: SignedPoster::new(sdk, endpoint, retry(sdk)),
            concurrency: concurrency.max(1),
        }
    }

    /// The local edge's management API at `endpoint`, signing with its management token as the
    /// access key id and the secret key, which the edge checks the signature with.
    pub fn local(endpoint: &str, token: &str, concurrency: usize) -> Self {
        use aws_sdk_apigatewaymanagement::config::{
            BehaviorVersion, Credentials, Region, SharedCredentialsProvider,
        };
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                token,
                token,
                None,
                None,
                "echo-local",
            )))
            .build();
        Self::new(&sdk, endpoint, concurrency)
    }
}

/// Posts retry as `sdk` says (its `RetryConfig`, the standard mode's without one), each attempt
/// bounded at [`ATTEMPT_TIMEOUT`].
fn retry(sdk: &SdkConfig) -> Retry {
    match sdk.retry_config() {
        Some(config) => Retry::from_config(config, ATTEMPT_TIMEOUT),
        None => Retry::standard(ATTEMPT_TIMEOUT),
    }
}

/// The longest one attempt at a management API call may take; the retry policy (the SDK's
/// standard one, or [`Retry::standard`] for posts) then decides whether to try again.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

/// The settings the SDK's management API client (closing, reading a connection) gets. Its
/// bodies are a few bytes each way, so the SDK's stalled-stream protection (a throughput check
/// around every body) is off, and a bound on each attempt keeps a stalled call from waiting until
/// the Lambda times out.
pub fn configure(builder: Builder) -> Builder {
    builder
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .timeout_config(
            timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .build(),
        )
}

type SdkError<E> = aws_sdk_apigatewaymanagement::error::SdkError<
    E,
    aws_sdk_apigatewaymanagement::config::http::HttpResponse,
>;

/// 410 (`GoneException`) means the connection is gone; 429 (`LimitExceededException`) is the
/// account's request budget; 413 (`PayloadTooLargeException`) a frame over 128 KB.
fn classified(
    status: Option<u16>,
    code: Option<&str>,
    e: Box<dyn std::error::Error + Send + Sync>,
) -> GatewayError {
    match (status, code) {
        (_, Some("GoneException")) | (Some(410), _) => GatewayError::Gone,
        (_, Some("LimitExceededException")) | (Some(429), _) => GatewayError::Throttled,
        (_, Some("PayloadTooLargeException")) | (Some(413), _) => GatewayError::TooLarge,
        _ => GatewayError::Other(e),
    }
}

fn classify_post(e: PostError) -> GatewayError {
    classified(e.status().map(|s| s.as_u16()), None, Box::new(e))
}

fn classify<E>(e: SdkError<E>) -> GatewayError
where
    E: aws_sdk_apigatewaymanagement::error::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
{
    let status = e.raw_response().map(|r| r.status().as_u16());
    let code = e
        .as_service_error()
        .and_then(|s| s.code())
        .map(str::to_owned);
    classified(status, code.as_deref(), Box::new(e))
}

#[async_trait]
impl Gateway for ManagementApi {
    async fn post(&self, id: &ConnectionId, frame: &Frame) -> Result<(), GatewayError> {
        self.poster
            .post(id.as_str(), frame.bytes().clone())
            .await
            .map_err(classify_post)
    }

    async fn post_many(
        &self,
        ids: &[ConnectionId],
        frame: &Frame,
    ) -> Vec<(ConnectionId, GatewayError)> {
        let mut failed = Vec::new();
        let mut in_flight = FuturesUnordered::new();
        let mut next = ids.iter();
        loop {
            while in_flight.len() < self.concurrency {
                let Some(id) = next.next() else { break };
                in_flight.push(async move { (id, self.post(id, frame).await) });
            }
            match in_flight.next().await {
                Some((id, Err(e))) => failed.push((id.clone(), e)),
                Some((_, Ok(()))) => {}
                None => return failed,
            }
        }
    }

    async fn close(&self, id: &ConnectionId) -> Result<(), GatewayError> {
        self.client
            .delete_connection()
            .connection_id(id.as_str())
            .send()
            .await
            .map(|_| ())
            .map_err(classify)
    }

    async fn info(&self, id: &ConnectionId) -> Result<ConnectionInfo, GatewayError> {
        let out = self
            .client
            .get_connection()
            .connection_id(id.as_str())
            .send()
            .await
            .map_err(classify)?;
        let time = |t: Option<&aws_sdk_apigatewaymanagement::primitives::DateTime>| {
            t.and_then(|t| {
                t.fmt(aws_sdk_apigatewaymanagement::primitives::DateTimeFormat::DateTime)
                    .ok()
            })
            .unwrap_or_default()
        };
        Ok(ConnectionInfo {
            connected_at: time(out.connected_at()),
            last_active_at: time(out.last_active_at()),
            identity: Identity {
                source_ip: out
                    .identity()
                    .and_then(|i| i.source_ip())
                    .unwrap_or_default()
                    .to_owned(),
                user_agent: out
                    .identity()
                    .and_then(|i| i.user_agent())
                    .unwrap_or_default()
                    .to_owned(),
            },
        })
    }
}
