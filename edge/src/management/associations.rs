//! `/associations`: the associations the edge runs, read and replaced while it runs.

use std::sync::Arc;

use axum::Json;
use axum::extract::State as AxState;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::State;

/// In faithful mode the handler Lambdas read associations from DynamoDB, not from the edge.
fn faithful_refusal(state: &State) -> Option<Response> {
    state.config.faithful.as_ref().map(|_| {
        (
            StatusCode::CONFLICT,
            Json(json!({"error": "in faithful mode associations live in DynamoDB: store them with `echo-aws-setup --associations FILE`"})),
        )
            .into_response()
    })
}

pub async fn get(AxState(state): AxState<Arc<State>>) -> Response {
    if let Some(r) = faithful_refusal(&state) {
        return r;
    }
    let a = state.associations.get();
    (
        [(header::CONTENT_TYPE, "application/json")],
        a.source().to_owned(),
    )
        .into_response()
}

pub async fn put(AxState(state): AxState<Arc<State>>, body: String) -> Response {
    if let Some(r) = faithful_refusal(&state) {
        return r;
    }
    match crate::associations::replace(
        &body,
        &state.associations,
        state.associations_store.as_ref(),
        state.invoker.as_ref(),
    )
    .await
    {
        Ok(a) => {
            tracing::info!(functions = ?a.function_names(), "associations replaced");
            Json(json!({"ok": true, "functions": a.function_names()})).into_response()
        }
        Err(crate::associations::LoadError::Store(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}
