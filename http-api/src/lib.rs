//! Echo's HTTP API, for application servers: publish to a channel and read its history over
//! HTTP, with an admin token of the app. The same code answers on the local edge (on its client
//! port) and as a Lambda behind an API Gateway HTTP API (`main.rs`, on `lambda_http`).
//!
//! - this file: a request in, a response out: authentication, the body, the answer.
//! - [`route`]: the paths and methods.
//! - [`error`]: statuses and error bodies.
//!
//! A publish goes through the channel's functions, limits and commit exactly as a WebSocket
//! publish does (`message_handler::server`), and WebSocket subscribers receive it.

pub mod error;
pub mod route;

use bytes::Bytes;
use echo_core::auth::Claims;
use echo_core::channel::{AppId, ChannelName};
use echo_core::ids::ConnectionId;
use echo_core::protocol::client_frame::MAX_CLIENT_ID_LEN;
use http::{HeaderValue, Request, Response, StatusCode, header};
use message_handler::Deps;
use message_handler::server;
use serde::Deserialize;
use serde_json::{Value, json};

pub use error::HttpError;
pub use route::Route;

/// History pages hold at most this many messages, as the `history` action's.
const MAX_LIMIT: u32 = 1000;
const DEFAULT_LIMIT: u32 = 100;

/// A publish's body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishBody {
    data: Value,
    #[serde(default)]
    id: Option<String>,
}

/// Answers `request`.
pub async fn handle(deps: &Deps, request: Request<Bytes>) -> Response<String> {
    // Browsers read refusals from pages of any origin; nothing else is for them.
    let any_origin = matches!(
        Route::of(request.method(), request.uri().path()),
        Ok(Route::ConnectAttempt { .. })
    );
    let answer = match answer(deps, &request).await {
        Ok(body) => (StatusCode::OK, body.to_string()),
        Err(e) => {
            if e.status.is_server_error() {
                tracing::error!(status = %e.status, code = e.code, message = %e.message, "http api");
            } else {
                tracing::debug!(status = %e.status, code = e.code, message = %e.message, "http api refused");
            }
            (e.status, e.body())
        }
    };
    let mut response = Response::new(answer.1);
    *response.status_mut() = answer.0;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if any_origin {
        response.headers_mut().insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
    }
    response
}

async fn answer(deps: &Deps, request: &Request<Bytes>) -> Result<Value, HttpError> {
    match Route::of(request.method(), request.uri().path())? {
        Route::Publish { app, channel } => {
            let (claims, origin) = admin(deps, request, &app).await?;
            publish(deps, &origin, &claims, &channel, request.body()).await
        }
        Route::History { app, channel } => {
            let (claims, origin) = admin(deps, request, &app).await?;
            let (since, limit) = history_query(request.uri().query())?;
            let page = server::history(deps, &origin, &claims, &channel, since, limit)
                .await
                .map_err(HttpError::from)?;
            Ok(json!({"channel": channel, "messages": page.messages, "more": page.more}))
        }
        Route::Presence { app, channel } => {
            let (claims, origin) = admin(deps, request, &app).await?;
            let after = presence_query(request.uri().query())?;
            let page = server::presence(deps, &origin, &claims, &channel, after.as_deref())
                .await
                .map_err(HttpError::from)?;
            Ok(json!({
                "channel": channel,
                "members": page.members,
                "seq": page.seq,
                "more": page.more,
            }))
        }
        Route::EndSessions { app, sub } => {
            admin(deps, request, &app).await?;
            let ended = message_handler::sessions::end_user_sessions(deps, &app, &sub)
                .await
                .map_err(HttpError::from)?;
            Ok(json!({"app": app, "sub": sub, "ended": ended}))
        }
        Route::ConnectAttempt { attempt } => {
            let now = deps.clock.now_ms();
            match deps.connections.refusal(&attempt, now).await {
                Ok(Some(r)) => {
                    Ok(json!({"status": r.status, "code": r.code, "message": r.message}))
                }
                Ok(None) => Err(HttpError::new(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    "no refusal is kept for this attempt: it was accepted, is older than a minute, or never came",
                )),
                Err(e) => {
                    tracing::error!(error = %e, "could not read a connect's refusal");
                    Err(HttpError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal",
                        "could not read the refusal",
                    ))
                }
            }
        }
    }
}

/// The request's admin token of `app`, and the origin its requests are counted under: the
/// token's subject stands for a connection (the local edge counts its rate per subject).
async fn admin(
    deps: &Deps,
    request: &Request<Bytes>,
    app: &AppId,
) -> Result<(Claims, ConnectionId), HttpError> {
    let claims = authorize(deps, request, app).await?;
    let origin = ConnectionId::from(format!("http:{}", claims.sub).as_str());
    Ok((claims, origin))
}

/// `after` (a user id, percent-encoded) from the query string.
fn presence_query(query: Option<&str>) -> Result<Option<String>, HttpError> {
    let mut after = None;
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        match pair.split_once('=').unwrap_or((pair, "")) {
            ("after", value) => {
                let value = percent_encoding::percent_decode_str(value)
                    .decode_utf8()
                    .map_err(|_| {
                        HttpError::bad_request("after is not valid percent-encoded UTF-8")
                    })?;
                after = Some(value.into_owned());
            }
            (other, _) => {
                return Err(HttpError::bad_request(format!(
                    "unknown parameter {other:?}: after is known"
                )));
            }
        }
    }
    Ok(after)
}

async fn publish(
    deps: &Deps,
    origin: &ConnectionId,
    claims: &Claims,
    channel: &ChannelName,
    body: &Bytes,
) -> Result<Value, HttpError> {
    let max = deps.limits.max_message_bytes;
    if body.len() > max {
        return Err(HttpError::too_large(format!(
            "the body is {} bytes, over the {max}-byte message limit",
            body.len()
        )));
    }
    let body: PublishBody = serde_json::from_slice(body).map_err(|e| {
        HttpError::bad_request(format!(
            "the body must be JSON {{\"data\": ANY, \"id\": OPTIONAL}}: {e}"
        ))
    })?;
    if let Some(id) = &body.id
        && (id.is_empty() || id.len() > MAX_CLIENT_ID_LEN)
    {
        return Err(HttpError::bad_request(format!(
            "id must be 1 to {MAX_CLIENT_ID_LEN} bytes"
        )));
    }
    let ack = server::publish(deps, origin, claims, channel, body.data, body.id)
        .await
        .map_err(HttpError::from)?;
    Ok(match ack.seq {
        Some(seq) if ack.duplicate => {
            json!({"channel": ack.channel, "seq": seq, "id": ack.id, "duplicate": true})
        }
        Some(seq) => json!({"channel": ack.channel, "seq": seq, "id": ack.id}),
        None => json!({
            "channel": ack.channel,
            "id": ack.id,
            "dropped": true,
            "reason": ack.reason,
        }),
    })
}

/// The claims of the request's `Authorization: Bearer` token, which must be an admin token of
/// `app`: 401 without a valid one, 403 for a user token or another app's.
async fn authorize(
    deps: &Deps,
    request: &Request<Bytes>,
    app: &AppId,
) -> Result<Claims, HttpError> {
    let unauthorized = |message: String| {
        HttpError::new(
            StatusCode::UNAUTHORIZED,
            echo_core::protocol::ErrorCode::Unauthorized.as_str(),
            message,
        )
    };
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            unauthorized("send Authorization: Bearer <an admin token of the app>".to_owned())
        })?;
    let claims = deps
        .verifier
        .verify(token.trim(), deps.clock.now_secs())
        .await
        .map_err(|e| unauthorized(format!("the token is not valid: {e}")))?;
    let forbidden = |message: String| {
        HttpError::new(
            StatusCode::FORBIDDEN,
            echo_core::protocol::ErrorCode::Forbidden.as_str(),
            message,
        )
    };
    if claims.app != *app {
        return Err(forbidden(format!(
            "the token is for app {:?}, not {:?}",
            claims.app.as_str(),
            app.as_str()
        )));
    }
    if !claims.is_admin() {
        return Err(forbidden(
            "the HTTP API takes admin tokens (echoctl jwt APP --admin)".to_owned(),
        ));
    }
    Ok(claims)
}

/// `since` (default 0) and `limit` (1 to 1,000, default 100) from the query string.
fn history_query(query: Option<&str>) -> Result<(u64, u32), HttpError> {
    let (mut since, mut limit) = (0u64, DEFAULT_LIMIT);
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| HttpError::bad_request(format!("{key} must be a whole number")))
        };
        match key {
            "since" => since = number()?,
            "limit" => {
                limit = match number()? {
                    n @ 1..=1000 => n as u32,
                    _ => {
                        return Err(HttpError::bad_request(format!(
                            "limit must be 1 to {MAX_LIMIT}"
                        )));
                    }
                }
            }
            other => {
                return Err(HttpError::bad_request(format!(
                    "unknown parameter {other:?}: since and limit are known"
                )));
            }
        }
    }
    Ok((since, limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_queries() {
        assert_eq!(history_query(None).unwrap(), (0, 100));
        assert_eq!(history_query(Some("since=5&limit=2")).unwrap(), (5, 2));
        for bad in ["limit=0", "limit=1001", "since=-1", "since=x", "page=2"] {
            assert_eq!(
                history_query(Some(bad)).unwrap_err().status,
                StatusCode::BAD_REQUEST,
                "{bad}"
            );
        }
    }
}
