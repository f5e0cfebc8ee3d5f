//! What the client listener serves: the WebSocket upgrade and the demo page at `/`, the demo's
//! files, the HTTP API (`/v1/...`), `/dev/token` (dev mode) and `/healthz`.

use std::sync::Arc;

use axum::Router;
use axum::routing::{any, get};

use crate::state::State;

pub fn routes(state: Arc<State>) -> Router {
    Router::new()
        .route("/", get(crate::upgrade::root))
        .merge(crate::demo::routes())
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/{*path}", any(crate::http_api::serve))
        .merge(crate::dev_token::routes())
        .with_state(state)
}
