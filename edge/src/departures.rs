//! Presence ending for connections that fan-out finds gone, each in a task of its own.
//!
//! The edge's fan-out runs inside a channel's dispatch turn, and a leave is a commit to a presence
//! channel: waiting for it there could wait on the very turn it runs in.

use std::sync::{Arc, OnceLock, Weak};

use async_trait::async_trait;
use echo_core::channel::ChannelKey;
use echo_core::presence::{Departures, Presence};
use echo_core::store::ConnectionRecord;

/// Hands departures to [`Presence`] in spawned tasks; set once the presence exists (it commits
/// through the publisher whose fan-out holds this).
#[derive(Default)]
pub struct SpawnedDepartures {
    presence: OnceLock<Weak<Presence>>,
}

impl SpawnedDepartures {
    pub fn set(&self, presence: &Arc<Presence>) {
        let _ = self.presence.set(Arc::downgrade(presence));
    }
}

#[async_trait]
impl Departures for SpawnedDepartures {
    async fn departed(&self, record: &ConnectionRecord, channels: &[ChannelKey], now_ms: u64) {
        let Some(presence) = self.presence.get().and_then(Weak::upgrade) else {
            return;
        };
        let (record, channels) = (record.clone(), channels.to_vec());
        tokio::spawn(async move { presence.departed(&record, &channels, now_ms).await });
    }
}
