//! Admission on AWS: each frame may be handled by another invocation, so what admission knows
//! lives in the store. A counted frame is counted against the connection's [`Allowance`] with its
//! record, in one step ([`Allowances::take_publish`]; one conditional write on DynamoDB), and an
//! ordered publish reads what is settled on its channel with the record, to wait for its turn.
//!
//! An application server's publishes (the HTTP API) are not counted here: on AWS the HTTP API
//! stage's throttling limits them.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Admission, Ask, Verdict};
use crate::ids::ConnectionId;
use crate::rate::Allowance;
use crate::store::{Allowances, ConnectionRecords, PublishGrant, PublishOrders, StoreResult};

/// Admission kept in a store that many invocations share.
pub struct InStoreAdmission<S> {
    store: Arc<S>,
    /// `None`: no limit.
    allowance: Option<Allowance>,
}

impl<S> std::fmt::Debug for InStoreAdmission<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InStoreAdmission")
            .field("allowance", &self.allowance)
            .finish_non_exhaustive()
    }
}

impl<S> InStoreAdmission<S> {
    pub fn new(store: Arc<S>, allowance: Option<Allowance>) -> Self {
        Self { store, allowance }
    }
}

#[async_trait]
impl<S> Admission for InStoreAdmission<S>
where
    S: ConnectionRecords + PublishOrders + Allowances,
{
    async fn admit(&self, id: &ConnectionId, ask: Ask<'_>, now_ms: u64) -> StoreResult<Verdict> {
        // The order settled on the channel is read with the record, whichever read that is.
        let turn = |settled: u64| ask.ordered.map(|_| settled);
        if let (Some(channel), Some(allowance)) = (ask.counted, self.allowance) {
            return Ok(
                match self
                    .store
                    .take_publish(id, channel, now_ms, allowance)
                    .await?
                {
                    PublishGrant::Granted { record, settled } => Verdict::Admitted {
                        record,
                        settled: turn(settled),
                    },
                    PublishGrant::Limited { retry_ms } => Verdict::Limited {
                        retry_ms,
                        settled: turn(0),
                    },
                    PublishGrant::Unknown => Verdict::Unknown,
                },
            );
        }
        let read = match ask.ordered {
            Some(channel) => self
                .store
                .get_publisher(id, channel)
                .await?
                .map(|(record, settled)| (record, Some(settled))),
            None => self.store.get_connection(id).await?.map(|r| (r, None)),
        };
        Ok(match read {
            Some((record, settled)) => Verdict::Admitted { record, settled },
            None => Verdict::Unknown,
        })
    }

    fn admit_request(&self, _: &ConnectionId, _: u64) -> Result<(), u64> {
        Ok(())
    }

    fn forget(&self, _: &ConnectionId) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::channel::ChannelName;
    use crate::store::MemoryStore;

    #[tokio::test]
    async fn frames_are_counted_with_the_record_and_orders_read_with_it() {
        let store = Arc::new(MemoryStore::new());
        let id = crate::admission::connected(&store, "c1").await;
        let room = ChannelName::new("room").unwrap();
        store.settle_order(&id, &room, 4).await.unwrap();
        let admission = InStoreAdmission::new(store.clone(), Allowance::new(1, 1));
        let ordered = Ask {
            counted: Some(&room),
            ordered: Some(&room),
        };
        let v = admission.admit(&id, ordered, 0).await.unwrap();
        assert!(
            matches!(
                v,
                Verdict::Admitted {
                    settled: Some(4),
                    ..
                }
            ),
            "{v:?}"
        );
        assert_eq!(
            admission.admit(&id, ordered, 10).await.unwrap(),
            Verdict::Limited {
                retry_ms: 990,
                settled: Some(0)
            }
        );
        // Not counted (a history read), and not ordered.
        let v = admission.admit(&id, Ask::default(), 10).await.unwrap();
        assert!(
            matches!(v, Verdict::Admitted { settled: None, .. }),
            "{v:?}"
        );
        // Ordered but not limited: the record and the order, read together.
        let unlimited = InStoreAdmission::new(store.clone(), None);
        let v = unlimited.admit(&id, ordered, 10).await.unwrap();
        assert!(
            matches!(
                v,
                Verdict::Admitted {
                    settled: Some(4),
                    ..
                }
            ),
            "{v:?}"
        );
        assert_eq!(
            unlimited
                .admit(&ConnectionId::from("gone"), ordered, 10)
                .await
                .unwrap(),
            Verdict::Unknown
        );
        assert_eq!(admission.admit_request(&id, 10), Ok(()));
    }
}
