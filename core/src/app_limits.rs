//! Limits on a whole app, beside the per-connection ones ([`crate::limits`]): how many
//! connections it may hold at once, and how fast all of them (and its HTTP API publishes)
//! together may publish. Set in the associations (`"limits"` of an app), so they change live
//! and hold on both paths.
//!
//! ```json
//! {"apps": {"chat": {"limits": {"maxConnections": 10000, "publishRate": 500, "publishBurst": 1000}}}}
//! ```
//!
//! Connections are counted from when the limit is set: those opened before it count once they
//! reconnect (within 2 hours, a connection's longest life).

use serde::{Deserialize, Serialize};

use crate::rate::Allowance;

/// The highest `publishRate` (and `publishBurst`) an app may be given.
pub const MAX_APP_PUBLISH_RATE: u32 = 1_000_000;

/// The most connections an app may be limited to (API Gateway's default quota for a region).
pub const MAX_APP_CONNECTIONS: u64 = 10_000_000;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppLimits {
    /// Connections the app may hold at once; a connect beyond them is refused with HTTP 503
    /// `limit_exceeded`. `None`: no limit but the edge's or the stack's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u64>,
    /// Publishes a second the app may sustain, over all its connections and HTTP API
    /// publishes; a publish beyond it is refused with `rate_limited`. `None`: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_rate: Option<u32>,
    /// Publishes the app may make at once (default: twice `publishRate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_burst: Option<u32>,
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
        for (field, value) in [
            ("publishRate", self.publish_rate),
            ("publishBurst", self.publish_burst),
        ] {
            if let Some(n) = value
                && !(1..=MAX_APP_PUBLISH_RATE).contains(&n)
            {
                return Err((field, format!("must be 1 to {MAX_APP_PUBLISH_RATE}")));
            }
        }
        if self.publish_burst.is_some() && self.publish_rate.is_none() {
            return Err(("publishBurst", "needs a publishRate".to_owned()));
        }
        Ok(())
    }

    /// The app's publish allowance, counted in fixed windows ([`Allowance`]), if it has one.
    pub fn publish_allowance(&self) -> Option<Allowance> {
        let rate = self.publish_rate?;
        Allowance::new(rate, self.publish_burst.unwrap_or(rate.saturating_mul(2)))
    }
}
