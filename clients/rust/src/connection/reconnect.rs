//! Losing a connection and opening the next: exponential backoff with full jitter, a fresh
//! token per attempt, every subscription renewed from its last seq.

use std::time::Duration;

use rand::Rng;
use tokio::time::{Instant, sleep_until};

use super::socket::open;
use super::{Command, Task, Which};
use crate::error::Error;
use crate::events::{Event, State};
use crate::token::Token;
use crate::wire;

impl Task {
    /// Waits (handling requests) and retries until connected; false when the client stops.
    pub(super) async fn reconnect(&mut self) -> bool {
        let options = self.setup.options.clone();
        let (mut code, mut reason) = std::mem::take(&mut self.dropped);
        for attempt in 1u32.. {
            let exp = options
                .backoff_base
                .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
            let cap = exp.min(options.backoff_max);
            let delay = Duration::from_millis(
                rand::rng().random_range(0..=u64::try_from(cap.as_millis()).unwrap_or(u64::MAX)),
            );
            self.setup.state.send_replace(State::Reconnecting);
            self.emit(Event::Reconnecting {
                attempt,
                delay,
                code,
                reason: reason.clone(),
            });
            let deadline = Instant::now() + delay;
            loop {
                tokio::select! {
                    () = sleep_until(deadline) => break,
                    command = self.commands.recv() => match command {
                        None => {
                            self.stop(None, "the client was dropped");
                            return false;
                        }
                        Some(Command::Close { reply }) => {
                            self.stop(Some(1000), "closed by the client");
                            let _ = reply.send(());
                            return false;
                        }
                        Some(command) => self.enqueue(command),
                    }
                }
            }
            match open(&self.setup.url, &self.setup.token, options.connect_timeout).await {
                Ok((ws, exp)) => {
                    self.install(ws, exp, false).await;
                    return true;
                }
                Err(Error::Unauthorized) if matches!(self.setup.token, Token::Static(_)) => {
                    // A fixed token that is refused will not be accepted later.
                    self.stop(None, "the token was refused (HTTP 401)");
                    return false;
                }
                Err(Error::Denied(why)) if matches!(self.setup.token, Token::Static(_)) => {
                    // Nor, as a rule, one the app's onConnect hook refused.
                    self.stop(None, &format!("the connection was refused: {why}"));
                    return false;
                }
                Err(e) => {
                    code = None;
                    reason = e.to_string();
                }
            }
        }
        false
    }

    /// A connection ended without the caller asking; false when the client stops.
    pub(super) fn lost(&mut self, which: Which, code: Option<u16>, reason: String) -> bool {
        let conn = match which {
            Which::Current => self.conn.take(),
            Which::Draining => self.draining.take(),
        };
        if let Some(conn) = conn {
            let retry = conn.abandon(&Error::Disconnected, self.setup.options.resend_within);
            self.requeue(retry);
        }
        if which == Which::Draining {
            return true;
        }
        if let Some(draining) = self.draining.take() {
            let retry = draining.abandon(&Error::Disconnected, self.setup.options.resend_within);
            self.requeue(retry);
        }
        // Gap fills were asked on the lost connection; the resubscribe replays from last_seq.
        for sub in self.subs.values_mut() {
            sub.reset();
        }
        tracing::debug!(?code, %reason, "connection lost");
        if self.session_ended {
            self.stop(code, "the app ended this user's sessions");
            return false;
        }
        if code.is_some_and(|c| !wire::reconnects_after(c)) {
            self.stop(code, "closed by Echo, not to be reconnected");
            return false;
        }
        self.dropped = (code, reason);
        true
    }
}
