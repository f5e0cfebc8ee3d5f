//! Errors as API Gateway's management API answers them, so that the AWS SDKs raise the modeled
//! exception by name: the status, the error's name in the `x-amzn-ErrorType` header (what the
//! restJson1 protocol reads first; the SDKs fall back to the body's `code` and `__type`), and a
//! JSON body with a `message` for people.

use axum::Json;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The header restJson1 clients read an error's name from.
pub const ERROR_TYPE: HeaderName = HeaderName::from_static("x-amzn-errortype");

/// The management API's errors, by the names its model gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManagementError {
    /// 403: the request's credentials are not the management token.
    Forbidden,
    /// 403: a SigV4 signature that does not match, or is too old (not one of the model's
    /// errors: the SDKs raise it by its name as a generic error, as they do on AWS).
    InvalidSignature,
    /// 403: a SigV4 `Authorization` header that lacks a part.
    IncompleteSignature,
    /// 410: no such connection (it closed, or never was).
    Gone,
    /// 413: a frame over API Gateway's 128 KB.
    PayloadTooLarge,
    /// 429: the connection's queue, or the request budget, is full.
    LimitExceeded,
    /// 400: what API Gateway would take but the edge cannot send (a frame that is not UTF-8
    /// text). Not one of the model's errors.
    BadRequest,
}

impl ManagementError {
    pub fn name(self) -> &'static str {
        match self {
            Self::Forbidden => "ForbiddenException",
            Self::InvalidSignature => "InvalidSignatureException",
            Self::IncompleteSignature => "IncompleteSignatureException",
            Self::Gone => "GoneException",
            Self::PayloadTooLarge => "PayloadTooLargeException",
            Self::LimitExceeded => "LimitExceededException",
            Self::BadRequest => "BadRequestException",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::Forbidden | Self::InvalidSignature | Self::IncompleteSignature => {
                StatusCode::FORBIDDEN
            }
            Self::Gone => StatusCode::GONE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::LimitExceeded => StatusCode::TOO_MANY_REQUESTS,
            Self::BadRequest => StatusCode::BAD_REQUEST,
        }
    }

    /// The answer, saying `message`.
    pub fn answer(self, message: impl Into<String>) -> Response {
        let mut r = (self.status(), Json(json!({"message": message.into()}))).into_response();
        r.headers_mut()
            .insert(ERROR_TYPE, HeaderValue::from_static(self.name()));
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_name_travels_in_the_header_and_the_message_in_the_body() {
        let r = ManagementError::Gone.answer("no connection abc");
        assert_eq!(r.status(), StatusCode::GONE);
        assert_eq!(r.headers()["x-amzn-errortype"], "GoneException");
        let body = axum::body::to_bytes(r.into_body(), 1024).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body, json!({"message": "no connection abc"}));
    }
}
