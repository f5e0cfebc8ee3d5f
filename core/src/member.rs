//! A member of a channel, as presence lists it.

use serde::{Deserialize, Serialize};

/// A user on a channel: its token's `sub` and how many of its connections are subscribed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub sub: String,
    pub connections: u32,
}
