//! What the client listener serves: the WebSocket upgrade at `/` (else the site's page), the HTTP
//! API (`/v1/...`), `/dev/token` (dev mode), `/healthz`, and the site's other files.

use std::sync::Arc;

use axum::Router;
use axum::extract::State as AxState;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};

use crate::state::State;

pub fn routes(state: Arc<State>) -> Router {
    Router::new()
        .route("/", get(crate::upgrade::root))
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/{*path}", any(crate::http_api::serve))
        .merge(crate::dev_token::routes())
        .fallback(site_file)
        .with_state(state)
}

/// What the client listener answers a path no route takes: the site's file (GET and HEAD), 405
/// for another method on one, else 404.
async fn site_file(AxState(state): AxState<Arc<State>>, method: Method, uri: Uri) -> Response {
    let site = &state.config.site;
    match method {
        Method::GET | Method::HEAD => site.response(uri.path()),
        _ if site.has(uri.path()) => (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
        )
            .into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}
