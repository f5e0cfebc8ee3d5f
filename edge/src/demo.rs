//! The chat demo's files and the JavaScript client, served by the client listener.

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const INDEX_HTML: &str = include_str!("../../apps/chat/index.html");
const APP_JS: &str = include_str!("../../apps/chat/app.js");
const STYLE_CSS: &str = include_str!("../../apps/chat/style.css");
/// The JavaScript client, which the chat demo imports.
const ECHO_JS: &str = include_str!("../../clients/js/echo.js");

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// The demo page: what `/` answers a request that is not a WebSocket upgrade.
pub fn index() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        INDEX_HTML,
    )
        .into_response()
}

/// The demo's other files and `/echo.js`.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/app.js",
            get(|| async { ([(header::CONTENT_TYPE, JAVASCRIPT)], APP_JS) }),
        )
        .route(
            "/echo.js",
            get(|| async { ([(header::CONTENT_TYPE, JAVASCRIPT)], ECHO_JS) }),
        )
        .route(
            "/style.css",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
                    STYLE_CSS,
                )
            }),
        )
}
