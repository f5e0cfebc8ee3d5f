//! `publish`: the channel's functions, then the commit; the ack once the message is stored. A
//! publish with an `order` takes its turn after the connection's earlier ones (see `order`).
//!
//! A publisher-given id is committed once per channel within the dedup window: the store
//! answers a repeat with the first one's seq, and its ack says `duplicate`. The functions run
//! for a repeat as for any publish (what they answer is not stored); a publish they dropped, or
//! that was refused, took no id.

use std::sync::Arc;

use echo_core::associations::ChannelPolicy;
use echo_core::auth::Claims;
use echo_core::channel::{AppId, ChannelKey, ChannelName};
use echo_core::function::{
    ChainOutcome, FunctionInput, FunctionMessage, FunctionRun, Publication, run_chain,
};
use echo_core::ids::{ConnectionId, random_hex};
use echo_core::message::NewMessage;
use echo_core::metrics::Metric;
use echo_core::protocol::frame_size::largest_frame_len;
use echo_core::protocol::{Ack, ErrorCode, ProtocolError, ServerFrame};
use echo_core::store::StoreError;
use serde_json::Value;

use crate::after_publish::Notifier;
use crate::deps::Deps;
use crate::order::Order;
use crate::reply::{Reply, internal};

/// A message's id: the publisher's, or one Echo made up (which needs no dedup).
#[derive(Debug, Clone)]
pub(crate) enum MessageId {
    Publisher(String),
    Made(String),
}

impl MessageId {
    pub(crate) fn from_publisher(id: Option<String>) -> Self {
        id.map_or_else(|| Self::Made(random_hex(8)), Self::Publisher)
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            Self::Publisher(id) | Self::Made(id) => id,
        }
    }
}

pub(crate) async fn publish(
    deps: &Deps,
    id: &ConnectionId,
    claims: &Claims,
    channel: &ChannelName,
    data: Value,
    msg_id: MessageId,
    order: Option<Order>,
) -> Result<Reply, ProtocolError> {
    let started = tokio::time::Instant::now();
    // A window of 0 turns dedup off: nothing is looked up or remembered.
    let dedup_window_ms = match msg_id {
        MessageId::Publisher(_) if deps.limits.dedup_window_secs > 0 => {
            Some(deps.limits.dedup_window_secs.saturating_mul(1000))
        }
        MessageId::Publisher(_) | MessageId::Made(_) => None,
    };
    let msg_id = match msg_id {
        MessageId::Publisher(id) | MessageId::Made(id) => id,
    };
    let prepared = match claims.authorize_publish(channel) {
        Ok(()) => match app_allowance(deps, id, &claims.app).await {
            Ok(()) => {
                let author = Author {
                    app: &claims.app,
                    from: &claims.sub,
                };
                prepare(
                    deps,
                    id,
                    author,
                    channel,
                    data,
                    msg_id.clone(),
                    dedup_window_ms,
                )
                .await
            }
            Err(e) => Err(e),
        },
        Err(e) => Err(e.into()),
    };
    let Some(order) = order else {
        return match prepared? {
            Prepared::Commit(key, message, after, relays) => {
                let reply = commit(deps, id, channel, key, message, msg_id, after).await?;
                Ok(relayed(deps, id, &claims.app, reply, relays).await)
            }
            Prepared::Answered(reply, relays) => {
                Ok(relayed(deps, id, &claims.app, reply, relays).await)
            }
        };
    };
    order.wait_turn(deps, id, channel, started).await;
    let (reply, relays) = match prepared {
        Ok(Prepared::Commit(key, message, after, relays)) => {
            match commit(deps, id, channel, key, message, msg_id, after).await {
                // The next publish may commit once this one is stored.
                Ok(pending) => (Ok(Reply::Ready(pending.resolve().await)), relays),
                Err(e) => (Err(e), Vec::new()),
            }
        }
        Ok(Prepared::Answered(reply, relays)) => (Ok(reply), relays),
        Err(e) => (Err(e), Vec::new()),
    };
    order.settle(deps, id, channel).await;
    match reply {
        Ok(reply) => Ok(relayed(deps, id, &claims.app, reply, relays).await),
        Err(e) => Err(e),
    }
}

/// Counts the publish against its app's publish allowance, when the app has one
/// (`limits.publishRate`): `rate_limited` over it.
async fn app_allowance(deps: &Deps, id: &ConnectionId, app: &AppId) -> Result<(), ProtocolError> {
    let associations = deps
        .associations
        .current()
        .await
        .map_err(|e| internal(id, "could not load associations", &e))?;
    let Some(allowance) = associations.app_limits(app).publish_allowance() else {
        return Ok(());
    };
    let taken = deps
        .connections
        .take_app_publish(app, allowance, deps.clock.now_ms())
        .await
        .map_err(|e| internal(id, "could not count the app's publish", &e))?;
    taken.map_err(|retry_ms| {
        deps.metrics.record(Metric::RateLimited);
        ProtocolError::new(
            ErrorCode::RateLimited,
            format!(
                "app {app} publishes faster than its publishRate allows; retry in {retry_ms} ms"
            ),
        )
    })
}

/// `reply`, once the messages the functions published elsewhere are published (the publisher
/// hears of its own message when they are).
async fn relayed(
    deps: &Deps,
    id: &ConnectionId,
    app: &AppId,
    reply: Reply,
    relays: Vec<(String, Publication)>,
) -> Reply {
    if relays.is_empty() {
        return reply;
    }
    let frame = reply.resolve().await;
    crate::relay::relay(deps, id, app, relays).await;
    Reply::Ready(frame)
}

/// Who a message is from: a user of the app, or one of its functions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Author<'a> {
    pub app: &'a AppId,
    pub from: &'a str,
}

/// What is left of a publish once its functions ran, with the messages they published
/// elsewhere (each with the function that did).
pub(crate) enum Prepared {
    /// Store this message on this channel, then hand it to the policy's after-publish functions.
    Commit(
        ChannelKey,
        NewMessage,
        Option<Arc<ChannelPolicy>>,
        Vec<(String, Publication)>,
    ),
    /// Nothing to store (a function dropped it): this is the answer.
    Answered(Reply, Vec<(String, Publication)>),
}

/// Everything after permission and before the commit: the channel's functions, the size of the
/// frame that will carry the message.
pub(crate) async fn prepare(
    deps: &Deps,
    id: &ConnectionId,
    author: Author<'_>,
    channel: &ChannelName,
    data: Value,
    msg_id: String,
    dedup_window_ms: Option<u64>,
) -> Result<Prepared, ProtocolError> {
    let Author { app, from } = author;
    let ts = deps.clock.now_ms();
    let associations = deps
        .associations
        .current()
        .await
        .map_err(|e| internal(id, "could not load associations", &e))?;
    let policy = associations.resolve(app, channel);
    if let Some(why) = policy
        .as_ref()
        .filter(|p| p.encrypted)
        .and_then(|_| echo_core::envelope::check(&data))
    {
        return Err(ProtocolError::bad_request(format!(
            "{channel} is encrypted: publish end-to-end encrypted data ({why})"
        )));
    }
    let (data, relays) = match &policy {
        None => (data, Vec::new()),
        Some(policy) => {
            let input = FunctionInput {
                app: app.clone(),
                channel: channel.clone(),
                message: FunctionMessage {
                    id: msg_id.clone(),
                    data,
                    from: from.to_owned(),
                    ts,
                    seq: None,
                },
            };
            let mut runs = Vec::with_capacity(policy.functions.len());
            let outcome = run_chain(
                deps.invoker.as_ref(),
                policy,
                input,
                deps.limits.max_message_bytes,
                &mut runs,
            )
            .await;
            FunctionRun::record_all(&runs, deps.metrics.as_ref());
            match outcome {
                ChainOutcome::Deliver { data, publish, .. } => (data, publish),
                ChainOutcome::Dropped {
                    function,
                    reason,
                    publish,
                } => {
                    deps.metrics.record(Metric::MessageDropped);
                    tracing::info!(connection_id = %id, channel = %channel, message_id = %msg_id, function, "message dropped");
                    let ack = Ack {
                        id: msg_id,
                        channel: channel.clone(),
                        seq: None,
                        dropped: true,
                        reason: Some(reason.unwrap_or_else(|| format!("dropped by {function}"))),
                        duplicate: false,
                    };
                    return Ok(Prepared::Answered(
                        Reply::Ready(Some(ServerFrame::Ack(ack))),
                        publish,
                    ));
                }
                ChainOutcome::Failed { function, error } => {
                    return Err(ProtocolError::new(
                        ErrorCode::FunctionFailed,
                        format!("function {function} failed: {error}; nothing was delivered"),
                    ));
                }
            }
        }
    };
    let key = ChannelKey::new(app.clone(), channel.clone());
    let message = NewMessage {
        id: msg_id.clone(),
        data,
        from: from.to_owned(),
        ts,
        dedup_window_ms,
    };
    let frame_len = largest_frame_len(channel, &message);
    if frame_len > deps.limits.max_message_bytes {
        return Err(ProtocolError::new(
            ErrorCode::TooLarge,
            format!(
                "delivered, this message would take a {frame_len}-byte frame (its data with the \
                 channel, id, sender and seq around it), over the {}-byte limit; nothing was \
                 stored",
                deps.limits.max_message_bytes
            ),
        ));
    }
    Ok(Prepared::Commit(key, message, policy, relays))
}

/// Hands the message to the store; the reply is the ack once it is stored (and `after` was
/// handed the stored message).
pub(crate) async fn commit(
    deps: &Deps,
    id: &ConnectionId,
    channel: &ChannelName,
    key: ChannelKey,
    message: NewMessage,
    msg_id: String,
    after: Option<Arc<ChannelPolicy>>,
) -> Result<Reply, ProtocolError> {
    // A store that commits on `begin` (serial ordering) answers a duplicate there; the
    // pipelined one, once the commit completes: both are answered below.
    let committing = match deps.publisher.begin(&key, message).await {
        Ok(committing) => committing,
        Err(StoreError::Duplicate { id, seq }) => {
            Box::pin(std::future::ready(Err(StoreError::Duplicate { id, seq })))
        }
        Err(e) => return Err(internal(id, "could not store the message", &e)),
    };
    let (metrics, id, channel) = (deps.metrics.clone(), id.clone(), channel.clone());
    let notifier = Notifier {
        invoker: deps.invoker.clone(),
        metrics: deps.metrics.clone(),
        mode: deps.after_publish,
    };
    Ok(Reply::Pending(Box::pin(async move {
        Some(match committing.await {
            Ok(stored) => {
                metrics.record(Metric::MessagePublished);
                let seq = stored.seq;
                notifier.notify(key.app, stored, after).await;
                ServerFrame::Ack(Ack {
                    id: msg_id,
                    channel,
                    seq: Some(seq),
                    dropped: false,
                    reason: None,
                    duplicate: false,
                })
            }
            Err(StoreError::Duplicate { seq, .. }) => {
                metrics.record(Metric::MessageDuplicate);
                ServerFrame::Ack(Ack {
                    id: msg_id,
                    channel,
                    seq: Some(seq),
                    dropped: false,
                    reason: None,
                    duplicate: true,
                })
            }
            Err(e) => internal(&id, "could not store the message", &e)
                .with_channel(&channel)
                .with_id(Some(msg_id))
                .to_frame(),
        })
    })))
}

#[cfg(test)]
mod tests {

    use echo_core::limits::Limits;
    use serde_json::json;

    use crate::testing::{Harness, publish_to_rooms_only};

    #[tokio::test]
    async fn publish_runs_the_channel_functions_and_acks_once_stored() {
        let h = Harness::new();
        let id = h.connect("c1", |c| c).await;
        let ack = h
            .send(
                &id,
                json!({"action": "publish", "channel": "loud", "data": {"text": "hi"}, "id": "m1"}),
            )
            .await;
        assert_eq!(
            ack,
            Some(json!({"type": "ack", "id": "m1", "channel": "loud", "seq": 1}))
        );
        assert_eq!(h.stored("loud").await, [(1, json!({"text": "HI"}))]);
        assert_eq!(
            *h.recorder.dispatched.lock().unwrap(),
            [("chat-demo/loud".to_owned(), 1)]
        );
        // A channel without functions stores the data as sent; Echo makes up an id.
        let ack = h
            .send(
                &id,
                json!({"action": "publish", "channel": "plain", "data": {"text": "hi"}}),
            )
            .await
            .unwrap();
        assert_eq!(ack["seq"], 1);
        assert_eq!(ack["id"].as_str().map(str::len), Some(16), "{ack}");
        assert_eq!(h.stored("plain").await, [(1, json!({"text": "hi"}))]);
        assert_eq!(
            *h.recorder.metrics.lock().unwrap(),
            ["shout:true", "published", "published"]
        );
    }

    #[tokio::test]
    async fn a_repeated_id_is_committed_once_and_acked_with_the_first_seq() {
        let h = Harness::new();
        let first = h.connect("c1", |c| c).await;
        let second = h.connect("c2", |c| c).await;
        let publish =
            |id: &str| json!({"action": "publish", "channel": "loud", "data": "hi", "id": id});
        assert_eq!(h.send(&first, publish("m1")).await.unwrap()["seq"], 1);
        assert_eq!(h.send(&first, publish("m2")).await.unwrap()["seq"], 2);
        let repeat =
            json!({"type": "ack", "id": "m1", "channel": "loud", "seq": 1, "duplicate": true});
        // On the same connection and on another: the first one's ack, nothing stored.
        assert_eq!(h.send(&first, publish("m1")).await, Some(repeat.clone()));
        assert_eq!(h.send(&second, publish("m1")).await, Some(repeat));
        assert_eq!(h.stored("loud").await.len(), 2);
        assert_eq!(h.recorder.dispatched.lock().unwrap().len(), 2);
        let metrics = h.recorder.metrics.lock().unwrap().clone();
        assert_eq!(metrics.iter().filter(|m| *m == "duplicate").count(), 2);
        // Another channel is another message; ids Echo makes up are never compared.
        let other = json!({"action": "publish", "channel": "plain", "data": "hi", "id": "m1"});
        assert_eq!(h.send(&first, other).await.unwrap()["seq"], 1);
        let unnamed = json!({"action": "publish", "channel": "plain", "data": "hi"});
        assert_eq!(h.send(&first, unnamed.clone()).await.unwrap()["seq"], 2);
        assert_eq!(h.send(&first, unnamed).await.unwrap()["seq"], 3);
        // Past the window the id is free again.
        h.clock.advance_ms(120_000);
        assert_eq!(h.send(&second, publish("m1")).await.unwrap()["seq"], 3);
    }

    #[tokio::test]
    async fn a_refused_publish_takes_no_id() {
        let h = Harness::with(Limits::default(), 2, 1);
        let id = h.connect("c1", |c| c).await;
        let publish =
            |id: &str| json!({"action": "publish", "channel": "news", "data": 1, "id": id});
        assert_eq!(h.send(&id, publish("a")).await.unwrap()["seq"], 1);
        let refused = h.send(&id, publish("b")).await.unwrap();
        assert_eq!(refused["code"], "rate_limited", "{refused}");
        h.clock.advance_ms(500);
        let ack = h.send(&id, publish("b")).await.unwrap();
        assert_eq!(ack["seq"], 2, "{ack}");
        assert_eq!(ack.get("duplicate"), None, "{ack}");
    }

    #[tokio::test]
    async fn a_dropping_function_acks_dropped_and_nothing_is_stored() {
        let h = Harness::new();
        let id = h.connect("c1", |c| c).await;
        let ack = h
            .send(
                &id,
                json!({"action": "publish", "channel": "hushed", "data": "psst", "id": "m1"}),
            )
            .await;
        assert_eq!(
            ack,
            Some(
                json!({"type": "ack", "id": "m1", "channel": "hushed", "dropped": true, "reason": "too quiet"})
            )
        );
        assert!(h.stored("hushed").await.is_empty());
        assert!(h.recorder.dispatched.lock().unwrap().is_empty());
        assert_eq!(
            *h.recorder.metrics.lock().unwrap(),
            ["quiet:true", "dropped"]
        );
    }

    #[tokio::test]
    async fn a_failing_function_on_a_rejecting_channel_delivers_nothing() {
        let h = Harness::new();
        let id = h.connect("c1", |c| c).await;
        let reply = h
            .send(
                &id,
                json!({"action": "publish", "channel": "fragile", "data": "x", "id": "m1"}),
            )
            .await
            .unwrap();
        assert_eq!(reply["code"], "function_failed", "{reply}");
        assert_eq!(reply["id"], "m1");
        assert_eq!(reply["channel"], "fragile");
        assert!(
            reply["message"].as_str().unwrap().contains("broken"),
            "{reply}"
        );
        assert!(h.stored("fragile").await.is_empty());
        assert!(h.recorder.dispatched.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn after_publish_functions_get_the_stored_message_and_their_failures_stay_theirs() {
        let h = Harness::new();
        let id = h.connect("c1", |c| c).await;
        let publish =
            json!({"action": "publish", "channel": "audited", "data": {"text": "hi"}, "id": "m1"});
        // `broken` fails after publish: the publisher is not told, the message is delivered.
        assert_eq!(
            h.send(&id, publish).await,
            Some(json!({"type": "ack", "id": "m1", "channel": "audited", "seq": 1}))
        );
        assert_eq!(h.stored("audited").await, [(1, json!({"text": "HI"}))]);
        assert_eq!(h.recorder.dispatched.lock().unwrap().len(), 1);
        let metrics = h.recorder.metrics.lock().unwrap().clone();
        let after: Vec<&String> = metrics.iter().filter(|m| m.starts_with("after:")).collect();
        // Once each: `audit` saw the seq (it fails without one).
        assert_eq!(after, ["after:audit:true", "after:broken:false"]);
    }

    #[tokio::test]
    async fn publishing_faster_than_allowed_is_refused_with_the_time_to_wait() {
        let h = Harness::with(Limits::default(), 2, 1);
        let id = h.connect("c1", |c| c).await;
        let publish = json!({"action": "publish", "channel": "news", "data": 1, "id": "m"});
        assert_eq!(h.send(&id, publish.clone()).await.unwrap()["seq"], 1);
        let reply = h.send(&id, publish.clone()).await.unwrap();
        assert_eq!(reply["code"], "rate_limited", "{reply}");
        assert_eq!(reply["id"], "m");
        assert!(
            reply["message"]
                .as_str()
                .unwrap()
                .contains("retry in 500 ms"),
            "{reply}"
        );
        assert_eq!(
            h.recorder
                .metrics
                .lock()
                .unwrap()
                .iter()
                .filter(|m| *m == "rate_limited")
                .count(),
            1
        );
        // Once the allowance is back, the next one goes through.
        h.clock.advance_ms(500);
        let next = json!({"action": "publish", "channel": "news", "data": 1, "id": "n"});
        assert_eq!(h.send(&id, next).await.unwrap()["seq"], 2);
        assert_eq!(h.stored("news").await.len(), 2);
    }

    #[tokio::test]
    async fn nobody_publishes_to_reserved_or_forbidden_channels() {
        let h = Harness::new();
        let id = h.connect("c1", publish_to_rooms_only).await;
        for channel in ["$status", "lobby"] {
            let reply = h
                .send(
                    &id,
                    json!({"action": "publish", "channel": channel, "data": 1}),
                )
                .await
                .unwrap();
            assert_eq!(reply["code"], "forbidden", "{channel}: {reply}");
        }
        assert!(h.stored("lobby").await.is_empty());
        assert!(h.stored("$status").await.is_empty());
    }
}
