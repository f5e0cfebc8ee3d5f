//! `$connect` and `$disconnect`.
//!
//! `$connect` verifies the token from `?token=`, runs the app's `onConnect` hook if it has one
//! (see [`echo_core::hook`]), and records the connection with its claims; any answer but 200
//! makes the gateway refuse the WebSocket upgrade (the client sees the status: 401 for a bad
//! token, 403 when `onConnect` denies), and a refusal is kept for a client that named its attempt
//! ([`echo_core::connect_attempt`]). `$disconnect` removes the connection and its subscriptions;
//! it is best effort on AWS, so fan-out also removes connections the gateway reports gone.
//!
//! Both publish events to the app's `$status` channel; a `$disconnect` also ends the user's
//! presence on the connection's channels. The same Lambda runs the sweep, every minute on a
//! schedule: it ends connections whose records expired without a `$disconnect`
//! ([`echo_core::disconnection`]).

use std::sync::Arc;

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use echo_core::associations::AssociationsSource;
use echo_core::auth::{Claims, TokenVerifier};
use echo_core::clock::Clock;
use echo_core::connect_attempt::{AttemptId, REFUSAL_TTL_MS, Refusal};
use echo_core::disconnection::{Disconnections, Swept};
use echo_core::function::relay::{Relay, Relayed};
use echo_core::function::{FunctionInvoker, FunctionRun};
use echo_core::hook::{ConnectInput, Decision, decide};
use echo_core::ids::ConnectionId;
use echo_core::limits::Limits;
use echo_core::metrics::{Metric, Metrics};
use echo_core::presence::Presence;
use echo_core::protocol::{ErrorCode, ProtocolError};
use echo_core::publish::Publisher;
use echo_core::status::StatusEvent;
use echo_core::store::{ConnectRefusals, ConnectionRecord, ConnectionRecords, StoreResult};
use serde::{Deserialize, Serialize};

/// What the connect handler needs.
pub struct Deps {
    pub verifier: TokenVerifier,
    /// Where each app's `onConnect` hook is found, and what runs it.
    pub associations: Arc<dyn AssociationsSource>,
    pub invoker: Arc<dyn FunctionInvoker>,
    /// Where the messages `onConnect` functions publish go.
    pub relay: Arc<dyn Relay>,
    /// Where each `onConnect` function's run is counted.
    pub metrics: Arc<dyn Metrics>,
    /// Connection records: what `$connect`, `$disconnect` and the sweep write and read.
    pub connections: Arc<dyn ConnectionRecords>,
    /// Where a refused connect that names its attempt is kept for its client.
    pub refusals: Arc<dyn ConnectRefusals>,
    pub publisher: Arc<Publisher>,
    /// Ends presence on the channels of a connection that disconnects.
    pub presence: Arc<Presence>,
    pub clock: Arc<dyn Clock>,
    pub limits: Limits,
}

/// What the connect Lambda is invoked with: API Gateway's `$connect` and `$disconnect` events,
/// or the sweep schedule's `{"sweep":{}}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Invocation {
    Sweep { sweep: SweepEvent },
    Gateway(Box<ApiGatewayWebsocketProxyRequest>),
}

/// The sweep schedule's event: `{"sweep":{}}`.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepEvent {}

/// What the connect Lambda answers: API Gateway's response, or what a sweep did.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Answer {
    Gateway(Box<ApiGatewayProxyResponse>),
    Swept(Swept),
}

/// Handles an invocation; only a sweep that could not read the store fails.
pub async fn invoked(deps: &Deps, invocation: &Invocation) -> StoreResult<Answer> {
    match invocation {
        Invocation::Gateway(event) => Ok(Answer::Gateway(Box::new(handle(deps, event).await))),
        Invocation::Sweep { .. } => sweep(deps).await.map(Answer::Swept),
    }
}

/// Handles a `$connect` or `$disconnect` event.
pub async fn handle(
    deps: &Deps,
    event: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    let ctx = &event.request_context;
    let Some(id) = ctx.connection_id.as_deref().map(ConnectionId::from) else {
        return error(400, ProtocolError::bad_request("event has no connectionId"));
    };
    match ctx.event_type.as_deref() {
        Some("CONNECT") => match connect(deps, event, id).await {
            Ok(()) => ok(),
            Err(refused) => {
                keep_refusal(deps, event, &refused).await;
                error(i64::from(refused.status), refused.error)
            }
        },
        Some("DISCONNECT") => disconnect(deps, id).await,
        other => error(
            400,
            ProtocolError::bad_request(format!(
                "the connect handler takes CONNECT and DISCONNECT events, not {other:?}"
            )),
        ),
    }
}

async fn connect(
    deps: &Deps,
    event: &ApiGatewayWebsocketProxyRequest,
    id: ConnectionId,
) -> Result<(), Refused> {
    let token = event
        .query_string_parameters
        .first("token")
        .unwrap_or_default();
    let now_ms = deps.clock.now_ms();
    let claims = match deps.verifier.verify(token, now_ms / 1000).await {
        Ok(c) => c,
        Err(e) if e.is_unavailable() => {
            tracing::error!(connection_id = %id, error = %e, "could not check the token");
            return refuse(503, ProtocolError::new(ErrorCode::Internal, e.to_string()));
        }
        Err(e) => {
            tracing::info!(connection_id = %id, error = %e, "connection refused");
            return refuse(
                401,
                ProtocolError::new(ErrorCode::Unauthorized, e.to_string()),
            );
        }
    };
    let claims = admit(deps, event, &id, claims).await?;
    let record = ConnectionRecord {
        id: id.clone(),
        expires_at: deps.limits.record_expiry(now_ms, claims.exp),
        claims,
        connected_at: now_ms,
    };
    let (app, user) = (record.claims.app.clone(), record.claims.sub.clone());
    let limit = match deps.associations.current().await {
        Ok(associations) => associations.app_limits(&app).max_connections,
        Err(e) => {
            tracing::error!(connection_id = %id, error = %e, "could not load associations");
            return refuse(
                500,
                ProtocolError::new(ErrorCode::Internal, "could not load associations"),
            );
        }
    };
    let recorded = match limit {
        Some(max) => deps.connections.put_connection_within(record, max).await,
        None => deps.connections.put_connection(record).await.map(|()| true),
    };
    let accepted = match recorded {
        Ok(accepted) => accepted,
        Err(e) => {
            tracing::error!(connection_id = %id, error = %e, "could not record connection");
            return refuse(
                500,
                ProtocolError::new(ErrorCode::Internal, "could not record the connection"),
            );
        }
    };
    deps.metrics.record(Metric::AppConnect {
        app: app.as_str(),
        accepted,
    });
    if !accepted {
        let max = limit.unwrap_or_default();
        tracing::info!(connection_id = %id, app = %app, max, "connection refused: the app is full");
        return refuse(
            503,
            ProtocolError::new(
                ErrorCode::LimitExceeded,
                format!("app {app} holds its maximum of {max} connections: try again later"),
            ),
        );
    }
    tracing::info!(connection_id = %id, app = %app, user = %user, "connected");
    deps.publisher
        .status(&app, StatusEvent::Connected, &id, &user, None, now_ms)
        .await;
    Ok(())
}

/// A refused connect: the status API Gateway answers the upgrade with, and the error in its body.
struct Refused {
    status: u16,
    error: ProtocolError,
}

fn refuse<T>(status: u16, error: ProtocolError) -> Result<T, Refused> {
    Err(Refused { status, error })
}

/// Keeps a refusal for its client, when the connect named its attempt (`&attempt=ID`; see
/// [`echo_core::connect_attempt`]).
async fn keep_refusal(deps: &Deps, event: &ApiGatewayWebsocketProxyRequest, refused: &Refused) {
    let Some(attempt) = event
        .query_string_parameters
        .first("attempt")
        .and_then(AttemptId::parse)
    else {
        return;
    };
    let refusal = Refusal {
        status: refused.status,
        code: refused.error.code.as_str().to_owned(),
        message: refused.error.message.clone(),
    };
    let until = deps.clock.now_ms() + REFUSAL_TTL_MS;
    if let Err(e) = deps.refusals.keep_refusal(&attempt, &refusal, until).await {
        tracing::warn!(error = %e, "could not keep a refused connect's refusal for its client");
    }
}

/// The app's `onConnect` hook, if it has one: the claims the connection gets (the token's, their
/// permissions replaced when the hook gave some), or the refusal (403 with the hook's reason).
async fn admit(
    deps: &Deps,
    event: &ApiGatewayWebsocketProxyRequest,
    id: &ConnectionId,
    mut claims: Claims,
) -> Result<Claims, Refused> {
    let associations = deps.associations.current().await.map_err(|e| {
        tracing::error!(connection_id = %id, error = %e, "could not load associations");
        Refused {
            status: 500,
            error: ProtocolError::new(ErrorCode::Internal, "could not load associations"),
        }
    })?;
    let Some(hook) = associations.connect_hook(&claims.app) else {
        return Ok(claims);
    };
    let source_ip = event
        .request_context
        .identity
        .source_ip
        .as_deref()
        .unwrap_or_default();
    let input = serde_json::to_value(ConnectInput::new(&claims, source_ip)).map_err(|e| {
        tracing::error!(connection_id = %id, error = %e, "could not encode the hook's input");
        Refused {
            status: 500,
            error: ProtocolError::new(ErrorCode::Internal, "could not run onConnect"),
        }
    })?;
    let (mut runs, mut published) = (Vec::with_capacity(hook.functions.len()), Vec::new());
    let decision = decide(
        deps.invoker.as_ref(),
        hook,
        &input,
        &mut runs,
        &mut published,
    )
    .await;
    FunctionRun::record_all(&runs, deps.metrics.as_ref());
    if !published.is_empty() {
        deps.relay
            .relay(Relayed::new(claims.app.clone(), id.clone(), published))
            .await;
    }
    match decision {
        Decision::Allow { channels } => {
            if channels.is_some() {
                claims.channels = channels;
            }
            Ok(claims)
        }
        Decision::Deny { reason } => {
            tracing::info!(connection_id = %id, app = %claims.app, user = %claims.sub, reason, "connection denied by onConnect");
            refuse(403, ProtocolError::new(ErrorCode::Forbidden, reason))
        }
    }
}

async fn disconnect(deps: &Deps, id: ConnectionId) -> ApiGatewayProxyResponse {
    match deps.disconnections().end(&id, deps.clock.now_ms()).await {
        Ok(Some(record)) => {
            tracing::info!(connection_id = %id, app = %record.claims.app, "disconnected");
            ok()
        }
        Ok(None) => ok(),
        Err(e) => {
            tracing::error!(connection_id = %id, error = %e, "could not remove connection");
            error(
                500,
                ProtocolError::new(ErrorCode::Internal, "could not remove the connection"),
            )
        }
    }
}

/// Ends the connections whose records expired without a `$disconnect` (the sweep schedule's
/// event).
pub async fn sweep(deps: &Deps) -> StoreResult<Swept> {
    let swept = deps.disconnections().sweep(deps.clock.now_ms()).await?;
    if swept != Swept::default() {
        tracing::info!(
            ended = swept.ended,
            failed = swept.failed,
            more = swept.more,
            "swept lapsed connections"
        );
    }
    Ok(swept)
}

impl Deps {
    fn disconnections(&self) -> Disconnections<'_> {
        Disconnections {
            connections: self.connections.as_ref(),
            publisher: &self.publisher,
            departures: self.presence.as_ref(),
        }
    }
}

fn ok() -> ApiGatewayProxyResponse {
    let mut r = ApiGatewayProxyResponse::default();
    r.status_code = 200;
    r
}

fn error(status: i64, e: ProtocolError) -> ApiGatewayProxyResponse {
    let mut r = ApiGatewayProxyResponse::default();
    r.status_code = status;
    r.body = Some(Body::Text(e.to_frame().to_json()));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use echo_core::auth::{Claims, TokenIssuer};
    use echo_core::channel::{AppId, ChannelKey, ChannelName};
    use echo_core::clock::ManualClock;
    use echo_core::gateway::{ConnectionInfo, Frame, Gateway, GatewayError};
    use echo_core::store::ConnectionRecords;
    use echo_core::store::Subscriptions;
    use echo_core::store::{HistoryStore, MemoryStore};

    const SECRET: &[u8] = b"fixture-secret-fixture-secret-fixture";

    struct NoGateway;

    #[async_trait::async_trait]
    impl Gateway for NoGateway {
        async fn post(&self, _: &ConnectionId, _: &Frame) -> Result<(), GatewayError> {
            Err(GatewayError::Gone)
        }
        async fn close(&self, _: &ConnectionId) -> Result<(), GatewayError> {
            Err(GatewayError::Gone)
        }
        async fn info(&self, _: &ConnectionId) -> Result<ConnectionInfo, GatewayError> {
            Err(GatewayError::Gone)
        }
    }

    /// No app here has hooks; `onConnect` is tested over a real edge (`tests/hooks.rs`).
    struct NoFunctions;

    #[async_trait::async_trait]
    impl FunctionInvoker for NoFunctions {
        async fn invoke(
            &self,
            name: &str,
            _: &echo_core::function::FunctionInput,
        ) -> Result<echo_core::function::FunctionOutput, echo_core::function::InvokeError> {
            Err(echo_core::function::InvokeError::Unknown(name.to_owned()))
        }

        async fn call(
            &self,
            name: &str,
            _: &serde_json::Value,
        ) -> Result<serde_json::Value, echo_core::function::InvokeError> {
            Err(echo_core::function::InvokeError::Unknown(name.to_owned()))
        }

        fn knows(&self, _: &str) -> bool {
            false
        }
    }

    /// No function here publishes.
    struct NoRelay;

    #[async_trait::async_trait]
    impl Relay for NoRelay {
        async fn relay(&self, relayed: Relayed) {
            panic!("nothing publishes here: {relayed:?}")
        }
    }

    fn deps(store: &Arc<MemoryStore>, clock: &ManualClock) -> Deps {
        let dispatcher = fanout::Inline(fanout::Deps {
            subscriptions: store.clone(),
            connections: store.clone(),
            gateway: Arc::new(NoGateway),
            metrics: Arc::new(echo_core::metrics::NoMetrics),
            departures: Arc::new(echo_core::presence::NoDepartures),
        });
        let publisher = Arc::new(Publisher::new(store.clone(), Arc::new(dispatcher)));
        Deps {
            verifier: TokenVerifier::new(SECRET).unwrap(),
            associations: Arc::new(echo_core::associations::LiveAssociations::new(
                echo_core::associations::Associations::empty(),
            )),
            invoker: Arc::new(NoFunctions),
            relay: Arc::new(NoRelay),
            metrics: Arc::new(echo_core::metrics::NoMetrics),
            connections: store.clone(),
            refusals: store.clone(),
            presence: Arc::new(Presence::new(store.clone(), publisher.clone())),
            publisher,
            clock: Arc::new(clock.clone()),
            limits: Limits::default(),
        }
    }

    fn fixture(name: &str) -> ApiGatewayWebsocketProxyRequest {
        let path = format!("{}/../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn with_token(
        mut event: ApiGatewayWebsocketProxyRequest,
        exp: u64,
    ) -> ApiGatewayWebsocketProxyRequest {
        let claims = Claims::new(AppId::new("chat-demo").unwrap(), "alice", exp);
        let token = TokenIssuer::new(SECRET).unwrap().issue(&claims).unwrap();
        let query = format!("token={token}");
        event.query_string_parameters = query.parse().unwrap();
        event
    }

    #[tokio::test]
    async fn connect_and_disconnect_fixtures() {
        let clock = ManualClock::new(1_700_000_000_000);
        let store = Arc::new(MemoryStore::with_clock(Arc::new(clock.clone())));
        let deps = deps(&store, &clock);
        let connect = with_token(fixture("apigw-websocket-connect.json"), 1_700_000_100);
        let id = ConnectionId::from(connect.request_context.connection_id.as_deref().unwrap());
        assert_eq!(handle(&deps, &connect).await.status_code, 200);
        let record = store.get_connection(&id).await.unwrap().unwrap();
        assert_eq!(record.claims.sub, "alice");
        assert_eq!(
            record.expires_at,
            1_700_000_100 + 5 + 30,
            "the record lives until the token's expiry and grace, within the 2 h age"
        );
        let status = ChannelKey::new(AppId::new("chat-demo").unwrap(), ChannelName::status());
        assert_eq!(
            store.latest_seq(&status).await.unwrap(),
            1,
            "connected event on $status"
        );

        let disconnect = fixture("apigw-websocket-disconnect.json");
        assert_eq!(
            disconnect.request_context.connection_id.as_deref(),
            Some(id.as_str())
        );
        assert_eq!(handle(&deps, &disconnect).await.status_code, 200);
        assert!(store.get_connection(&id).await.unwrap().is_none());
        assert_eq!(
            store.latest_seq(&status).await.unwrap(),
            2,
            "disconnected event on $status"
        );
        // A repeated $disconnect is harmless.
        assert_eq!(handle(&deps, &disconnect).await.status_code, 200);
    }

    /// A key set that cannot be read (Secrets Manager failing).
    struct Unreadable;

    #[async_trait::async_trait]
    impl echo_core::auth::KeySource for Unreadable {
        async fn keyring(
            &self,
        ) -> Result<Arc<echo_core::auth::Keyring>, echo_core::auth::KeysError> {
            Err(echo_core::auth::KeysError::Read(
                "service unavailable".into(),
            ))
        }
    }

    #[tokio::test]
    async fn unreadable_keys_are_a_503_and_record_nothing() {
        let clock = ManualClock::new(1_700_000_000_000);
        let store = Arc::new(MemoryStore::with_clock(Arc::new(clock.clone())));
        let mut deps = deps(&store, &clock);
        deps.verifier = TokenVerifier::of(
            Arc::new(Unreadable),
            Arc::new(echo_core::auth::jwks::NoFetch),
        );
        let connect = with_token(fixture("apigw-websocket-connect.json"), 1_700_000_100);
        let id = ConnectionId::from(connect.request_context.connection_id.as_deref().unwrap());
        let answer = handle(&deps, &connect).await;
        assert_eq!(answer.status_code, 503);
        let body = format!("{:?}", answer.body);
        assert!(body.contains("unavailable"), "{body}");
        assert!(store.get_connection(&id).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn the_schedule_event_sweeps_connections_whose_records_expired() {
        let clock = ManualClock::new(1_700_000_000_000);
        let store = Arc::new(MemoryStore::with_clock(Arc::new(clock.clone())));
        let deps = deps(&store, &clock);
        let connect: Invocation = serde_json::from_value(
            serde_json::to_value(with_token(
                fixture("apigw-websocket-connect.json"),
                1_700_000_100,
            ))
            .unwrap(),
        )
        .unwrap();
        let Answer::Gateway(r) = invoked(&deps, &connect).await.unwrap() else {
            panic!("a gateway event gets the gateway's response")
        };
        assert_eq!(r.status_code, 200);
        let sweep: Invocation = serde_json::from_str(r#"{"sweep":{}}"#).unwrap();
        let swept = |a: Answer| match a {
            Answer::Swept(s) => serde_json::to_value(s).unwrap(),
            Answer::Gateway(r) => panic!("a sweep answered {r:?}"),
        };
        let nothing = serde_json::json!({"ended": 0, "failed": 0, "more": false});
        assert_eq!(swept(invoked(&deps, &sweep).await.unwrap()), nothing);
        // Its $disconnect never comes; the record expires 35 s after the token.
        clock.set_ms(1_700_000_135_000);
        assert_eq!(
            swept(invoked(&deps, &sweep).await.unwrap()),
            serde_json::json!({"ended": 1, "failed": 0, "more": false})
        );
        assert_eq!(swept(invoked(&deps, &sweep).await.unwrap()), nothing);
        let status = ChannelKey::new(AppId::new("chat-demo").unwrap(), ChannelName::status());
        assert_eq!(
            store.latest_seq(&status).await.unwrap(),
            2,
            "connected, then disconnected on $status"
        );
    }

    #[tokio::test]
    async fn bad_tokens_get_401() {
        let clock = ManualClock::new(1_700_000_000_000);
        let store = Arc::new(MemoryStore::with_clock(Arc::new(clock.clone())));
        let deps = deps(&store, &clock);
        let expired = with_token(fixture("apigw-websocket-connect.json"), 1_600_000_000);
        let r = handle(&deps, &expired).await;
        assert_eq!(r.status_code, 401);
        let Some(Body::Text(body)) = r.body else {
            panic!("no body")
        };
        assert!(
            body.contains("\"code\":\"unauthorized\"") && body.contains("expired"),
            "{body}"
        );
        let missing = fixture("apigw-websocket-connect.json");
        assert_eq!(handle(&deps, &missing).await.status_code, 401);
        assert!(
            store
                .subscriptions(&ConnectionId::from("x"))
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn message_events_are_refused() {
        let clock = ManualClock::new(0);
        let store = Arc::new(MemoryStore::with_clock(Arc::new(clock.clone())));
        let deps = deps(&store, &clock);
        assert_eq!(
            handle(&deps, &fixture("apigw-websocket-message.json"))
                .await
                .status_code,
            400
        );
    }
}
