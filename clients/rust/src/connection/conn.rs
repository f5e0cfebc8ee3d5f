//! One WebSocket and the requests waiting for replies on it.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use futures_util::SinkExt;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::{Command, Reply, Ws};
use crate::error::Error;
use crate::presence::PresenceList;
use crate::published::Published;
use crate::subscription::Subscription;
use crate::wire::HistoryPage;

/// A request waiting for a reply addressed by channel.
pub(super) enum Waiter {
    Subscribe {
        since: Option<u64>,
        presence: bool,
        reply: Reply<Subscription>,
    },
    /// A subscription renewed on a new connection.
    Resubscribe,
    Unsubscribe {
        reply: Option<Reply<()>>,
    },
    History {
        since: u64,
        limit: u32,
        reply: Reply<HistoryPage>,
    },
    /// A history page read to fill a gap in a subscription.
    Fill,
    /// The caller's member list, the pages so far.
    Presence {
        list: PresenceList,
        reply: Reply<PresenceList>,
    },
    /// A presence subscription's member list, read again; the pages so far.
    Sync {
        list: PresenceList,
    },
}

/// A publish sent and waiting for its ack: what it takes to send it again.
pub(super) struct InFlight {
    pub(super) channel: String,
    pub(super) data: serde_json::Value,
    pub(super) reply: Reply<Published>,
    pub(super) first_sent: Instant,
    /// Its `order` on this connection.
    pub(super) order: u64,
}

/// One WebSocket and what is waiting for replies on it.
pub(super) struct Conn {
    pub(super) ws: Ws,
    pub(super) last_sent: Instant,
    pub(super) renew_at: Instant,
    /// When to present a new token (`refresh`): ahead of the current one's expiry.
    pub(super) refresh_at: Option<Instant>,
    /// A `refresh` was sent and its answer has not come.
    pub(super) refreshing: bool,
    pub(super) waiters: HashMap<String, VecDeque<Waiter>>,
    pub(super) pings: VecDeque<Option<Reply<()>>>,
    pub(super) publishes: HashMap<String, InFlight>,
    /// The `order` of the last publish sent on each channel on this connection.
    pub(super) orders: HashMap<String, u64>,
}

impl Conn {
    pub(super) fn new(ws: Ws, renew_after: Duration) -> Self {
        let now = Instant::now();
        Self {
            ws,
            last_sent: now,
            renew_at: now + renew_after,
            refresh_at: None,
            refreshing: false,
            waiters: HashMap::new(),
            pings: VecDeque::new(),
            publishes: HashMap::new(),
            orders: HashMap::new(),
        }
    }

    pub(super) async fn send(&mut self, text: String) {
        self.last_sent = Instant::now();
        if let Err(e) = self.ws.send(WsMessage::text(text)).await {
            // The read side sees the failure and reconnects.
            tracing::debug!(error = %e, "send failed");
        }
    }

    pub(super) fn wait(&mut self, channel: &str, waiter: Waiter) {
        self.waiters
            .entry(channel.to_owned())
            .or_default()
            .push_back(waiter);
    }

    pub(super) fn pop(&mut self, channel: &str) -> Option<Waiter> {
        let queue = self.waiters.get_mut(channel)?;
        let waiter = queue.pop_front();
        if queue.is_empty() {
            self.waiters.remove(channel);
        }
        waiter
    }

    pub(super) fn idle(&self) -> bool {
        self.waiters.is_empty() && self.pings.is_empty() && self.publishes.is_empty()
    }

    pub(super) fn resubscribing(&self) -> bool {
        self.waiters
            .values()
            .flatten()
            .any(|w| matches!(w, Waiter::Resubscribe))
    }

    /// Fails what cannot be retried and gives back, as commands, what can: publishes sent
    /// within `resend_within` go again with their ids, in the order they were sent.
    pub(super) fn abandon(self, error: &Error, resend_within: Duration) -> Vec<Command> {
        for reply in self.pings.into_iter().flatten() {
            let _ = reply.send(Err(error.clone()));
        }
        let mut retry = Vec::new();
        let mut publishes: Vec<(String, InFlight)> = self.publishes.into_iter().collect();
        publishes.sort_by_key(|(_, p)| p.order);
        for (id, p) in publishes {
            if p.first_sent.elapsed() < resend_within {
                retry.push(Command::Publish {
                    channel: p.channel,
                    data: p.data,
                    id: Some(id),
                    reply: p.reply,
                    first_sent: Some(p.first_sent),
                });
            } else {
                let _ = p.reply.send(Err(error.clone()));
            }
        }
        for (channel, waiters) in self.waiters {
            for waiter in waiters {
                match waiter {
                    Waiter::Subscribe {
                        since,
                        presence,
                        reply,
                    } => retry.push(Command::Subscribe {
                        channel: channel.clone(),
                        since,
                        presence,
                        reply,
                    }),
                    // Read again from the first page on the next connection.
                    Waiter::Presence { reply, .. } => retry.push(Command::Presence {
                        channel: channel.clone(),
                        reply,
                    }),
                    Waiter::History {
                        since,
                        limit,
                        reply,
                    } => retry.push(Command::History {
                        channel: channel.clone(),
                        since,
                        limit,
                        reply,
                    }),
                    // Unsubscribing is done locally; the server forgets with the connection.
                    Waiter::Unsubscribe { reply } => {
                        if let Some(reply) = reply {
                            let _ = reply.send(Ok(()));
                        }
                    }
                    Waiter::Resubscribe | Waiter::Fill | Waiter::Sync { .. } => {}
                }
            }
        }
        retry
    }
}
