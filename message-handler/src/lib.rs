//! Client frames: the action routes (`subscribe`, `unsubscribe`, `publish`, `history`, `ping`)
//! and `$default` (everything else, which gets a `bad_request` error).
//!
//! The answer to a frame is the event's response body, which the gateway sends back to the
//! client (a two-way route response), so acknowledging a publish costs no management-API call.
//! `subscribe` is the exception: its `subscribed` frame and any replay are posted through the
//! gateway while the channel is locked, so that they arrive before the channel's next message.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use echo_core::associations::AssociationsSource;
use echo_core::auth::Claims;
use echo_core::channel::{ChannelKey, ChannelName};
use echo_core::clock::Clock;
use echo_core::function::{
    ChainOutcome, FunctionInput, FunctionInvoker, FunctionMessage, run_chain,
};
use echo_core::gateway::{Frame, Gateway};
use echo_core::ids::{ConnectionId, random_hex};
use echo_core::limits::Limits;
use echo_core::message::NewMessage;
use echo_core::metrics::{Metric, Metrics};
use echo_core::presence::StatusEvent;
use echo_core::protocol::{
    Ack, ClientFrame, ErrorCode, MAX_HISTORY_LIMIT, ProtocolError, ServerFrame,
};
use echo_core::publish::Publisher;
use echo_core::rate::RateLimiter;
use echo_core::store::{ConnectionStore, StoreError, Subscribed};
use serde_json::Value;

/// What the message handler needs.
pub struct Deps {
    pub connections: Arc<dyn ConnectionStore>,
    pub publisher: Arc<Publisher>,
    pub associations: Arc<dyn AssociationsSource>,
    pub invoker: Arc<dyn FunctionInvoker>,
    pub gateway: Arc<dyn Gateway>,
    pub clock: Arc<dyn Clock>,
    pub limits: Limits,
    pub metrics: Arc<dyn Metrics>,
    /// Publishes per connection (the local edge); API Gateway's stage throttling on AWS.
    pub limiter: Arc<dyn RateLimiter>,
}

/// Handles a `MESSAGE` event; the response body, when present, goes back to the client.
pub async fn handle(
    deps: &Deps,
    event: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    let Some(id) = event
        .request_context
        .connection_id
        .as_deref()
        .map(ConnectionId::from)
    else {
        return respond(Some(
            ProtocolError::bad_request("event has no connectionId").to_frame(),
        ));
    };
    let body = event.body.as_deref().unwrap_or_default();
    respond(handle_frame(deps, &id, body, event.is_base64_encoded).await)
}

fn respond(frame: Option<ServerFrame>) -> ApiGatewayProxyResponse {
    let mut r = ApiGatewayProxyResponse::default();
    r.status_code = 200;
    r.body = frame.map(|f| Body::Text(f.to_json()));
    r
}

/// The reply to a frame: ready, or a publish whose commit is under way.
pub enum Reply {
    Ready(Option<ServerFrame>),
    /// Resolves to the ack (or error) once the message is stored and dispatched.
    Pending(Pin<Box<dyn Future<Output = Option<ServerFrame>> + Send>>),
}

impl Reply {
    pub async fn resolve(self) -> Option<ServerFrame> {
        match self {
            Self::Ready(frame) => frame,
            Self::Pending(pending) => pending.await,
        }
    }
}

/// Handles one frame from connection `id`; returns the reply, if any.
pub async fn handle_frame(
    deps: &Deps,
    id: &ConnectionId,
    body: &str,
    is_binary: bool,
) -> Option<ServerFrame> {
    start_frame(deps, id, body, is_binary).await.resolve().await
}

/// Handles one frame up to the point where only waiting is left: a publish returns once its
/// message is handed to the store (in the order frames are started), and its ack comes with the
/// pending reply. Everything else is complete on return.
pub async fn start_frame(deps: &Deps, id: &ConnectionId, body: &str, is_binary: bool) -> Reply {
    if is_binary {
        return Reply::Ready(Some(
            ProtocolError::bad_request("binary frames are not supported: send JSON text frames")
                .to_frame(),
        ));
    }
    if body.len() > deps.limits.max_message_bytes {
        return Reply::Ready(Some(
            ProtocolError::new(
                ErrorCode::TooLarge,
                format!(
                    "frame is {} bytes; the limit is {} bytes",
                    body.len(),
                    deps.limits.max_message_bytes
                ),
            )
            .with_id(ClientFrame::request_id(body))
            .to_frame(),
        ));
    }
    let frame = match ClientFrame::parse(body) {
        Ok(ClientFrame::Ping) => return Reply::Ready(Some(ServerFrame::Pong)),
        Ok(f) => f,
        Err(e) => return Reply::Ready(Some(e.to_frame())),
    };
    let claims = match deps.connections.get_connection(id).await {
        Ok(Some(record)) => record.claims,
        Ok(None) => {
            return Reply::Ready(Some(
                ProtocolError::new(
                    ErrorCode::Unauthorized,
                    "this connection is not registered (it may have expired): reconnect",
                )
                .to_frame(),
            ));
        }
        Err(e) => {
            return Reply::Ready(Some(
                internal(id, "could not load the connection", &e).to_frame(),
            ));
        }
    };
    let action = frame.action();
    let result = match frame {
        // Answered above, without a store read: keepalives are frequent.
        ClientFrame::Ping => Ok(Reply::Ready(Some(ServerFrame::Pong))),
        ClientFrame::Subscribe { channel, since } => subscribe(deps, id, &claims, &channel, since)
            .await
            .map(Reply::Ready)
            .map_err(|e| e.with_channel(&channel)),
        ClientFrame::Unsubscribe { channel } => unsubscribe(deps, id, &claims, &channel)
            .await
            .map(Reply::Ready)
            .map_err(|e| e.with_channel(&channel)),
        ClientFrame::Publish {
            channel,
            data,
            id: msg_id,
        } => {
            let msg_id = msg_id.unwrap_or_else(|| random_hex(8));
            publish(deps, id, &claims, &channel, data, msg_id.clone())
                .await
                .map_err(|e| e.with_channel(&channel).with_id(Some(msg_id)))
        }
        ClientFrame::History {
            channel,
            since,
            limit,
        } => history(deps, id, &claims, &channel, since, limit)
            .await
            .map(Reply::Ready)
            .map_err(|e| e.with_channel(&channel)),
    };
    match result {
        Ok(reply) => reply,
        Err(e) => {
            tracing::debug!(connection_id = %id, action, code = e.code.as_str(), message = %e.message, "frame refused");
            Reply::Ready(Some(e.to_frame()))
        }
    }
}

fn internal(id: &ConnectionId, what: &str, e: &dyn std::error::Error) -> ProtocolError {
    tracing::error!(connection_id = %id, error = %e, "{what}");
    ProtocolError::new(ErrorCode::Internal, what)
}

async fn subscribe(
    deps: &Deps,
    id: &ConnectionId,
    claims: &Claims,
    channel: &ChannelName,
    since: Option<u64>,
) -> Result<Option<ServerFrame>, ProtocolError> {
    claims.authorize_subscribe(channel)?;
    let key = ChannelKey::new(claims.app.clone(), channel.clone());
    {
        // No message is dispatched to the channel while the subscription is put in place and the
        // replay read: the client gets every message after `since` exactly once.
        let (_hold, seq) = deps
            .publisher
            .hold(&key)
            .await
            .map_err(|e| internal(id, "could not read the channel", &e))?;
        let added = match deps
            .connections
            .subscribe(id, &key, deps.limits.max_subscriptions)
            .await
        {
            Ok(added) => added,
            Err(StoreError::TooManySubscriptions { max }) => {
                return Err(ProtocolError::new(
                    ErrorCode::LimitExceeded,
                    format!("a connection may hold at most {max} subscriptions"),
                ));
            }
            Err(e) => return Err(internal(id, "could not subscribe", &e)),
        };
        // Messages after `seq` reach the new subscription live; the replay stops at it.
        let replay = match since {
            Some(since) if since < seq => {
                let mut replay = deps
                    .publisher
                    .history
                    .range(&key, since, MAX_HISTORY_LIMIT as usize)
                    .await
                    .map_err(|e| internal(id, "could not read history", &e))?;
                replay.retain(|m| m.seq <= seq);
                replay
            }
            _ => Vec::new(),
        };
        let subscribed = ServerFrame::Subscribed {
            channel: channel.clone(),
            seq,
        };
        for frame in std::iter::once(subscribed).chain(replay.into_iter().map(ServerFrame::Message))
        {
            if let Err(e) = deps.gateway.post(id, &Frame::text(frame.to_json())).await {
                tracing::info!(connection_id = %id, error = %e, "could not post to subscriber");
                break;
            }
        }
        if added == Subscribed::AlreadySubscribed {
            return Ok(None);
        }
    }
    if !channel.is_reserved() {
        deps.publisher
            .status(
                &claims.app,
                StatusEvent::Subscribed,
                id,
                &claims.sub,
                Some(channel),
                deps.clock.now_ms(),
            )
            .await;
    }
    Ok(None)
}

async fn unsubscribe(
    deps: &Deps,
    id: &ConnectionId,
    claims: &Claims,
    channel: &ChannelName,
) -> Result<Option<ServerFrame>, ProtocolError> {
    let key = ChannelKey::new(claims.app.clone(), channel.clone());
    let existed = deps
        .connections
        .unsubscribe(id, &key)
        .await
        .map_err(|e| internal(id, "could not unsubscribe", &e))?;
    if existed && !channel.is_reserved() {
        deps.publisher
            .status(
                &claims.app,
                StatusEvent::Unsubscribed,
                id,
                &claims.sub,
                Some(channel),
                deps.clock.now_ms(),
            )
            .await;
    }
    Ok(Some(ServerFrame::Unsubscribed {
        channel: channel.clone(),
    }))
}

async fn publish(
    deps: &Deps,
    id: &ConnectionId,
    claims: &Claims,
    channel: &ChannelName,
    data: Value,
    msg_id: String,
) -> Result<Reply, ProtocolError> {
    claims.authorize_publish(channel)?;
    let ts = deps.clock.now_ms();
    if let Err(retry_ms) = deps.limiter.check(id, ts) {
        return Err(ProtocolError::new(
            ErrorCode::RateLimited,
            format!("this connection publishes faster than allowed; retry in {retry_ms} ms"),
        ));
    }
    let associations = deps
        .associations
        .current()
        .await
        .map_err(|e| internal(id, "could not load associations", &e))?;
    let data = match associations.resolve(&claims.app, channel) {
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
                },
            };
            let mut runs = Vec::with_capacity(policy.functions.len());
            let outcome = run_chain(
                deps.invoker.as_ref(),
                &policy,
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
                    return Ok(Reply::Ready(Some(ServerFrame::Ack(Ack {
                        id: msg_id,
                        channel: channel.clone(),
                        seq: None,
                        dropped: true,
                        reason: Some(reason.unwrap_or_else(|| format!("dropped by {function}"))),
                    }))));
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
    let committing = deps
        .publisher
        .begin(&key, message)
        .await
        .map_err(|e| internal(id, "could not store the message", &e))?;
    let (metrics, id, channel) = (deps.metrics.clone(), id.clone(), channel.clone());
    Ok(Reply::Pending(Box::pin(async move {
        Some(match committing.await {
            Ok(stored) => {
                metrics.record(Metric::MessagePublished);
                ServerFrame::Ack(Ack {
                    id: msg_id,
                    channel,
                    seq: Some(stored.seq),
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

async fn history(
    deps: &Deps,
    id: &ConnectionId,
    claims: &Claims,
    channel: &ChannelName,
    since: u64,
    limit: u32,
) -> Result<Option<ServerFrame>, ProtocolError> {
    claims.authorize_subscribe(channel)?;
    let key = ChannelKey::new(claims.app.clone(), channel.clone());
    let messages = deps
        .publisher
        .history
        .range(&key, since, limit as usize)
        .await
        .map_err(|e| internal(id, "could not read history", &e))?;
    Ok(Some(ServerFrame::History {
        channel: channel.clone(),
        messages,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use echo_core::associations::{Associations, LiveAssociations};
    use echo_core::auth::Claims;
    use echo_core::channel::AppId;
    use echo_core::clock::ManualClock;
    use echo_core::function::{FunctionOutput, InvokeError, map_text};
    use echo_core::gateway::{ConnectionInfo, GatewayError};
    use echo_core::message::StoredMessage;
    use echo_core::publish::{DispatchError, Dispatcher};
    use echo_core::store::{ConnectionRecord, MemoryStore};
    use std::sync::Mutex;

    /// Records what was posted, dispatched and measured.
    #[derive(Default)]
    struct Recorder {
        posted: Mutex<Vec<String>>,
        dispatched: Mutex<Vec<u64>>,
        metrics: Mutex<Vec<String>>,
    }

    impl Metrics for Recorder {
        fn record(&self, m: Metric<'_>) {
            let name = match m {
                Metric::MessagePublished => "published".to_owned(),
                Metric::MessageDropped => "dropped".to_owned(),
                Metric::FunctionRun { function, ok, .. } => format!("{function}:{ok}"),
            };
            self.metrics.lock().unwrap().push(name);
        }
    }

    #[async_trait]
    impl Gateway for Recorder {
        async fn post(&self, _: &ConnectionId, frame: &Frame) -> Result<(), GatewayError> {
            self.posted.lock().unwrap().push(frame.as_str().to_owned());
            Ok(())
        }
        async fn close(&self, _: &ConnectionId) -> Result<(), GatewayError> {
            Ok(())
        }
        async fn info(&self, _: &ConnectionId) -> Result<ConnectionInfo, GatewayError> {
            Err(GatewayError::Gone)
        }
    }

    #[async_trait]
    impl Dispatcher for Recorder {
        async fn dispatch(&self, _: &ChannelKey, m: &StoredMessage) -> Result<(), DispatchError> {
            self.dispatched.lock().unwrap().push(m.seq);
            Ok(())
        }
    }

    struct Shout;

    #[async_trait]
    impl FunctionInvoker for Shout {
        async fn invoke(
            &self,
            _: &str,
            input: &FunctionInput,
        ) -> Result<FunctionOutput, InvokeError> {
            let data = map_text(input.message.data.clone(), |t| t.to_uppercase());
            Ok(FunctionOutput::cont(data))
        }

        fn knows(&self, name: &str) -> bool {
            name == "shout"
        }
    }

    fn fixture() -> ApiGatewayWebsocketProxyRequest {
        let path = format!(
            "{}/../tests/fixtures/apigw-websocket-message.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn publish_fixture_runs_the_chain_commits_and_acks_in_the_response() {
        let store = Arc::new(MemoryStore::new());
        let recorder = Arc::new(Recorder::default());
        let associations = Associations::parse(
            r#"{"apps":{"chat-demo":{"channels":{"angry":{"functions":["shout"]}}}}}"#,
            &|n| n == "shout",
        )
        .unwrap();
        let deps = Deps {
            connections: store.clone(),
            publisher: Arc::new(Publisher::new(store.clone(), recorder.clone())),
            associations: Arc::new(LiveAssociations::new(associations)),
            invoker: Arc::new(Shout),
            gateway: recorder.clone(),
            clock: Arc::new(ManualClock::new(1_707_502_324_187)),
            limits: Limits::default(),
            metrics: recorder.clone(),
            limiter: Arc::new(echo_core::rate::Unlimited),
        };
        let event = fixture();
        let id = ConnectionId::from(event.request_context.connection_id.as_deref().unwrap());

        // Unknown connection: refused, nothing stored.
        let r = handle(&deps, &event).await;
        let Some(Body::Text(body)) = r.body else {
            panic!("no body")
        };
        assert!(body.contains(r#""code":"unauthorized""#), "{body}");

        store
            .put_connection(ConnectionRecord {
                id: id.clone(),
                claims: Claims::new(AppId::new("chat-demo").unwrap(), "alice", 4_000_000_000),
                connected_at: 0,
                expires_at: 4_000_000_000,
            })
            .await
            .unwrap();
        let r = handle(&deps, &event).await;
        assert_eq!(r.status_code, 200);
        let Some(Body::Text(body)) = r.body else {
            panic!("no body")
        };
        assert_eq!(
            body,
            r#"{"type":"ack","id":"m-1","channel":"angry","seq":1}"#
        );
        assert_eq!(*recorder.dispatched.lock().unwrap(), vec![1]);
        assert_eq!(
            *recorder.metrics.lock().unwrap(),
            vec!["shout:true", "published"]
        );
        let key = ChannelKey::decode("chat-demo/angry").unwrap();
        use echo_core::store::HistoryStore;
        let stored = store.range(&key, 0, 10).await.unwrap();
        assert_eq!(stored[0].data, serde_json::json!({"text": "HELLO"}));
        assert_eq!(stored[0].ts, 1_707_502_324_187);
    }
}
