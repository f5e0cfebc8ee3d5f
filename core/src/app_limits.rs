//! Limits on a whole app, beside the per-connection ones ([`crate::limits`]): how many
//! connections it may hold at once. Set in the associations (`"limits"` of an app), so they
//! change live and hold on both paths.
//!
//! ```json
//! {"apps": {"chat": {"limits": {"maxConnections": 10000}}}}
//! ```
//!
//! Connections are counted from when the limit is set: those opened before it count once they
//! reconnect (within 2 hours, a connection's longest life).

use serde::{Deserialize, Serialize};

/// The most connections an app may be limited to (API Gateway's default quota for a region).
pub const MAX_APP_CONNECTIONS: u64 = 10_000_000;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppLimits {
    /// Connections the app may hold at once; a connect beyond them is refused with HTTP 503
    /// `limit_exceeded`. `None`: no limit but the edge's or the stack's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u64>,
}

impl AppLimits {
    /// What is wrong with the limits, if anything (for the associations' error, which names
    /// the place).
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if let Some(n) = self.max_connections
            && !(1..=MAX_APP_CONNECTIONS).contains(&n)
        {
            return Err((
                "maxConnections",
                format!("must be 1 to {MAX_APP_CONNECTIONS}"),
            ));
        }
        Ok(())
    }
}
