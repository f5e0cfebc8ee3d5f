//! After-publish functions: each committed message, with its seq, handed to the functions its
//! channel lists under `afterPublish`, without waiting for them. They cannot delay, change or
//! drop delivery (fan-out was dispatched with the commit); a failure is logged and counted and
//! never reaches the publisher.

use std::sync::Arc;

use echo_core::associations::ChannelPolicy;
use echo_core::channel::AppId;
use echo_core::function::{FunctionInput, FunctionInvoker, FunctionMessage, InvokeError};
use echo_core::message::StoredMessage;
use echo_core::metrics::{Metric, Metrics};

/// How the functions are handed their messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterPublish {
    /// In a task of their own, after the reply: the process outlives it (the local edge).
    Background,
    /// Before the reply, all at once: a Lambda is frozen once it answers. There each hand-over
    /// is an asynchronous invocation, which returns once Lambda has queued it.
    BeforeReply,
}

/// What a hand-over needs, taken from the handler's deps.
pub(crate) struct Notifier {
    pub invoker: Arc<dyn FunctionInvoker>,
    pub metrics: Arc<dyn Metrics>,
    pub mode: AfterPublish,
}

impl Notifier {
    /// Hands `message`, committed on `app`'s channel, to each of the policy's after-publish
    /// functions, each given the channel's `timeoutMs` to take it.
    pub async fn notify(
        self,
        app: AppId,
        message: StoredMessage,
        policy: Option<Arc<ChannelPolicy>>,
    ) {
        let Some(policy) = policy.filter(|p| !p.after_publish.is_empty()) else {
            return;
        };
        let run = async move {
            let input = FunctionInput {
                app,
                channel: message.channel.clone(),
                message: FunctionMessage {
                    id: message.id,
                    data: message.data,
                    from: message.from,
                    ts: message.ts,
                    seq: Some(message.seq),
                },
            };
            let handed = policy.after_publish.iter().map(|f| async {
                tokio::time::timeout(policy.timeout, self.invoker.notify(f, &input))
                    .await
                    .unwrap_or(Err(InvokeError::TimedOut(policy.timeout)))
            });
            let results = futures_util::future::join_all(handed).await;
            for (function, result) in policy.after_publish.iter().zip(results) {
                let ok = result.is_ok();
                if let Err(e) = result {
                    tracing::warn!(function, channel = %input.channel, seq = input.message.seq, error = %e, "after-publish function failed");
                }
                self.metrics.record(Metric::AfterPublish { function, ok });
            }
        };
        match self.mode {
            AfterPublish::Background => {
                tokio::spawn(run);
            }
            AfterPublish::BeforeReply => run.await,
        }
    }
}
