//! Refusals: what an `error` frame says.

use thiserror::Error;

use super::error_code::ErrorCode;
use super::server_frame::{ErrorFrame, ServerFrame};
use crate::auth::Forbidden;
use crate::channel::ChannelName;

/// A refused frame: what goes back to the client as an `error` frame.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("{code:?}: {message}")]
pub struct ProtocolError {
    pub code: ErrorCode,
    pub message: String,
    pub id: Option<String>,
    pub channel: Option<ChannelName>,
}

impl ProtocolError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            id: None,
            channel: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    pub fn with_id(mut self, id: Option<String>) -> Self {
        if self.id.is_none() {
            self.id = id;
        }
        self
    }

    pub fn with_channel(mut self, channel: &ChannelName) -> Self {
        self.channel = Some(channel.clone());
        self
    }

    pub fn to_frame(&self) -> ServerFrame {
        ServerFrame::Error(ErrorFrame {
            code: self.code,
            message: self.message.clone(),
            id: self.id.clone(),
            channel: self.channel.clone(),
        })
    }
}

impl From<Forbidden> for ProtocolError {
    fn from(e: Forbidden) -> Self {
        Self::new(ErrorCode::Forbidden, e.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_token_does_not_allow_is_forbidden() {
        let e = ProtocolError::from(Forbidden("this token may not publish to channel a".into()));
        assert_eq!(e.code, ErrorCode::Forbidden);
        assert_eq!(e.message, "this token may not publish to channel a");
    }
}
