//! Echo's frames matched to the requests that wait for them, and messages handed to delivery.

use tokio::sync::mpsc;

use super::conn::Waiter;
use super::delivery::Sub;
use super::presence::PresenceState;
use super::{Task, Which};
use crate::error::Error;
use crate::error_code::ErrorCode;
use crate::events::Event;
use crate::published::Published;
use crate::subscription::Subscription;
use crate::wire::{HistoryPage, ServerFrame};

impl Task {
    pub(super) async fn frame(&mut self, which: Which, frame: ServerFrame) {
        match frame {
            ServerFrame::Message(message) => self.deliver(message).await,
            ServerFrame::Subscribed {
                channel,
                seq,
                replay_to,
            } => {
                match self.conn_mut(which).and_then(|c| c.pop(&channel)) {
                    Some(Waiter::Subscribe {
                        since,
                        presence,
                        reply,
                    }) => {
                        let (tx, rx) = mpsc::channel(self.setup.options.subscription_buffer.max(1));
                        let members = presence.then(crate::presence::SharedMembers::default);
                        self.subs.insert(
                            channel.clone(),
                            Sub::new(
                                tx,
                                since.map_or(seq, |s| s.min(seq)),
                                seq,
                                members.clone().map(PresenceState::new),
                            ),
                        );
                        let _ = reply.send(Ok(Subscription {
                            channel: channel.clone(),
                            seq,
                            messages: rx,
                            members,
                        }));
                    }
                    Some(Waiter::Resubscribe) | None => {}
                    Some(other) => {
                        self.unexpected(which, &channel, other, "subscribed");
                        return;
                    }
                }
                self.caught_up(&channel, seq, replay_to).await;
                if which == Which::Current
                    && self
                        .subs
                        .get(&channel)
                        .is_some_and(|s| s.presence.is_some())
                {
                    self.sync_presence(&channel).await;
                }
            }
            ServerFrame::Join(change) => self.presence_event(true, change),
            ServerFrame::Leave(change) => self.presence_event(false, change),
            ServerFrame::Presence {
                channel,
                members,
                seq,
                more,
            } => match self.conn_mut(which).and_then(|c| c.pop(&channel)) {
                Some(waiter @ (Waiter::Presence { .. } | Waiter::Sync { .. })) => {
                    self.presence_page(waiter, channel, members, seq, more)
                        .await;
                }
                None => {}
                Some(other) => self.unexpected(which, &channel, other, "presence"),
            },
            ServerFrame::Unsubscribed { channel } => {
                match self.conn_mut(which).and_then(|c| c.pop(&channel)) {
                    Some(Waiter::Unsubscribe { reply: Some(reply) }) => {
                        let _ = reply.send(Ok(()));
                    }
                    Some(Waiter::Unsubscribe { reply: None }) | None => {}
                    Some(other) => self.unexpected(which, &channel, other, "unsubscribed"),
                }
            }
            ServerFrame::Ack {
                id,
                seq,
                dropped,
                reason,
            } => {
                if let Some(p) = self.conn_mut(which).and_then(|c| c.publishes.remove(&id)) {
                    let _ = p.reply.send(Ok(if dropped {
                        Published::Dropped { reason }
                    } else {
                        Published::Stored {
                            seq: seq.unwrap_or_default(),
                        }
                    }));
                }
            }
            ServerFrame::History {
                channel,
                messages,
                more,
            } => match self.conn_mut(which).and_then(|c| c.pop(&channel)) {
                Some(Waiter::History { reply, .. }) => {
                    let _ = reply.send(Ok(HistoryPage { messages, more }));
                }
                Some(Waiter::Fill) => self.filled(&channel, messages, more).await,
                None => {}
                Some(other) => self.unexpected(which, &channel, other, "history"),
            },
            ServerFrame::Refreshed { exp } => self.refreshed(exp),
            ServerFrame::Pong => {
                if let Some(Some(reply)) = self.conn_mut(which).and_then(|c| c.pings.pop_front()) {
                    let _ = reply.send(Ok(()));
                }
            }
            ServerFrame::Error {
                code,
                message,
                id,
                channel,
            } => {
                if code == ErrorCode::TokenExpired {
                    self.token_expired();
                }
                if code == ErrorCode::SessionEnded {
                    self.session_ended = true;
                }
                let error = Error::Server { code, message };
                if let Some(p) = id
                    .as_ref()
                    .and_then(|id| self.conn_mut(which)?.publishes.remove(id))
                {
                    let _ = p.reply.send(Err(error));
                    return;
                }
                let Some(channel) = channel else {
                    self.refresh_failed();
                    self.emit(Event::Error {
                        channel: None,
                        error,
                    });
                    return;
                };
                match self.conn_mut(which).and_then(|c| c.pop(&channel)) {
                    Some(Waiter::Subscribe { reply, .. }) => drop(reply.send(Err(error))),
                    Some(Waiter::History { reply, .. }) => drop(reply.send(Err(error))),
                    Some(Waiter::Presence { reply, .. }) => drop(reply.send(Err(error))),
                    Some(Waiter::Sync { .. }) => self.sync_failed(&channel, error),
                    Some(Waiter::Unsubscribe { reply: Some(reply) }) => {
                        drop(reply.send(Err(error)));
                    }
                    Some(Waiter::Resubscribe) => {
                        // The subscription cannot be renewed (permissions changed): it ends.
                        self.subs.remove(&channel);
                        self.emit(Event::Error {
                            channel: Some(channel),
                            error,
                        });
                    }
                    Some(Waiter::Fill) => {
                        self.emit(Event::Error {
                            channel: Some(channel.clone()),
                            error,
                        });
                        self.filled(&channel, Vec::new(), false).await;
                    }
                    Some(Waiter::Unsubscribe { reply: None }) | None => self.emit(Event::Error {
                        channel: Some(channel),
                        error,
                    }),
                }
            }
        }
    }

    pub(super) fn unexpected(&mut self, which: Which, channel: &str, waiter: Waiter, got: &str) {
        tracing::warn!(channel, got, "reply out of order");
        if let Some(conn) = self.conn_mut(which) {
            conn.waiters
                .entry(channel.to_owned())
                .or_default()
                .push_front(waiter);
        }
    }
}
