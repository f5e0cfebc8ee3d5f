//! The edge's [`Relay`]: what `onConnect` functions publish, queued by the connect handler and
//! published by the message handler in a task of its own, so a connect never waits on the
//! target channels' functions. The queue is bounded; a full one makes the connect wait.

use std::sync::Arc;

use async_trait::async_trait;
use echo_core::function::relay::{Relay, Relayed};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::handlers::Handlers;
use crate::state::State;

/// Relays waiting to be published.
const QUEUE: usize = 256;

/// The connect handler's side of the queue.
pub struct QueuedRelay(mpsc::Sender<Relayed>);

/// A queue: its connect handler side and what [`run`] takes.
pub fn queue() -> (QueuedRelay, mpsc::Receiver<Relayed>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    (QueuedRelay(tx), rx)
}

#[async_trait]
impl Relay for QueuedRelay {
    async fn relay(&self, relayed: Relayed) {
        if let Err(e) = self.0.send(relayed).await {
            tracing::warn!(app = %e.0.app, "the edge is stopping: a function's publish was dropped");
        }
    }
}

/// Publishes each relay through the in-process message handler, until shutdown.
pub async fn run(
    state: Arc<State>,
    mut queue: mpsc::Receiver<Relayed>,
    shutdown: CancellationToken,
) {
    loop {
        let relayed = tokio::select! {
            () = shutdown.cancelled() => return,
            r = queue.recv() => match r {
                Some(r) => r,
                None => return,
            },
        };
        let state = state.clone();
        state.connections.clone().spawn(async move {
            if let Handlers::InProcess(h) = &state.handlers {
                message_handler::publish_relayed(&h.message, relayed).await;
            }
        });
    }
}
