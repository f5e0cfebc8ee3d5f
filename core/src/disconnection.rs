//! A connection's end on Echo's side: its records go, `$status` hears `disconnected`, and its
//! user leaves the channels where it was the user's last connection.
//!
//! `$disconnect` ends one connection. It is best effort on AWS, and a connection whose token ran
//! out unrefreshed is over too once its record expired
//! ([`Limits::record_expiry`](crate::limits::Limits::record_expiry)): the sweep, run every
//! minute, ends every connection whose record expired and is still kept, so that its channels see
//! it leave even when nothing is posted to it.

use std::sync::Arc;

use futures_util::future::{join, join_all};
use serde::{Deserialize, Serialize};

use crate::ids::ConnectionId;
use crate::presence::Departures;
use crate::publish::Publisher;
use crate::status::StatusEvent;
use crate::store::{ConnectionRecord, ConnectionRecords, StoreResult};

/// Lapsed connections read at a time.
pub const SWEEP_BATCH: usize = 100;
/// Batches one sweep ends at most; the rest wait for the next sweep.
pub const SWEEP_MAX_BATCHES: usize = 20;

/// What ends connections.
pub struct Disconnections<'a> {
    pub connections: &'a dyn ConnectionRecords,
    pub publisher: &'a Arc<Publisher>,
    pub departures: &'a dyn Departures,
}

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Swept {
    /// Connections it ended.
    pub ended: usize,
    /// Lapsed connections it could not end (the store failed); the next sweep tries again.
    pub failed: usize,
    /// Whether lapsed connections were left for the next sweep.
    pub more: bool,
}

impl Disconnections<'_> {
    /// Ends connection `id`: removes its records and announces it. `None` when there was no
    /// such connection (it ended before).
    pub async fn end(
        &self,
        id: &ConnectionId,
        now_ms: u64,
    ) -> StoreResult<Option<ConnectionRecord>> {
        let Some((record, channels)) = self.connections.remove_connection(id).await? else {
            return Ok(None);
        };
        let status = self.publisher.status(
            &record.claims.app,
            StatusEvent::Disconnected,
            id,
            &record.claims.sub,
            None,
            now_ms,
        );
        let left = self.departures.departed(&record, &channels, now_ms);
        join(status, left).await;
        Ok(Some(record))
    }

    /// Ends the connections whose records expired by `now_ms`, up to
    /// `SWEEP_BATCH * SWEEP_MAX_BATCHES` of them.
    pub async fn sweep(&self, now_ms: u64) -> StoreResult<Swept> {
        let mut swept = Swept::default();
        for _ in 0..SWEEP_MAX_BATCHES {
            let lapsed = self.connections.lapsed(now_ms / 1000, SWEEP_BATCH).await?;
            let ended = join_all(lapsed.iter().map(|id| self.end(id, now_ms))).await;
            for (id, result) in lapsed.iter().zip(ended) {
                match result {
                    Ok(Some(_)) => swept.ended += 1,
                    Ok(None) => {}
                    Err(e) => {
                        swept.failed += 1;
                        tracing::warn!(connection_id = %id, error = %e, "could not end a lapsed connection");
                    }
                }
            }
            // A batch that failed throughout would come back unchanged: leave it to the next sweep.
            if lapsed.len() < SWEEP_BATCH || swept.failed >= SWEEP_BATCH {
                swept.more = lapsed.len() == SWEEP_BATCH;
                return Ok(swept);
            }
        }
        swept.more = true;
        Ok(swept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Claims;
    use crate::channel::{AppId, ChannelKey, ChannelName};
    use crate::message::StoredMessage;
    use crate::presence::Presence;
    use crate::publish::{DispatchError, Dispatcher};
    use crate::store::MemoryStore;
    use crate::store::connections::ConnectionRecords;
    use crate::store::subscriptions::Subscriptions;
    use async_trait::async_trait;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Seen(Mutex<Vec<(String, serde_json::Value)>>);

    #[async_trait]
    impl Dispatcher for Seen {
        async fn dispatch(&self, key: &ChannelKey, m: &StoredMessage) -> Result<(), DispatchError> {
            self.0
                .lock()
                .unwrap()
                .push((key.channel.to_string(), m.data.clone()));
            Ok(())
        }
    }

    fn record(id: &str, sub: &str, expires_at: u64) -> ConnectionRecord {
        ConnectionRecord {
            id: ConnectionId::from(id),
            claims: Claims::new(AppId::new("app").unwrap(), sub, expires_at),
            connected_at: 1_000,
            expires_at,
        }
    }

    #[tokio::test]
    async fn a_sweep_ends_lapsed_connections_once_and_leaves_live_ones() {
        let clock = crate::clock::ManualClock::new(1_000_000);
        let store = Arc::new(MemoryStore::with_clock(Arc::new(clock.clone())));
        let seen = Arc::new(Seen::default());
        let publisher = Arc::new(Publisher::new(store.clone(), seen.clone()));
        let presence = Presence::new(
            store.clone(),
            Arc::new(Publisher::new(store.clone(), seen.clone())),
        );
        let room = ChannelKey::new(
            AppId::new("app").unwrap(),
            ChannelName::new("room").unwrap(),
        );
        let now_ms = 2_000_000;
        for r in [
            record("gone", "ghost", 1_500),
            record("live", "alice", 4_000_000_000),
        ] {
            let (id, sub) = (r.id.clone(), r.claims.sub.clone());
            store.put_connection(r).await.unwrap();
            store.subscribe(&id, &room, 10).await.unwrap();
            presence
                .join(&room.app, &room.channel, &sub, &id, 4_000_000_000, now_ms)
                .await;
        }
        seen.0.lock().unwrap().clear();
        clock.set_ms(now_ms);
        let d = Disconnections {
            connections: store.as_ref(),
            publisher: &publisher,
            departures: &presence,
        };

        assert_eq!(
            d.sweep(now_ms).await.unwrap(),
            Swept {
                ended: 1,
                failed: 0,
                more: false
            }
        );
        let seen = std::mem::take(&mut *seen.0.lock().unwrap());
        let events: Vec<(String, String)> = seen
            .iter()
            .map(|(channel, data)| {
                let what = data["event"]
                    .as_str()
                    .or(data["type"].as_str())
                    .unwrap_or("?");
                (channel.clone(), what.to_owned())
            })
            .collect();
        assert!(
            events.contains(&("$status".into(), "disconnected".into())),
            "{seen:?}"
        );
        assert!(
            events.contains(&("$presence:room".into(), "leave".into())),
            "{seen:?}"
        );
        assert_eq!(
            store.subscribers(&room).await.unwrap(),
            vec![ConnectionId::from("live")]
        );
        assert_eq!(
            d.sweep(now_ms).await.unwrap(),
            Swept::default(),
            "ended once"
        );
    }
}
