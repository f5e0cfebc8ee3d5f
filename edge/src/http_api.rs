//! Echo's HTTP API on the client port (`/v1/...`): the request handed to the same handler code
//! the HTTP API Lambda runs on AWS (`http-api`), in-process over the edge's ports, or in faithful
//! mode as an API Gateway HTTP API event to the `http-api` Lambda itself.

use std::sync::Arc;

use aws_lambda_events::encodings::Body as EventBody;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use http_api::HttpError;

use crate::client_socket::Peer;
use crate::handlers::Handlers;
use crate::state::State;

/// `/v1/{*path}`, any method.
pub async fn serve(
    AxState(state): AxState<Arc<State>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    // One byte over the message limit is enough to tell that the body is too large.
    let limit = state.config.limits.max_message_bytes + 1;
    let Ok(body) = axum::body::to_bytes(body, limit).await else {
        return refusal(HttpError::too_large(format!(
            "the body is over the {}-byte message limit",
            state.config.limits.max_message_bytes
        )));
    };
    match &state.handlers {
        Handlers::InProcess(handlers) => {
            let response =
                http_api::handle(&handlers.message, Request::from_parts(parts, body)).await;
            response.map(Body::from).into_response()
        }
        Handlers::Lambda {
            endpoint, client, ..
        } => {
            let source_ip = peer.addr.ip().to_string();
            let event =
                crate::http_events::request(&parts, &body, &source_ip, state.clock.now_ms());
            let answer = crate::handlers::invoke_http_api(client, endpoint, &event).await;
            let status = u16::try_from(answer.status_code)
                .ok()
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = match answer.body {
                Some(EventBody::Text(t)) => Body::from(t),
                Some(EventBody::Binary(b)) => Body::from(b),
                _ => Body::empty(),
            };
            let mut response = (status, body).into_response();
            response.headers_mut().extend(answer.headers);
            response
        }
    }
}

fn refusal(e: HttpError) -> Response {
    (
        e.status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        e.body(),
    )
        .into_response()
}
