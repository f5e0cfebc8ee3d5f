//! The HTTP API's errors: a status and a JSON body `{"code","message"}`. The codes are the
//! WebSocket protocol's error codes, plus `not_found` and `method_not_allowed` for what only
//! HTTP can get wrong.

use echo_core::protocol::{ErrorCode, ProtocolError};
use http::StatusCode;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl HttpError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 413: the body, or the message as it would be delivered, is over the message limit.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::TooLarge.as_str(),
            message,
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest.as_str(),
            message,
        )
    }

    pub fn body(&self) -> String {
        serde_json::json!({"code": self.code, "message": self.message}).to_string()
    }
}

/// A refusal of the protocol, as HTTP says it.
impl From<ProtocolError> for HttpError {
    fn from(e: ProtocolError) -> Self {
        let status = match e.code {
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized | ErrorCode::TokenExpired | ErrorCode::SessionEnded => {
                StatusCode::UNAUTHORIZED
            }
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::RateLimited | ErrorCode::LimitExceeded => StatusCode::TOO_MANY_REQUESTS,
            // A function of the channel failed and its policy is `reject`: an upstream failure.
            ErrorCode::FunctionFailed => StatusCode::BAD_GATEWAY,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, e.code.as_str(), e.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_protocol_code_has_a_status() {
        for code in ErrorCode::ALL {
            let e = HttpError::from(ProtocolError::new(code, "x"));
            assert!(
                e.status.is_client_error() || e.status.is_server_error(),
                "{code:?}"
            );
            assert_eq!(e.code, code.as_str());
        }
    }
}
