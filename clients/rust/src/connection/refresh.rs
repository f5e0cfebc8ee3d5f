//! Token refresh: ahead of the token's expiry, a new one from the application's provider is
//! presented with `refresh`, and the connection carries on without reconnecting.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use super::Task;
use crate::events::Event;
use crate::wire;

/// How long after a failed refresh (no token from the provider, or Echo refused it) it is tried
/// again, while the old token lasts.
const RETRY: Duration = Duration::from_secs(5);

/// When to refresh a token that expires at `exp` (seconds since the epoch): once four fifths of
/// its remaining life have passed, so that a failed attempt has time to be retried.
pub(super) fn ahead_of(exp: u64) -> Instant {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let left = Duration::from_secs(exp).saturating_sub(now);
    // Not sooner than a second from now unless the token is already out: a provider that hands
    // back the same token would otherwise be asked ever more often as its expiry nears.
    Instant::now() + left.mul_f64(0.8).max(left.min(Duration::from_secs(1)))
}

impl Task {
    /// Gets a new token and presents it.
    pub(super) async fn refresh(&mut self) {
        let token = self.setup.token.get().await;
        let Some(conn) = &mut self.conn else {
            return;
        };
        conn.refresh_at = None;
        match token {
            Ok(token) => {
                conn.refreshing = true;
                conn.send(wire::refresh(&token)).await;
            }
            Err(error) => {
                conn.refresh_at = Some(Instant::now() + RETRY);
                self.emit(Event::Error {
                    channel: None,
                    error,
                });
            }
        }
    }

    /// Echo took the new token, valid until `exp`.
    pub(super) fn refreshed(&mut self, exp: u64) {
        if let Some(conn) = &mut self.conn {
            conn.refreshing = false;
            conn.refresh_at = Some(ahead_of(exp));
        }
    }

    /// An error naming neither a channel nor a publish came: when a refresh is outstanding, it
    /// is the refusal of the new token, tried again shortly.
    pub(super) fn refresh_failed(&mut self) {
        if let Some(conn) = self.conn.as_mut().filter(|c| c.refreshing) {
            conn.refreshing = false;
            conn.refresh_at = Some(Instant::now() + RETRY);
        }
    }

    /// A request was refused because the token expired: refresh now, if a new token can be had.
    pub(super) fn token_expired(&mut self) {
        if !self.setup.token.renewable() {
            return;
        }
        if let Some(conn) = self.conn.as_mut().filter(|c| !c.refreshing) {
            conn.refresh_at = Some(Instant::now());
        }
    }
}
