//! A connection's publishes on a channel, committed in the order it numbered them (`order`),
//! whatever their functions' durations.
//!
//! The local edge hands a connection's frames over one at a time, so its publishes are committed
//! in the order sent and nothing here is needed (admission says so: [`echo_core::admission`]). API Gateway may hand
//! them to concurrent invocations: there, publish N waits, after its functions ran, until the
//! store says N-1 is settled (committed, dropped or refused), and settles N once its message is
//! stored. Settled orders live with the connection's record: the record read a publish starts
//! with says whether N-1 is already settled, so a publish that comes after its predecessor
//! finished costs one write (the settle) and no wait.

use std::time::Duration;

use echo_core::channel::ChannelName;
use echo_core::ids::ConnectionId;
use tokio::time::Instant;

use crate::deps::Deps;

/// How long after its frame came a publish waits for the one before it. Past this the earlier
/// one is taken to have failed (its invocation died) and this one goes ahead; with the
/// functions' 25 s it stays within API Gateway's 29 s integration timeout.
const MAX_WAIT: Duration = Duration::from_secs(26);

/// The `order` of a publish, and what was settled when its frame came.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Order {
    pub(crate) n: u64,
    pub(crate) settled: u64,
}

impl Order {
    /// Returns once the connection's publish `n - 1` on `channel` is settled, or at the bound.
    pub(crate) async fn wait_turn(
        self,
        deps: &Deps,
        id: &ConnectionId,
        channel: &ChannelName,
        started: Instant,
    ) {
        if self.n <= self.settled + 1 {
            return;
        }
        let deadline = started + MAX_WAIT;
        let mut pause = Duration::from_millis(5);
        loop {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
            match deps.connections.settled_order(id, channel).await {
                Ok(settled) if settled + 1 >= self.n => return,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(connection_id = %id, error = %e, "could not read the publish order");
                }
            }
            if Instant::now() >= deadline {
                tracing::warn!(connection_id = %id, channel = %channel, order = self.n, "publish went ahead of an earlier one that never settled");
                return;
            }
        }
    }

    /// Lets the connection's next publish on `channel` go.
    pub(crate) async fn settle(self, deps: &Deps, id: &ConnectionId, channel: &ChannelName) {
        if let Err(e) = deps.connections.settle_order(id, channel, self.n).await {
            tracing::warn!(connection_id = %id, error = %e, "could not settle the publish order");
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use echo_core::admission::InStoreAdmission;

    use crate::testing::{Harness, publish_to_rooms_only};

    /// A handler for a gateway that hands frames over at once, as API Gateway may.
    fn concurrent() -> Harness {
        let mut h = Harness::new();
        h.deps.admission = std::sync::Arc::new(InStoreAdmission::new(h.store.clone(), None));
        h
    }

    fn publish(order: u64, sleep_ms: u64) -> serde_json::Value {
        json!({"action": "publish", "channel": "sleepy", "id": format!("p{order}"),
            "order": order, "data": {"order": order, "sleepMs": sleep_ms}})
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_publish_is_not_overtaken_by_the_next_one() {
        let h = concurrent();
        let id = h.connect("c1", |c| c).await;
        let (first, second, third) = tokio::join!(
            h.send(&id, publish(1, 300)),
            h.send(&id, publish(2, 0)),
            h.send(&id, publish(3, 100)),
        );
        let seqs: Vec<_> = [first, second, third]
            .iter()
            .map(|a| a.as_ref().unwrap()["seq"].clone())
            .collect();
        assert_eq!(seqs, [json!(1), json!(2), json!(3)]);
        let stored: Vec<_> = h
            .stored("sleepy")
            .await
            .into_iter()
            .map(|(seq, data)| (seq, data["order"].clone()))
            .collect();
        assert_eq!(stored, [(1, json!(1)), (2, json!(2)), (3, json!(3))]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_publish_lets_the_next_one_go() {
        let h = concurrent();
        let id = h.connect("c1", publish_to_rooms_only).await;
        let started = tokio::time::Instant::now();
        let refused =
            json!({"action": "publish", "channel": "secret", "id": "p1", "order": 1, "data": 1});
        let (refused, next) = tokio::join!(
            h.send(&id, refused),
            h.send(
                &id,
                json!({"action": "publish", "channel": "secret", "id": "p2", "order": 2, "data": 2})
            ),
        );
        assert_eq!(refused.unwrap()["code"], "forbidden");
        assert_eq!(next.unwrap()["code"], "forbidden");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_publish_refused_for_an_expired_token_still_takes_its_turn() {
        let h = concurrent();
        let now = crate::testing::NOW_MS / 1000;
        let id = h
            .connect("c1", |mut c| {
                c.exp = now + 1;
                c
            })
            .await;
        h.clock.advance_ms(10_000);
        let refused = h.send(&id, publish(1, 0)).await.unwrap();
        assert_eq!(refused["code"], "token_expired", "{refused}");
        let fresh = crate::testing::token(&echo_core::auth::Claims::new(
            crate::testing::app(),
            "alice",
            now + 3600,
        ));
        h.send(&id, json!({"action": "refresh", "token": fresh}))
            .await;
        let started = tokio::time::Instant::now();
        let ack = h.send(&id, publish(2, 0)).await.unwrap();
        assert_eq!(ack["seq"], 1, "{ack}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "the next publish did not wait for the refused one"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_publish_whose_predecessor_never_comes_goes_ahead_at_the_bound() {
        let h = concurrent();
        let id = h.connect("c1", |c| c).await;
        let started = tokio::time::Instant::now();
        let ack = h.send(&id, publish(2, 0)).await.unwrap();
        assert_eq!(ack["seq"], 1, "{ack}");
        assert!(started.elapsed() >= super::MAX_WAIT);
        // And the settled order moved on: the next one does not wait.
        let started = tokio::time::Instant::now();
        h.send(&id, publish(3, 0)).await.unwrap();
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
