//! After-presence functions: each join and leave of a channel, once committed to its presence
//! channel, handed to the functions the channel lists under `afterPresence`, as after-publish
//! functions are handed messages. Their answer is ignored; they never delay or change anything
//! (in the background locally; on AWS an asynchronous invocation, queued before the handler
//! answers, so at least once); a failure is logged and counted.

use std::sync::Arc;

use serde::Serialize;

use crate::associations::AssociationsSource;
use crate::channel::{AppId, ChannelName};
use crate::function::{FunctionInvoker, InvokeError};
use crate::message::StoredMessage;
use crate::metrics::{Metric, Metrics};

/// What an after-presence function gets: `{"hook":"presence","app":A,"channel":C,
/// "event":{"type":"join"|"leave","sub":S,"ts":MS,"seq":P}}` (`seq` numbers the channel's
/// presence events, as in the `join` and `leave` frames).
#[derive(Debug, Clone, Serialize)]
pub struct PresenceInput<'a> {
    pub hook: &'static str,
    pub app: &'a AppId,
    pub channel: &'a ChannelName,
    pub event: PresenceEventInput<'a>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PresenceEventInput<'a> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub sub: &'a str,
    pub ts: u64,
    pub seq: u64,
}

/// Hands committed presence events to the channels' after-presence functions.
pub struct AfterPresence {
    pub associations: Arc<dyn AssociationsSource>,
    pub invoker: Arc<dyn FunctionInvoker>,
    pub metrics: Arc<dyn Metrics>,
    /// In a task of its own (a process that outlives the hand-over), or before returning (a
    /// Lambda, frozen once it answers).
    pub background: bool,
}

impl std::fmt::Debug for AfterPresence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AfterPresence { .. }")
    }
}

impl AfterPresence {
    /// Hands `event` (a `join` or `leave` of `channel`, committed to its presence channel) to
    /// the channel's after-presence functions, each within the channel's `timeoutMs`.
    pub async fn committed(
        self: &Arc<Self>,
        app: &AppId,
        channel: &ChannelName,
        event: &StoredMessage,
    ) {
        let associations = match self.associations.current().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "could not load associations for afterPresence");
                return;
            }
        };
        let Some(policy) = associations
            .resolve(app, channel)
            .filter(|p| !p.after_presence.is_empty())
        else {
            return;
        };
        let input = PresenceInput {
            hook: "presence",
            app,
            channel,
            event: PresenceEventInput {
                kind: event.data["type"].as_str().unwrap_or_default(),
                sub: event.data["sub"].as_str().unwrap_or_default(),
                ts: event.ts,
                seq: event.seq,
            },
        };
        let Ok(input) = serde_json::to_value(input) else {
            return;
        };
        let this = self.clone();
        let run = async move {
            let handed = policy.after_presence.iter().map(|f| async {
                tokio::time::timeout(policy.timeout, this.invoker.notify_call(f, &input))
                    .await
                    .unwrap_or(Err(InvokeError::TimedOut(policy.timeout)))
            });
            let results = futures_util::future::join_all(handed).await;
            for (function, result) in policy.after_presence.iter().zip(results) {
                let ok = result.is_ok();
                if let Err(e) = result {
                    tracing::warn!(function, error = %e, "after-presence function failed");
                }
                this.metrics.record(Metric::AfterPublish { function, ok });
            }
        };
        if self.background {
            tokio::spawn(run);
        } else {
            run.await;
        }
    }
}
