//! The client's tunables.

use std::time::Duration;

/// Tunables, with defaults for API Gateway.
#[derive(Debug, Clone)]
pub struct Options {
    /// Ping when nothing was sent for this long (API Gateway's idle timeout is 10 minutes).
    pub ping_interval: Duration,
    /// Replace the connection after this long (API Gateway closes connections at 2 hours).
    pub renew_after: Duration,
    /// How long a request waits for its reply.
    pub request_timeout: Duration,
    /// How long opening a WebSocket may take.
    pub connect_timeout: Duration,
    /// First reconnect delay; it doubles per failed attempt up to `backoff_max` (full jitter).
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Publishes kept while disconnected, sent once the connection is back.
    pub publish_queue: usize,
    /// Messages buffered per subscription; when full, reading from the socket waits.
    pub subscription_buffer: usize,
    /// How long a message that arrives after a gap in seq waits for the messages before it
    /// (fan-out on AWS may deliver a channel's messages in either order) before they are read
    /// from history.
    pub reorder_hold: Duration,
    /// Largest publish frame sent (Echo's and API Gateway's limit is 128 KB); larger ones fail
    /// with [`Error::TooLarge`] without being sent.
    pub max_message_bytes: usize,
    /// A publish whose ack a lost connection took is sent again, with the same id, on the next
    /// connection if it was first sent less than this long ago. Echo commits an id once per
    /// channel within its dedup window (2 minutes by default), so keep this within that window:
    /// the publish is then stored exactly once. Older ones fail with [`Error::Disconnected`]
    /// (they may or may not have been stored).
    ///
    /// [`Error::Disconnected`]: crate::Error::Disconnected
    pub resend_within: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(5 * 60),
            renew_after: Duration::from_secs(115 * 60),
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            backoff_base: Duration::from_millis(250),
            backoff_max: Duration::from_secs(30),
            publish_queue: 1000,
            subscription_buffer: 1024,
            reorder_hold: Duration::from_millis(250),
            max_message_bytes: 128 * 1024,
            resend_within: Duration::from_secs(120),
        }
    }
}
