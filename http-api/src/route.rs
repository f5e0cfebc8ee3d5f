//! The HTTP API's paths:
//!
//! - `POST /v1/apps/{app}/channels/{channel}/messages`: publish.
//! - `GET /v1/apps/{app}/channels/{channel}/messages?since=N&limit=M`: history.
//! - `GET /v1/apps/{app}/channels/{channel}/presence?after=USER`: a page of members.
//! - `DELETE /v1/apps/{app}/users/{sub}/connections`: end a user's sessions.
//! - `GET /v1/connect-attempts/{attempt}`: why a connect was refused.

use echo_core::channel::{AppId, ChannelName};
use echo_core::connect_attempt::AttemptId;
use http::{Method, StatusCode};

use crate::error::HttpError;

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Publish {
        app: AppId,
        channel: ChannelName,
    },
    History {
        app: AppId,
        channel: ChannelName,
    },
    Presence {
        app: AppId,
        channel: ChannelName,
    },
    /// `DELETE /v1/apps/{app}/users/{sub}/connections`: end the user's sessions.
    EndSessions {
        app: AppId,
        sub: String,
    },
    /// `GET /v1/connect-attempts/{attempt}`: why that connect was refused (no token: the id is
    /// the client's secret).
    ConnectAttempt {
        attempt: AttemptId,
    },
}

impl Route {
    /// The route of `method` on `path`: 404 for a path the API does not have, 405 for a method
    /// the path does not take, 400 for an invalid app or channel name.
    pub fn of(method: &Method, path: &str) -> Result<Self, HttpError> {
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        if let ["", "v1", "connect-attempts", attempt] = segments.as_slice() {
            let attempt = AttemptId::parse(attempt).ok_or_else(|| {
                HttpError::bad_request(
                    "an attempt id is 22 to 64 characters of A-Z, a-z, 0-9, _ and -",
                )
            })?;
            if method != Method::GET {
                return Err(HttpError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    format!("{method} is not allowed here: GET reads why the connect was refused"),
                ));
            }
            return Ok(Self::ConnectAttempt { attempt });
        }
        if let ["", "v1", "apps", app, "users", sub, "connections"] = segments.as_slice() {
            let decode = |s: &str| {
                percent_decode(s).ok_or_else(|| {
                    HttpError::bad_request(format!("{s:?} is not valid percent-encoded UTF-8"))
                })
            };
            let app =
                AppId::new(decode(app)?).map_err(|e| HttpError::bad_request(e.to_string()))?;
            let sub = decode(sub)?;
            echo_core::auth::check_sub(&sub).map_err(HttpError::bad_request)?;
            if method != Method::DELETE {
                return Err(HttpError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    format!("{method} is not allowed here: DELETE ends the user's sessions"),
                ));
            }
            return Ok(Self::EndSessions { app, sub });
        }
        let [
            "",
            "v1",
            "apps",
            app,
            "channels",
            channel,
            what @ ("messages" | "presence"),
        ] = segments.as_slice()
        else {
            return Err(HttpError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!(
                    "no such path {path:?}: the API has /v1/apps/APP/channels/CHANNEL/messages and .../presence, /v1/apps/APP/users/SUB/connections and /v1/connect-attempts/ID"
                ),
            ));
        };
        let decode = |s: &str| {
            percent_decode(s).ok_or_else(|| {
                HttpError::bad_request(format!("{s:?} is not valid percent-encoded UTF-8"))
            })
        };
        let app = AppId::new(decode(app)?).map_err(|e| HttpError::bad_request(e.to_string()))?;
        let channel = ChannelName::new(decode(channel)?)
            .map_err(|e| HttpError::bad_request(e.to_string()))?;
        match (*what, method.clone()) {
            ("messages", Method::POST) => Ok(Self::Publish { app, channel }),
            ("messages", Method::GET) => Ok(Self::History { app, channel }),
            ("presence", Method::GET) => Ok(Self::Presence { app, channel }),
            ("messages", _) => Err(HttpError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{method} is not allowed here: POST publishes, GET reads history"),
            )),
            _ => Err(HttpError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{method} is not allowed here: GET reads the members"),
            )),
        }
    }
}

/// `%XX` escapes decoded; `None` when they make invalid UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|d| d.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_methods() {
        let route = Route::of(&Method::POST, "/v1/apps/shop/channels/orders/messages").unwrap();
        assert!(
            matches!(route, Route::Publish { ref channel, .. } if channel.as_str() == "orders")
        );
        assert!(matches!(
            Route::of(&Method::GET, "/v1/apps/shop/channels/room%2D1/messages/").unwrap(),
            Route::History { ref channel, .. } if channel.as_str() == "room-1"
        ));
        assert!(matches!(
            Route::of(&Method::GET, "/v1/apps/shop/channels/lobby/presence").unwrap(),
            Route::Presence { ref channel, .. } if channel.as_str() == "lobby"
        ));
        let status = |m: &Method, p: &str| Route::of(m, p).unwrap_err().status;
        assert_eq!(
            status(&Method::POST, "/v1/apps/shop/channels/c/presence"),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            status(&Method::POST, "/v1/apps/shop"),
            StatusCode::NOT_FOUND
        );
        assert!(matches!(
            Route::of(&Method::DELETE, "/v1/apps/shop/users/ann%2Fo/connections").unwrap(),
            Route::EndSessions { ref sub, .. } if sub == "ann/o"
        ));
        assert_eq!(
            status(&Method::GET, "/v1/apps/shop/users/ann/connections"),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            status(&Method::DELETE, "/v1/apps/shop/users/%24echo/connections"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(&Method::DELETE, "/v1/apps/shop/channels/c/messages"),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            status(&Method::POST, "/v1/apps/shop/channels/a%20b/messages"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(&Method::POST, "/v1/apps/shop/channels/%ff/messages"),
            StatusCode::BAD_REQUEST
        );
    }
}
