//! The management listener (loopback only, with a bearer token): API Gateway's @connections API
//! as the edge emulates it, and the associations the edge runs.
//!
//! - [`connections`]: `POST`, `GET` and `DELETE /@connections/{id}` (with or without a stage).
//! - [`error`]: errors as API Gateway answers them, named for the AWS SDKs.
//! - [`signature`]: SigV4 signatures checked as API Gateway checks them.
//! - [`associations`]: `GET` and `PUT /associations`.
//! - `GET /metrics`: the edge's metrics in Prometheus' text format ([`crate::metrics`]).
//! - [`latency`]: emulation only, the wait `--manage-latency` adds to each @connections request.

pub mod associations;
pub mod connections;
pub mod error;
pub mod latency;
pub mod signature;

use std::sync::Arc;

use axum::Router;
use axum::extract::State as AxState;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::state::State;
use error::ManagementError;

pub fn routes(state: Arc<State>) -> Router {
    Router::new()
        .route(
            "/@connections/{id}",
            get(connections::get)
                .post(connections::post)
                .delete(connections::delete),
        )
        .route(
            "/{stage}/@connections/{id}",
            get(connections::staged_get)
                .post(connections::staged_post)
                .delete(connections::staged_delete),
        )
        .route(
            "/associations",
            get(associations::get).put(associations::put),
        )
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_token,
        ))
        .with_state(state)
}

/// `GET /metrics`: Prometheus' text format (see [`crate::metrics`]).
async fn metrics(AxState(state): AxState<Arc<State>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(state.gateway.len()),
    )
        .into_response()
}

/// The most of a signed request's body read to check its signature: a frame at the message
/// limit and room to spare (a larger body is refused as too large, as API Gateway would).
const MAX_SIGNED_BODY: usize = 1024 * 1024;

/// The management API takes `Authorization: Bearer <token>`, or an AWS SigV4 `Authorization`
/// signed with the token as both the access key id and the secret key (what an AWS SDK sends when
/// given the token as its credentials), whose signature is checked as API Gateway checks it
/// ([`signature`]).
async fn require_token(
    AxState(state): AxState<Arc<State>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if request.uri().path() == "/healthz" {
        return next.run(request).await;
    }
    let token = state.config.manage_token.as_str();
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match given.as_deref() {
        Some(v)
            if v.strip_prefix("Bearer ")
                .is_some_and(|given| constant_time_eq(given.as_bytes(), token.as_bytes())) =>
        {
            return next.run(request).await;
        }
        Some(v) if v.starts_with("AWS4-HMAC-SHA256 ") => {
            let (parts, body) = request.into_parts();
            let Ok(body) = axum::body::to_bytes(body, MAX_SIGNED_BODY).await else {
                return ManagementError::PayloadTooLarge
                    .answer(format!("the body is over {MAX_SIGNED_BODY} bytes"));
            };
            return match signature::verify(&parts, &body, v, token, std::time::SystemTime::now()) {
                Ok(()) => {
                    next.run(axum::extract::Request::from_parts(parts, body.into()))
                        .await
                }
                Err(e @ signature::SignatureError::UnknownKey) => {
                    tracing::debug!(error = %e, "management request refused");
                    ManagementError::Forbidden
                        .answer("The security token included in the request is invalid.")
                }
                Err(e @ signature::SignatureError::Malformed(_)) => {
                    ManagementError::IncompleteSignature.answer(e.to_string())
                }
                Err(e) => ManagementError::InvalidSignature.answer(e.to_string()),
            };
        }
        _ => {}
    }
    ManagementError::Forbidden.answer(
        "Forbidden: send Authorization: Bearer <management token>, or sign with it as the access key and secret",
    )
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
