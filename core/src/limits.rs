//! Limits every Echo deployment enforces. Defaults follow API Gateway's quotas so that what works
//! locally works on AWS.
//!
//! Where each is decided, on the local edge and on AWS:
//!
//! | limit | local edge | AWS |
//! | --- | --- | --- |
//! | frames per connection (`rate_limited`) | `core/src/admission/in_process.rs` | `core/src/admission/in_store.rs`, counted by `aws/src/store/dynamodb/allowance.rs` |
//! | subscriptions per connection (`limit_exceeded`) | `core/src/store/memory.rs` (`Subscriptions::subscribe`) | `aws/src/store/dynamodb/subscriptions.rs` |
//! | token expiry (`token_expired`) | `message-handler/src/admission.rs` | the same |
//! | message size (`too_large`) | `message-handler/src/lib.rs` (the frame), `message-handler/src/publish.rs` (the message as delivered) | the same |
//! | publish dedup window | `edge/src/store/redb/dedup.rs` (in the group commit) | `aws/src/store/dynamodb/history.rs` (a claim item, one conditional write) |
//! | connection age and record expiry | [`Limits::record_expiry`], and the edge's timers | the same, and API Gateway |

use crate::auth::LEEWAY_SECS;

/// API Gateway's largest WebSocket message: 128 KB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 128 * 1024;
/// Subscriptions one connection may hold.
pub const DEFAULT_MAX_SUBSCRIPTIONS: usize = 256;
/// API Gateway's maximum connection duration: 2 hours.
pub const DEFAULT_MAX_CONNECTION_AGE_SECS: u64 = 2 * 60 * 60;
/// How long past its token's expiry a connection may still `refresh` before it is forgotten.
pub const DEFAULT_TOKEN_GRACE_SECS: u64 = 30;
/// How long a publisher-given message id is remembered per channel: a publish repeating it
/// within this time is acknowledged with the first one's seq and not committed again.
pub const DEFAULT_DEDUP_WINDOW_SECS: u64 = 120;

/// Limits the handlers apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest client frame, and largest message after functions, in bytes.
    pub max_message_bytes: usize,
    /// Subscriptions one connection may hold; more get `limit_exceeded`.
    pub max_subscriptions: usize,
    /// How long a connection record lives without a `$disconnect` (its TTL), in seconds.
    pub max_connection_age_secs: u64,
    /// Seconds past its token's expiry (`exp` and the clock-skew tolerance) during which a connection's frames are refused with
    /// `token_expired` but a `refresh` is still accepted and messages still reach it. After
    /// that the connection's record is gone: nothing reaches it and its next frame closes it.
    pub token_grace_secs: u64,
    /// How long a publisher-given message id is remembered per channel, in seconds: a publish
    /// repeating it within this time is a duplicate. Never longer than history is kept.
    pub dedup_window_secs: u64,
}

impl Limits {
    /// When the record of a connection accepted at `connected_at_ms` with a token expiring at
    /// `token_exp` (seconds) is forgotten: at its maximum age, or when the grace after its
    /// token's expiry (counted, like the expiry itself, with the tolerance for clock skew) runs
    /// out, whichever comes first.
    pub fn record_expiry(&self, connected_at_ms: u64, token_exp: u64) -> u64 {
        (connected_at_ms / 1000 + self.max_connection_age_secs)
            .min(token_exp.saturating_add(LEEWAY_SECS + self.token_grace_secs))
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_subscriptions: DEFAULT_MAX_SUBSCRIPTIONS,
            max_connection_age_secs: DEFAULT_MAX_CONNECTION_AGE_SECS,
            token_grace_secs: DEFAULT_TOKEN_GRACE_SECS,
            dedup_window_secs: DEFAULT_DEDUP_WINDOW_SECS,
        }
    }
}
