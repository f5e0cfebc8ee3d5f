//! WebSocket close codes, their ranges and whether a client reconnects after them.

/// WebSocket close codes Echo uses, in three ranges:
///
/// - 1000–2999: the WebSocket protocol's own (RFC 6455), with the meaning they have there.
/// - 4000–4499: Echo's, after which a client reconnects (with backoff, resubscribing with
///   `since`).
/// - 4500–4999: Echo's, after which a client does not reconnect on its own.
///
/// A client reconnects after any code but 1000 and 4500–4999 ([`reconnects_after`]), so a code
/// added later in either of Echo's ranges is understood by older clients. A close frame's reason
/// is at most [`MAX_CLOSE_REASON_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum CloseCode {
    /// Closed on request. Not reconnected: whoever asked for the close decides what follows.
    Normal = 1000,
    /// The edge is shutting down, the connection was idle too long, or it reached its maximum age
    /// (API Gateway: 10 minutes idle, 2 hours). Reconnect, resubscribing with `since`.
    GoingAway = 1001,
    /// A frame the transport could not take (a binary frame too large to answer). Reconnect, and do
    /// not resend it.
    MessageTooBig = 1009,
    /// The edge failed. Reconnect with backoff.
    InternalError = 1011,
    /// The client read too slowly and its outbound queue filled up. Reconnect and resubscribe with
    /// `since` to recover what was missed.
    SlowConsumer = 4008,
    /// Closed through the management API (`DELETE /@connections/{id}`). Not reconnected unless the
    /// app asks for it.
    ClosedByServer = 4500,
    /// The app ended this user's sessions (`DELETE /v1/apps/{app}/users/{sub}/connections`),
    /// after a `session_ended` error frame (which is what a client sees on AWS, where API
    /// Gateway closes with 1000). Not reconnected.
    SessionEnded = 4501,
}

/// The most bytes a close frame's reason carries (125 bytes of payload less the code).
pub const MAX_CLOSE_REASON_BYTES: usize = 123;

/// `reason` cut to what a close frame carries, on a character boundary.
pub fn close_reason(reason: &str) -> &str {
    let mut end = reason.len().min(MAX_CLOSE_REASON_BYTES);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

/// Echo's close codes after which a client reconnects.
pub const RECONNECT_RANGE: std::ops::RangeInclusive<u16> = 4000..=4499;
/// Echo's close codes after which a client does not reconnect on its own.
pub const TERMINAL_RANGE: std::ops::RangeInclusive<u16> = 4500..=4999;

/// Whether a client reconnects after a close with `code`, known to it or not.
pub fn reconnects_after(code: u16) -> bool {
    code != CloseCode::Normal.code() && !TERMINAL_RANGE.contains(&code)
}

impl CloseCode {
    /// Every close code, in the order of the enum.
    pub const ALL: [CloseCode; 7] = [
        Self::Normal,
        Self::GoingAway,
        Self::MessageTooBig,
        Self::InternalError,
        Self::SlowConsumer,
        Self::ClosedByServer,
        Self::SessionEnded,
    ];

    pub fn code(self) -> u16 {
        self as u16
    }

    /// The code's name in the protocol's codes fixture.
    pub fn name(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::GoingAway => "going_away",
            Self::MessageTooBig => "message_too_big",
            Self::InternalError => "internal_error",
            Self::SlowConsumer => "slow_consumer",
            Self::ClosedByServer => "closed_by_server",
            Self::SessionEnded => "session_ended",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ErrorCode;

    #[test]
    fn close_codes_sit_in_their_ranges() {
        for c in CloseCode::ALL {
            let code = c.code();
            assert!(
                (1000..=2999).contains(&code)
                    || RECONNECT_RANGE.contains(&code)
                    || TERMINAL_RANGE.contains(&code),
                "{c:?}"
            );
        }
        assert!(reconnects_after(CloseCode::SlowConsumer.code()));
        assert!(reconnects_after(4499) && reconnects_after(1006));
        assert!(!reconnects_after(CloseCode::ClosedByServer.code()));
        assert!(!reconnects_after(4999) && !reconnects_after(1000));
        let long = "é".repeat(100);
        assert_eq!(close_reason(&long).len(), 122, "whole characters only");
        assert_eq!(close_reason("short"), "short");
        for (i, e) in ErrorCode::ALL.iter().enumerate() {
            assert!(!ErrorCode::ALL[..i].contains(e), "{e:?} twice");
        }
    }
}
