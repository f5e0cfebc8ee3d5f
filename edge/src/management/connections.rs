//! `/@connections/{id}`: the API Gateway management API, as the edge emulates it. Answers use
//! API Gateway's status codes and error names (410 `GoneException`, 413
//! `PayloadTooLargeException`, 429 `LimitExceededException`).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use echo_core::gateway::{Frame, Gateway, GatewayError};
use echo_core::ids::ConnectionId;
use serde_json::json;

use crate::state::State;

fn gone() -> Response {
    (StatusCode::GONE, Json(json!({"message": "GoneException"}))).into_response()
}

fn gateway_error(e: GatewayError) -> Response {
    match e {
        GatewayError::Gone => gone(),
        GatewayError::Overloaded | GatewayError::Throttled => (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({"message": "LimitExceededException"})),
        )
            .into_response(),
        GatewayError::TooLarge => (
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(json!({"message": "PayloadTooLargeException"})),
        )
            .into_response(),
        GatewayError::Other(e) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": e.to_string()})),
        )
            .into_response(),
    }
}

pub async fn post(
    AxState(state): AxState<Arc<State>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    emulated_latency(&state).await;
    if body.len() > state.config.limits.max_message_bytes {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(json!({"message": "PayloadTooLargeException"})),
        )
            .into_response();
    }
    let Ok(frame) = Frame::from_bytes(body) else {
        return (StatusCode::BAD_REQUEST, Json(json!({"message": "BadRequestException: the local edge sends text frames; the body must be UTF-8"}))).into_response();
    };
    match state.gateway.post(&ConnectionId(id), &frame).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => gateway_error(e),
    }
}

/// Waits `manage_latency`, as a request to API Gateway's management API would take (emulation
/// only).
async fn emulated_latency(state: &State) {
    if let Some(line) = &state.manage_delay {
        line.wait(state.config.manage_latency).await;
    }
}

pub async fn get(AxState(state): AxState<Arc<State>>, Path(id): Path<String>) -> Response {
    emulated_latency(&state).await;
    match state.gateway.info(&ConnectionId(id)).await {
        Ok(info) => Json(info).into_response(),
        Err(e) => gateway_error(e),
    }
}

pub async fn delete(AxState(state): AxState<Arc<State>>, Path(id): Path<String>) -> Response {
    emulated_latency(&state).await;
    match state.gateway.close(&ConnectionId(id)).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => gateway_error(e),
    }
}

pub async fn staged_post(
    s: AxState<Arc<State>>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    post(s, Path(id), body).await
}

pub async fn staged_get(s: AxState<Arc<State>>, Path((_, id)): Path<(String, String)>) -> Response {
    get(s, Path(id)).await
}

pub async fn staged_delete(
    s: AxState<Arc<State>>,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    delete(s, Path(id)).await
}
