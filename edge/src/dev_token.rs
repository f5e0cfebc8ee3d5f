//! `/dev/token`: tokens for any app and user, served in dev mode only.

use std::sync::Arc;

use axum::extract::{Query, State as AxState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use echo_core::auth::{Claims, Role};
use echo_core::channel::AppId;
use serde::Deserialize;
use serde_json::json;

use crate::state::State;

/// `GET /dev/token?app=&sub=&role=&ttl=`; 404 unless the edge runs in dev mode.
pub fn routes() -> Router<Arc<State>> {
    Router::new().route("/dev/token", get(dev_token))
}

#[derive(Deserialize)]
struct DevTokenQuery {
    app: Option<String>,
    sub: Option<String>,
    role: Option<Role>,
    /// Seconds.
    ttl: Option<u64>,
}

/// Longest lifetime of a dev token: a day.
const MAX_DEV_TTL: u64 = 24 * 60 * 60;

async fn dev_token(
    AxState(state): AxState<Arc<State>>,
    headers: HeaderMap,
    Query(q): Query<DevTokenQuery>,
) -> Response {
    if !state.config.dev_mode {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    let app = match AppId::new(q.app.unwrap_or_else(|| "chat-demo".into())) {
        Ok(a) => a,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": e.to_string()})),
            )
                .into_response();
        }
    };
    let sub = q
        .sub
        .unwrap_or_else(|| format!("guest-{}", echo_core::ids::random_hex(2)));
    if let Err(e) = echo_core::auth::check_sub(&sub) {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": e}))).into_response();
    }
    let ttl = q.ttl.unwrap_or(3600).clamp(1, MAX_DEV_TTL);
    let now = state.clock.now_secs();
    let claims = Claims::new(app.clone(), sub.clone(), now + ttl)
        .with_role(q.role.unwrap_or_default())
        .issued_at(now);
    match state.issuer.issue(&claims) {
        Ok(token) => {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .unwrap_or_else(|| state.config.listen.to_string());
            let url = format!("ws://{host}/?token={token}");
            Json(
                json!({"token": token, "url": url, "app": app, "sub": sub, "expiresAt": now + ttl}),
            )
            .into_response()
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}
