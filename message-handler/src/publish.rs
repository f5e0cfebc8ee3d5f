//! `publish`: the channel's functions, then the commit; the ack once the message is stored. A
//! publish with an `order` takes its turn after the connection's earlier ones (see `order`).

use std::sync::Arc;

use echo_core::associations::ChannelPolicy;
use echo_core::auth::Claims;
use echo_core::channel::{ChannelKey, ChannelName};
use echo_core::function::{ChainOutcome, FunctionInput, FunctionMessage, run_chain};
use echo_core::ids::ConnectionId;
use echo_core::message::NewMessage;
use echo_core::metrics::Metric;
use echo_core::protocol::frame_size::largest_frame_len;
use echo_core::protocol::{Ack, ErrorCode, ProtocolError, ServerFrame};
use serde_json::Value;

use crate::after_publish::Notifier;
use crate::deps::Deps;
use crate::order::Order;
use crate::reply::{Reply, internal};

pub(crate) async fn publish(
    deps: &Deps,
    id: &ConnectionId,
    claims: &Claims,
    channel: &ChannelName,
    data: Value,
    msg_id: String,
    order: Option<Order>,
) -> Result<Reply, ProtocolError> {
    let started = tokio::time::Instant::now();
    let prepared = prepare(deps, id, claims, channel, data, msg_id.clone()).await;
    let Some(order) = order else {
        return match prepared? {
            Prepared::Commit(key, message, after) => {
                commit(deps, id, channel, key, message, msg_id, after).await
            }
            Prepared::Answered(reply) => Ok(reply),
        };
    };
    order.wait_turn(deps, id, channel, started).await;
    let reply = match prepared {
        Ok(Prepared::Commit(key, message, after)) => {
            match commit(deps, id, channel, key, message, msg_id, after).await {
                // The next publish may commit once this one is stored.
                Ok(pending) => Ok(Reply::Ready(pending.resolve().await)),
                Err(e) => Err(e),
            }
        }
        Ok(Prepared::Answered(reply)) => Ok(reply),
        Err(e) => Err(e),
    };
    order.settle(deps, id, channel).await;
    reply
}

/// What is left of a publish once its functions ran.
enum Prepared {
    /// Store this message on this channel, then hand it to the policy's after-publish functions.
    Commit(ChannelKey, NewMessage, Option<Arc<ChannelPolicy>>),
    /// Nothing to store (a function dropped it): this is the answer.
    Answered(Reply),
}

/// Everything before the commit: permission, the channel's functions, the size of the
/// frame that will carry the message.
async fn prepare(
    deps: &Deps,
    id: &ConnectionId,
    claims: &Claims,
    channel: &ChannelName,
    data: Value,
    msg_id: String,
) -> Result<Prepared, ProtocolError> {
    claims.authorize_publish(channel)?;
    let ts = deps.clock.now_ms();
    let associations = deps
        .associations
        .current()
        .await
        .map_err(|e| internal(id, "could not load associations", &e))?;
    let policy = associations.resolve(&claims.app, channel);
    if let Some(why) = policy
        .as_ref()
        .filter(|p| p.encrypted)
        .and_then(|_| echo_core::envelope::check(&data))
    {
        return Err(ProtocolError::bad_request(format!(
            "{channel} is encrypted: publish end-to-end encrypted data ({why})"
        )));
    }
    let data = match &policy {
        None => data,
        Some(policy) => {
            let input = FunctionInput {
                app: claims.app.clone(),
                channel: channel.clone(),
                message: FunctionMessage {
                    id: msg_id.clone(),
                    data,
                    from: claims.sub.clone(),
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
            for run in &runs {
                deps.metrics.record(Metric::FunctionRun {
                    function: &run.function,
                    elapsed_ms: run.elapsed.as_secs_f64() * 1000.0,
                    ok: run.ok,
                });
            }
            match outcome {
                ChainOutcome::Deliver { data, .. } => data,
                ChainOutcome::Dropped { function, reason } => {
                    deps.metrics.record(Metric::MessageDropped);
                    tracing::info!(connection_id = %id, channel = %channel, message_id = %msg_id, function, "message dropped");
                    return Ok(Prepared::Answered(Reply::Ready(Some(ServerFrame::Ack(
                        Ack {
                            id: msg_id,
                            channel: channel.clone(),
                            seq: None,
                            dropped: true,
                            reason: Some(
                                reason.unwrap_or_else(|| format!("dropped by {function}")),
                            ),
                        },
                    )))));
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
    let key = ChannelKey::new(claims.app.clone(), channel.clone());
    let message = NewMessage {
        id: msg_id.clone(),
        data,
        from: claims.sub.clone(),
        ts,
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
    Ok(Prepared::Commit(key, message, policy))
}

/// Hands the message to the store; the reply is the ack once it is stored (and `after` was
/// handed the stored message).
async fn commit(
    deps: &Deps,
    id: &ConnectionId,
    channel: &ChannelName,
    key: ChannelKey,
    message: NewMessage,
    msg_id: String,
    after: Option<Arc<ChannelPolicy>>,
) -> Result<Reply, ProtocolError> {
    let committing = deps
        .publisher
        .begin(&key, message)
        .await
        .map_err(|e| internal(id, "could not store the message", &e))?;
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
        assert_eq!(h.send(&id, publish).await.unwrap()["seq"], 2);
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
