//! Echo's HTTP API on the client port (`/v1/...`): the request handed to the same handler code
//! the HTTP API Lambda runs on AWS (`http-api`), over the in-process handlers' ports.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State as AxState};
use axum::response::{IntoResponse, Response};
use http_api::HttpError;

use crate::handlers::Handlers;
use crate::state::State;

/// `/v1/{*path}`, any method.
pub async fn serve(AxState(state): AxState<Arc<State>>, request: Request) -> Response {
    let Handlers::InProcess(handlers) = &state.handlers else {
        return refusal(HttpError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the HTTP API is not served in faithful mode",
        ));
    };
    let (parts, body) = request.into_parts();
    // One byte over the message limit is enough to tell that the body is too large.
    let limit = state.config.limits.max_message_bytes + 1;
    let body = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return refusal(HttpError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!(
                    "the body is over the {}-byte message limit",
                    state.config.limits.max_message_bytes
                ),
            ));
        }
    };
    let response = http_api::handle(&handlers.message, Request::from_parts(parts, body)).await;
    response.map(Body::from).into_response()
}

fn refusal(e: HttpError) -> Response {
    (
        e.status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        e.body(),
    )
        .into_response()
}
