//! Admission on the local edge: the allowance counted in the edge's memory, a token bucket per
//! connection (and per application server origin), and no turns to take, since the edge hands a
//! connection's frames over one at a time.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Admission, Ask, Verdict};
use crate::ids::ConnectionId;
use crate::rate::TokenBuckets;
use crate::store::{ConnectionRecords, StoreResult};

/// Admission in one process that holds every connection.
pub struct InProcessAdmission {
    connections: Arc<dyn ConnectionRecords>,
    /// `None`: no limit.
    buckets: Option<TokenBuckets>,
}

impl std::fmt::Debug for InProcessAdmission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessAdmission")
            .field("buckets", &self.buckets)
            .finish_non_exhaustive()
    }
}

impl InProcessAdmission {
    /// Records read from `connections`; each connection may send `rate` counted frames per
    /// second sustained and `burst` at once (`rate` 0: no limit).
    pub fn new(connections: Arc<dyn ConnectionRecords>, rate: u32, burst: u32) -> Self {
        Self {
            connections,
            buckets: (rate > 0).then(|| TokenBuckets::new(rate, burst)),
        }
    }

    fn take(&self, id: &ConnectionId, now_ms: u64) -> Result<(), u64> {
        self.buckets.as_ref().map_or(Ok(()), |b| b.take(id, now_ms))
    }
}

#[async_trait]
impl Admission for InProcessAdmission {
    async fn admit(&self, id: &ConnectionId, ask: Ask<'_>, now_ms: u64) -> StoreResult<Verdict> {
        let Some(record) = self.connections.get_connection(id).await? else {
            return Ok(Verdict::Unknown);
        };
        if ask.counted.is_some()
            && let Err(retry_ms) = self.take(id, now_ms)
        {
            return Ok(Verdict::Limited {
                retry_ms,
                settled: None,
            });
        }
        Ok(Verdict::Admitted {
            record,
            settled: None,
        })
    }

    fn admit_request(&self, origin: &ConnectionId, now_ms: u64) -> Result<(), u64> {
        self.take(origin, now_ms)
    }

    fn forget(&self, id: &ConnectionId) {
        if let Some(b) = &self.buckets {
            b.forget(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::channel::ChannelName;
    use crate::store::MemoryStore;

    #[tokio::test]
    async fn counted_frames_take_from_the_bucket_and_others_do_not() {
        let store = Arc::new(MemoryStore::new());
        let id = crate::admission::connected(&store, "c1").await;
        let admission = InProcessAdmission::new(store.clone(), 1, 2);
        let room = ChannelName::new("room").unwrap();
        let counted = Ask {
            counted: Some(&room),
            ordered: None,
        };
        for _ in 0..2 {
            let v = admission.admit(&id, counted, 0).await.unwrap();
            assert!(
                matches!(v, Verdict::Admitted { settled: None, .. }),
                "{v:?}"
            );
        }
        assert_eq!(
            admission.admit(&id, counted, 0).await.unwrap(),
            Verdict::Limited {
                retry_ms: 1000,
                settled: None
            }
        );
        // A history read is not counted.
        let v = admission.admit(&id, Ask::default(), 0).await.unwrap();
        assert!(matches!(v, Verdict::Admitted { .. }), "{v:?}");
        // A second later one more is allowed.
        let v = admission.admit(&id, counted, 1000).await.unwrap();
        assert!(matches!(v, Verdict::Admitted { .. }), "{v:?}");
        let gone = ConnectionId::from("gone");
        assert_eq!(
            admission.admit(&gone, counted, 0).await.unwrap(),
            Verdict::Unknown
        );
    }

    #[tokio::test]
    async fn rate_zero_is_no_limit() {
        let store = Arc::new(MemoryStore::new());
        let id = crate::admission::connected(&store, "c1").await;
        let admission = InProcessAdmission::new(store.clone(), 0, 0);
        let room = ChannelName::new("room").unwrap();
        for _ in 0..1000 {
            let ask = Ask {
                counted: Some(&room),
                ordered: None,
            };
            let v = admission.admit(&id, ask, 0).await.unwrap();
            assert!(matches!(v, Verdict::Admitted { .. }));
            assert_eq!(admission.admit_request(&id, 0), Ok(()));
        }
    }
}
