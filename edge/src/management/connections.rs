//! `/@connections/{id}`: the API Gateway management API, as the edge emulates it. Errors are
//! answered as API Gateway answers them ([`super::error`]): 410 `GoneException`, 413
//! `PayloadTooLargeException`, 429 `LimitExceededException`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use echo_core::gateway::{Frame, Gateway, GatewayError};
use echo_core::ids::ConnectionId;

use super::error::ManagementError;
use crate::state::State;

fn gateway_error(id: &str, e: GatewayError) -> Response {
    match e {
        GatewayError::Gone => ManagementError::Gone.answer(format!("no connection {id}")),
        GatewayError::Overloaded => ManagementError::LimitExceeded.answer(format!(
            "connection {id} has more frames waiting than it may"
        )),
        GatewayError::Throttled => {
            ManagementError::LimitExceeded.answer("too many requests: slow down")
        }
        GatewayError::TooLarge => {
            ManagementError::PayloadTooLarge.answer("the frame is over the message limit")
        }
        GatewayError::Other(e) => ManagementError::BadRequest.answer(e.to_string()),
    }
}

pub async fn post(
    AxState(state): AxState<Arc<State>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    emulated_latency(&state).await;
    let max = state.config.limits.max_message_bytes;
    if body.len() > max {
        return ManagementError::PayloadTooLarge.answer(format!(
            "the frame is {} bytes, over the {max}-byte message limit",
            body.len()
        ));
    }
    let Ok(frame) = Frame::from_bytes(body) else {
        return ManagementError::BadRequest
            .answer("the local edge sends text frames: the body must be UTF-8");
    };
    match state.gateway.post(&ConnectionId(id.clone()), &frame).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => gateway_error(&id, e),
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
    match state.gateway.info(&ConnectionId(id.clone())).await {
        Ok(info) => Json(info).into_response(),
        Err(e) => gateway_error(&id, e),
    }
}

pub async fn delete(AxState(state): AxState<Arc<State>>, Path(id): Path<String>) -> Response {
    emulated_latency(&state).await;
    match state.gateway.close(&ConnectionId(id.clone())).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => gateway_error(&id, e),
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
