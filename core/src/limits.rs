//! Limits every Echo deployment enforces. Defaults follow API Gateway's quotas so that what works
//! locally works on AWS.

/// API Gateway's largest WebSocket message: 128 KB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 128 * 1024;
/// Subscriptions one connection may hold.
pub const DEFAULT_MAX_SUBSCRIPTIONS: usize = 256;
/// API Gateway's maximum connection duration: 2 hours.
pub const DEFAULT_MAX_CONNECTION_AGE_SECS: u64 = 2 * 60 * 60;

/// Limits the handlers apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest client frame, and largest message after functions, in bytes.
    pub max_message_bytes: usize,
    /// Subscriptions one connection may hold; more get `limit_exceeded`.
    pub max_subscriptions: usize,
    /// How long a connection record lives without a `$disconnect` (its TTL), in seconds.
    pub max_connection_age_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_subscriptions: DEFAULT_MAX_SUBSCRIPTIONS,
            max_connection_age_secs: DEFAULT_MAX_CONNECTION_AGE_SECS,
        }
    }
}
