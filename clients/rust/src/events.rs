//! The connection's state, and what happened to it.

use std::time::Duration;

use crate::error::Error;

/// The connection's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Connecting,
    Open,
    Reconnecting,
    Closed,
}

/// What happened to the connection, for logs and UIs.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A connection is open (`planned` when it replaced one before its maximum age).
    Open { planned: bool },
    /// The connection dropped; the next attempt starts after `delay`.
    Reconnecting {
        attempt: u32,
        delay: Duration,
        /// The close code, if Echo sent one.
        code: Option<u16>,
        reason: String,
    },
    /// The client stopped for good.
    Closed { code: Option<u16>, reason: String },
    /// Messages `from..=to` on `channel` could not be recovered (history no longer has them).
    Gap { channel: String, from: u64, to: u64 },
    /// User `sub` joined `channel`, subscribed with presence, at `ts` (milliseconds since the
    /// epoch). `seq` numbers the channel's presence events; it is `None` when the join was found
    /// by comparing a member list read again (the first, after a reconnect, after events went
    /// missing) with the one kept.
    Join {
        channel: String,
        sub: String,
        ts: u64,
        seq: Option<u64>,
    },
    /// User `sub` left `channel`; as [`Event::Join`].
    Leave {
        channel: String,
        sub: String,
        ts: u64,
        seq: Option<u64>,
    },
    /// A message on an encrypted channel could not be decrypted (a wrong or unknown key, a
    /// tampered or truncated envelope, or plaintext where an envelope belongs); it was not
    /// handed over, and delivery went on after it.
    DecryptError {
        channel: String,
        seq: u64,
        id: String,
        error: crate::e2e::DecryptError,
    },
    /// Something failed without a caller to tell, such as a resubscribe refused after reconnect
    /// (the subscription then ends).
    Error {
        channel: Option<String>,
        error: Error,
    },
}
