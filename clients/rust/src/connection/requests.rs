//! The caller's requests: sent when connected, queued (publishes within a bound) while not.

use std::collections::hash_map::Entry;

use tokio::time::Instant;

use super::conn::{InFlight, Waiter};
use super::{Command, Task};
use crate::error::Error;
use crate::wire;

impl Task {
    /// Keeps a request made while disconnected.
    pub(super) fn enqueue(&mut self, command: Command) {
        match command {
            Command::Publish { reply, .. }
                if self
                    .queued
                    .iter()
                    .filter(|c| matches!(c, Command::Publish { .. }))
                    .count()
                    >= self.setup.options.publish_queue =>
            {
                let _ = reply.send(Err(Error::QueueFull(self.setup.options.publish_queue)));
            }
            Command::Subscribe { channel, reply, .. } if self.subscribed(&channel) => {
                let _ = reply.send(Err(Error::AlreadySubscribed(channel)));
            }
            Command::Unsubscribe { channel, reply } => {
                self.subs.remove(&channel);
                let _ = reply.send(Ok(()));
            }
            command => self.queued.push_back(command),
        }
    }

    pub(super) fn subscribed(&self, channel: &str) -> bool {
        self.subs.contains_key(channel)
            || self.queued.iter().any(
                |c| matches!(c, Command::Subscribe { channel: queued, .. } if queued == channel),
            )
            || self.conn.as_ref().is_some_and(|c| {
                c.waiters
                    .get(channel)
                    .is_some_and(|w| w.iter().any(|w| matches!(w, Waiter::Subscribe { .. })))
            })
    }

    /// Handles a caller's request; false when the client stops.
    pub(super) async fn command(&mut self, command: Command) -> bool {
        if let Command::Close { reply } = command {
            self.close().await;
            let _ = reply.send(());
            return false;
        }
        if self.conn.is_none() {
            self.enqueue(command);
            return true;
        }
        match command {
            Command::Subscribe {
                channel,
                since,
                presence,
                reply,
            } => {
                if self.subscribed(&channel) {
                    let _ = reply.send(Err(Error::AlreadySubscribed(channel)));
                } else if let Some(conn) = &mut self.conn {
                    conn.wait(
                        &channel,
                        Waiter::Subscribe {
                            since,
                            presence,
                            reply,
                        },
                    );
                    conn.send(wire::subscribe(&channel, since, presence)).await;
                }
            }
            Command::Presence { channel, reply } => {
                if let Some(conn) = &mut self.conn {
                    let list = crate::presence::PresenceList::default();
                    conn.wait(&channel, Waiter::Presence { list, reply });
                    conn.send(wire::presence(&channel, None)).await;
                }
            }
            Command::Unsubscribe { channel, reply } => {
                if self.subs.remove(&channel).is_none() {
                    let _ = reply.send(Ok(()));
                } else if let Some(conn) = &mut self.conn {
                    conn.wait(&channel, Waiter::Unsubscribe { reply: Some(reply) });
                    conn.send(wire::unsubscribe(&channel)).await;
                }
            }
            Command::Publish {
                channel,
                data,
                id,
                reply,
                first_sent,
            } => {
                // Random: Echo commits an id once per channel, whoever publishes it.
                let id = id.unwrap_or_else(|| format!("{:016x}", rand::random::<u64>()));
                let max = self.setup.options.max_message_bytes;
                let Some(conn) = &mut self.conn else {
                    return true;
                };
                // Numbered per connection and channel, so that Echo commits them in the order
                // sent even where their frames are handled at once (API Gateway).
                let order = conn.orders.get(&channel).copied().unwrap_or(0) + 1;
                let frame = wire::publish(&channel, &data, &id, order);
                if frame.len() > max {
                    let _ = reply.send(Err(Error::TooLarge {
                        size: frame.len(),
                        max,
                    }));
                    return true;
                }
                match conn.publishes.entry(id) {
                    Entry::Occupied(e) => {
                        let _ = reply.send(Err(Error::Encode(format!(
                            "a publish with id {:?} is already waiting for its ack",
                            e.key()
                        ))));
                    }
                    Entry::Vacant(e) => {
                        e.insert(InFlight {
                            channel: channel.clone(),
                            data,
                            reply,
                            first_sent: first_sent.unwrap_or_else(Instant::now),
                            order,
                        });
                        conn.orders.insert(channel, order);
                        conn.send(frame).await;
                    }
                }
            }
            Command::History {
                channel,
                since,
                limit,
                reply,
            } => {
                if let Some(conn) = &mut self.conn {
                    conn.wait(
                        &channel,
                        Waiter::History {
                            since,
                            limit,
                            reply,
                        },
                    );
                    conn.send(wire::history(&channel, since, limit)).await;
                }
            }
            Command::Ping { reply } => {
                if let Some(conn) = &mut self.conn {
                    conn.pings.push_back(Some(reply));
                    conn.send(wire::ping()).await;
                }
            }
            Command::Close { .. } => {}
        }
        true
    }

    /// Sends the requests that waited, if connected.
    pub(super) async fn flush(&mut self) {
        while self.conn.is_some()
            && let Some(command) = self.queued.pop_front()
        {
            self.command(command).await;
        }
    }
}
