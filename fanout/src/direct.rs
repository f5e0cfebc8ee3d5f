//! One hop less for small channels: on AWS the message handler Lambda delivers a small channel's
//! messages itself, beside its answer to the frame, instead of handing each message to
//! the fan-out Lambda. An asynchronous invocation first waits in Lambda's internal queue, a dwell
//! that AWS does not bound and that grows under congestion, and then pays the fan-out Lambda's own
//! start; a room of five should not wait on either.
//!
//! [`Direct`] is the handler's [`Dispatcher`]: it reads a channel's subscribers when a message is
//! committed and, up to `max_subscribers` of them, keeps the message to deliver once the handler
//! is done with the frame ([`Direct::deliver_pending`]); a larger channel goes to the fan-out Lambda as
//! before. What is still pending once `budget` has passed since the first delivery started also
//! goes to the fan-out Lambda, so that one slow subscriber cannot hold the handler.
//!
//! A Lambda container runs one invocation at a time, so what is pending belongs to the invocation
//! running.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use echo_core::channel::ChannelKey;
use echo_core::ids::ConnectionId;
use echo_core::message::StoredMessage;
use echo_core::publish::{DispatchError, Dispatcher};

use crate::{Deps, Report, deliver_batch_to};

/// A channel's messages committed in one invocation, and who is subscribed.
struct Pending {
    key: ChannelKey,
    messages: Vec<StoredMessage>,
    subscribers: Vec<ConnectionId>,
}

pub struct Direct {
    deps: Deps,
    /// The fan-out Lambda, for large channels and what the budget leaves.
    hand_off: Arc<dyn Dispatcher>,
    max_subscribers: usize,
    budget: Duration,
    pending: Mutex<Vec<Pending>>,
}

impl Direct {
    pub fn new(
        deps: Deps,
        hand_off: Arc<dyn Dispatcher>,
        max_subscribers: usize,
        budget: Duration,
    ) -> Self {
        Self {
            deps,
            hand_off,
            max_subscribers,
            budget,
            pending: Mutex::new(Vec::new()),
        }
    }

    /// Whether messages wait to be delivered.
    pub fn has_pending(&self) -> bool {
        self.pending.lock().is_ok_and(|p| !p.is_empty())
    }

    /// Delivers what is pending, in the order it was committed; once the budget has passed,
    /// hands the rest to the fan-out Lambda. Returns what was delivered here.
    pub async fn deliver_pending(&self) -> Report {
        let pending: Vec<Pending> = self
            .pending
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default();
        let started = Instant::now();
        let mut total = Report::default();
        for p in pending {
            if started.elapsed() >= self.budget {
                if let Err(e) = self.hand_off.dispatch_batch(&p.key, &p.messages).await {
                    tracing::warn!(channel = %p.key, error = %e, "could not hand messages to fan-out after the delivery budget");
                }
                continue;
            }
            match deliver_batch_to(&self.deps, &p.key, &p.messages, &p.subscribers).await {
                Ok(report) => {
                    total.subscribers += report.subscribers;
                    total.delivered += report.delivered;
                    total.stale_removed += report.stale_removed;
                    total.failed += report.failed;
                }
                Err(e) => {
                    tracing::warn!(channel = %p.key, error = %e, "direct delivery failed; handing it to fan-out");
                    if let Err(e) = self.hand_off.dispatch_batch(&p.key, &p.messages).await {
                        tracing::warn!(channel = %p.key, error = %e, "could not hand messages to fan-out");
                    }
                }
            }
        }
        total
    }
}

#[async_trait]
impl Dispatcher for Direct {
    async fn dispatch(
        &self,
        key: &ChannelKey,
        message: &StoredMessage,
    ) -> Result<(), DispatchError> {
        self.dispatch_batch(key, std::slice::from_ref(message))
            .await
    }

    async fn dispatch_batch(
        &self,
        key: &ChannelKey,
        messages: &[StoredMessage],
    ) -> Result<(), DispatchError> {
        let subscribers = self
            .deps
            .subscriptions
            .subscribers(key)
            .await
            .map_err(|e| DispatchError(Box::new(e)))?;
        if subscribers.len() > self.max_subscribers {
            return self.hand_off.dispatch_batch(key, messages).await;
        }
        if subscribers.is_empty() || messages.is_empty() {
            return Ok(());
        }
        let mut pending = self
            .pending
            .lock()
            .map_err(|_| DispatchError("the pending deliveries' lock is poisoned".into()))?;
        // Consecutive messages of one channel go out together, as fan-out sends a batch.
        match pending.last_mut() {
            Some(last) if last.key == *key && last.subscribers == subscribers => {
                last.messages.extend_from_slice(messages);
            }
            _ => pending.push(Pending {
                key: key.clone(),
                messages: messages.to_vec(),
                subscribers,
            }),
        }
        Ok(())
    }
}
