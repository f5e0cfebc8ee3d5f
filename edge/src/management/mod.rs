//! The management listener (loopback only, with a bearer token): API Gateway's @connections API
//! as the edge emulates it, and the associations the edge runs.
//!
//! - [`connections`]: `POST`, `GET` and `DELETE /@connections/{id}` (with or without a stage).
//! - [`error`]: errors as API Gateway answers them, named for the AWS SDKs.
//! - [`associations`]: `GET` and `PUT /associations`.
//! - `GET /metrics`: the edge's metrics in Prometheus' text format ([`crate::metrics`]).
//! - [`latency`]: emulation only, the wait `--manage-latency` adds to each @connections request.

pub mod associations;
pub mod connections;
pub mod error;
pub mod latency;

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

/// The management API takes `Authorization: Bearer <token>`, or an AWS SigV4 `Authorization`
/// whose access key id is the token (what the AWS SDK's management client sends when given the
/// token as its access key). Signatures are not verified: the API only listens on loopback, and
/// the key id is as secret as a bearer token.
async fn require_token(
    AxState(state): AxState<Arc<State>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ").or_else(|| {
                v.strip_prefix("AWS4-HMAC-SHA256 ")?
                    .split(", ")
                    .find_map(|part| part.strip_prefix("Credential="))?
                    .split('/')
                    .next()
            })
        });
    if request.uri().path() == "/healthz"
        || given
            .is_some_and(|t| constant_time_eq(t.as_bytes(), state.config.manage_token.as_bytes()))
    {
        return next.run(request).await;
    }
    ManagementError::Forbidden.answer(
        "Forbidden: send Authorization: Bearer <management token>, or sign with it as the access key",
    )
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
