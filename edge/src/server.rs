//! Starting and stopping the edge: the client listener, the management listener, and the
//! background tasks (associations watcher, history pruning).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{ConnectInfo, Path, Query, RawQuery, State as AxState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use echo_core::associations::LiveAssociations;
use echo_core::auth::{Claims, Role, TokenIssuer, TokenVerifier};
use echo_core::channel::AppId;
use echo_core::clock::{Clock, SystemClock};
use echo_core::function::FunctionInvoker;
use echo_core::gateway::{Frame, Gateway, GatewayError, Identity};
use echo_core::ids::ConnectionId;
use echo_core::protocol::{CloseCode, ErrorCode, ProtocolError};
use echo_core::publish::Publisher;
use echo_core::store::{AssociationsStore, MemoryStore};
use serde::Deserialize;
use serde_json::json;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::capacity::Capacity;
use crate::config::EdgeConfig;
use crate::delay::DelayLine;
use crate::events::{self, ConnectionContext};
use crate::gateway::LocalGateway;
use crate::invoker::{InProcess, Invoker, LambdaInvokeApi};
use crate::store::RedbStore;
use echo_core::rate::{RateLimiter, TokenBuckets, Unlimited};

/// Why the edge could not start.
#[derive(Debug, Error)]
pub enum StartError {
    #[error("{0}")]
    Secret(#[from] echo_core::auth::WeakSecret),
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the store in {path} (is another edge using it?): {source}")]
    Store {
        path: String,
        #[source]
        source: echo_core::store::StoreError,
    },
    #[error("associations: {0}")]
    Associations(#[from] crate::associations::LoadError),
    #[error("the management API must listen on a loopback address, not {0}")]
    ManageNotLoopback(SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the thread that times --manage-latency: {0}")]
    DelayThread(#[source] std::io::Error),
}

/// Shared by every request and connection.
pub struct State {
    pub config: EdgeConfig,
    pub clock: Arc<dyn Clock>,
    pub gateway: Arc<LocalGateway>,
    pub handlers: crate::handlers::Handlers,
    pub associations: Arc<LiveAssociations>,
    pub associations_store: Arc<dyn AssociationsStore>,
    pub invoker: Arc<dyn FunctionInvoker>,
    pub issuer: TokenIssuer,
    pub shutdown: CancellationToken,
    pub connections: TaskTracker,
    /// Publish allowance per connection; forgotten when the connection ends.
    pub limiter: Arc<dyn RateLimiter>,
    /// Client connections held, against the most allowed.
    pub capacity: Arc<Capacity>,
    /// Times `manage_latency`'s waits; `None` when there is none.
    pub manage_delay: Option<DelayLine>,
}

/// A running edge.
pub struct RunningEdge {
    /// Where clients connect (`ws://{addr}/?token=...`) and the demo is served.
    pub addr: SocketAddr,
    /// The management API.
    pub manage_addr: SocketAddr,
    /// The process's open-file limit, as raised at start (`None` where there is none to read).
    pub open_files: Option<u64>,
    pub state: Arc<State>,
    tasks: Vec<JoinHandle<()>>,
    /// The embedded store, to know when the last user of it is gone.
    store: std::sync::Weak<RedbStore>,
}

impl std::fmt::Debug for RunningEdge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningEdge")
            .field("addr", &self.addr)
            .field("manage_addr", &self.manage_addr)
            .finish_non_exhaustive()
    }
}

impl RunningEdge {
    /// Closes every connection (code 1001), runs their `$disconnect`, stops the listeners and
    /// waits for all of it, so the store is closed when this returns.
    pub async fn shutdown(self) {
        let Self {
            state,
            tasks,
            store,
            ..
        } = self;
        state.shutdown.cancel();
        state
            .gateway
            .close_all(CloseCode::GoingAway, "server shutting down");
        state.connections.close();
        if tokio::time::timeout(Duration::from_secs(10), state.connections.wait())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not close within 10 s");
        }
        for task in tasks {
            let _ = task.await;
        }
        drop(state);
        // Tasks that finish on other threads may release the store a moment later; a new edge on
        // the same data directory needs it closed.
        let started = std::time::Instant::now();
        while store.strong_count() > 0 && started.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if store.strong_count() > 0 {
            tracing::warn!("the store is still in use 10 s after shutdown");
        }
    }

    /// Runs until `signal` completes, then shuts down.
    pub async fn serve_until(self, signal: impl std::future::Future<Output = ()>) {
        signal.await;
        tracing::info!("shutting down");
        self.shutdown().await;
    }
}

/// Starts the edge with the demo functions.
pub async fn start(config: EdgeConfig) -> Result<RunningEdge, StartError> {
    start_with(config, InProcess::demo()).await
}

/// Starts the edge with the given in-process functions (plus the Lambda Invoke API endpoint, if
/// configured).
pub async fn start_with(
    config: EdgeConfig,
    functions: InProcess,
) -> Result<RunningEdge, StartError> {
    if !config.manage_listen.ip().is_loopback() {
        return Err(StartError::ManageNotLoopback(config.manage_listen));
    }
    let verifier = TokenVerifier::new(&config.jwt_secret)?;
    let issuer = TokenIssuer::new(&config.jwt_secret)?;
    std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
        path: config.data_dir.display().to_string(),
        source,
    })?;
    let db_path = config.data_dir.join("echo.redb");
    let store = RedbStore::open(&db_path).map_err(|source| StartError::Store {
        path: db_path.display().to_string(),
        source,
    })?;
    let store = Arc::new(store);
    let store_weak = Arc::downgrade(&store);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let connections = Arc::new(MemoryStore::new());
    let gateway = Arc::new(LocalGateway::new(clock.clone(), config.outbound_queue));
    let invoker: Arc<dyn FunctionInvoker> = Arc::new(Invoker {
        local: functions,
        remote: config
            .functions_endpoint
            .as_deref()
            .map(LambdaInvokeApi::new),
    });
    // In faithful mode the handler Lambdas read associations from DynamoDB; the edge has none.
    let initial = if config.faithful.is_some() {
        echo_core::associations::Associations::empty()
    } else {
        let a = crate::associations::initial(
            config.associations_file.as_deref(),
            store.as_ref(),
            invoker.as_ref(),
        )
        .await?;
        tracing::info!(functions = ?a.function_names(), "associations loaded");
        a
    };
    let associations = Arc::new(LiveAssociations::new(initial));
    let dispatcher = fanout::Inline(fanout::Deps {
        connections: connections.clone(),
        gateway: gateway.clone(),
    });
    // The edge owns every channel: stores are pipelined (and grouped into one commit by the
    // store) and dispatched in seq order.
    let publisher = Arc::new(Publisher::with_ordering(
        store.clone(),
        Arc::new(dispatcher),
        echo_core::publish::Ordering::Pipelined,
    ));

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: config.listen,
            source,
        })?;
    let manage_listener = TcpListener::bind(config.manage_listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: config.manage_listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: config.listen,
        source,
    })?;
    let manage_addr = manage_listener
        .local_addr()
        .map_err(|source| StartError::Listen {
            addr: config.manage_listen,
            source,
        })?;

    let open_files = crate::capacity::raise_open_files_limit();
    let capacity = Capacity::new(max_connections(config.max_connections, open_files));
    let limiter: Arc<dyn RateLimiter> = match config.publish_rate {
        0 => Arc::new(Unlimited),
        rate => Arc::new(TokenBuckets::new(rate, config.publish_burst)),
    };
    let manage_delay = match config.manage_latency.is_zero() {
        true => None,
        false => Some(DelayLine::start().map_err(StartError::DelayThread)?),
    };
    let shutdown = CancellationToken::new();
    let state = Arc::new(State {
        handlers: match &config.faithful {
            None => {
                crate::handlers::Handlers::InProcess(Box::new(crate::handlers::InProcessHandlers {
                    connect: connect_handler::Deps {
                        verifier,
                        connections: connections.clone(),
                        publisher: publisher.clone(),
                        clock: clock.clone(),
                        limits: config.limits,
                    },
                    message: message_handler::Deps {
                        connections: connections.clone(),
                        publisher,
                        associations: associations.clone(),
                        invoker: invoker.clone(),
                        gateway: gateway.clone(),
                        clock: clock.clone(),
                        limits: config.limits,
                        metrics: Arc::new(echo_core::metrics::NoMetrics),
                        limiter: limiter.clone(),
                    },
                }))
            }
            Some(endpoint) => crate::handlers::Handlers::Lambda {
                endpoint: endpoint.clone(),
                client: reqwest::Client::new(),
            },
        },
        config,
        clock,
        gateway,
        associations,
        associations_store: store.clone(),
        invoker,
        issuer,
        shutdown: shutdown.clone(),
        connections: TaskTracker::new(),
        limiter,
        capacity,
        manage_delay,
    });

    let mut tasks = Vec::new();
    let app = client_routes(state.clone());
    let stop = shutdown.clone();
    tasks.push(tokio::spawn(async move {
        // Small frames go out at once: a delivery never waits for the previous one's ACK.
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
        });
        let serve = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { stop.cancelled().await });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "client listener failed");
        }
    }));
    let manage = manage_routes(state.clone());
    let stop = shutdown.clone();
    tasks.push(tokio::spawn(async move {
        let serve = axum::serve(manage_listener, manage)
            .with_graceful_shutdown(async move { stop.cancelled().await });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "management listener failed");
        }
    }));
    if let Some(path) = state
        .config
        .associations_file
        .clone()
        .filter(|_| state.config.faithful.is_none())
    {
        tasks.push(tokio::spawn(crate::associations::watch(
            path,
            state.config.associations_poll,
            state.associations.clone(),
            state.associations_store.clone(),
            state.invoker.clone(),
            shutdown.clone(),
        )));
    }
    tasks.push(tokio::spawn(prune_history(
        store,
        state.clock.clone(),
        state.config.history_retention,
        shutdown,
    )));
    Ok(RunningEdge {
        addr,
        manage_addr,
        open_files,
        state,
        tasks,
        store: store_weak,
    })
}

/// The most client connections to hold: the configured number, within what the open-file limit
/// leaves room for.
fn max_connections(configured: Option<usize>, open_files: Option<u64>) -> usize {
    let Some(open_files) = open_files else {
        return configured.unwrap_or(usize::MAX);
    };
    let room = crate::capacity::connections_for(open_files);
    match configured {
        Some(wanted) if wanted > room => {
            tracing::warn!(
                max_connections = wanted,
                open_files,
                holding = room,
                "max_connections is more than the open-file limit leaves room for: raise the hard limit (ulimit -Hn) to hold more"
            );
            room
        }
        Some(wanted) => wanted,
        None => room,
    }
}

async fn prune_history(
    store: Arc<RedbStore>,
    clock: Arc<dyn Clock>,
    retention: Duration,
    stop: CancellationToken,
) {
    use echo_core::store::HistoryStore;
    let every = (retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(600));
    loop {
        let before = clock.now_ms().saturating_sub(retention.as_millis() as u64);
        match store.prune(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "pruned history"),
            Err(e) => tracing::warn!(error = %e, "could not prune history"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

// ---- client listener -------------------------------------------------------------------------

/// Initial read buffer per connection (tungstenite's default is 128 KiB); it grows for larger
/// frames.
const READ_BUFFER: usize = 512;
/// Bytes buffered before a write reaches the socket, within a burst.
const WRITE_BUFFER: usize = 64 * 1024;

const INDEX_HTML: &str = include_str!("../../apps/chat/index.html");
const APP_JS: &str = include_str!("../../apps/chat/app.js");
const STYLE_CSS: &str = include_str!("../../apps/chat/style.css");
/// The JavaScript client, which the chat demo imports.
const ECHO_JS: &str = include_str!("../../clients/js/echo.js");

fn client_routes(state: Arc<State>) -> Router {
    Router::new()
        .route("/", get(root))
        .route(
            "/app.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    APP_JS,
                )
            }),
        )
        .route(
            "/echo.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    ECHO_JS,
                )
            }),
        )
        .route(
            "/style.css",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
                    STYLE_CSS,
                )
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/dev/token", get(dev_token))
        .with_state(state)
}

async fn root(
    AxState(state): AxState<Arc<State>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(_) => {
            return (
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                INDEX_HTML,
            )
                .into_response();
        }
    };
    if state.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    // Taken before `$connect`, so that a refused upgrade leaves no connection record, and held
    // until the connection's socket is gone.
    let Some(slot) = state.capacity.try_take() else {
        let refusal = ProtocolError::new(
            ErrorCode::LimitExceeded,
            format!(
                "the edge holds its maximum of {} connections; try again later",
                state.capacity.max()
            ),
        );
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::RETRY_AFTER, "1"),
            ],
            refusal.to_frame().to_json(),
        )
            .into_response();
    };
    let now = state.clock.now_ms();
    let ctx = ConnectionContext {
        connection_id: ConnectionId::generate(),
        connected_at: now,
        source_ip: peer.ip().to_string(),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        domain_name: headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        stage: events::STAGE.to_owned(),
    };
    let event = events::connect(&ctx, &headers, query.as_deref(), now);
    let response = state.handlers.connect(&event).await;
    if response.status_code != 200 {
        let status = StatusCode::from_u16(response.status_code as u16)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = match response.body {
            Some(aws_lambda_events::encodings::Body::Text(t)) => t,
            _ => String::new(),
        };
        return (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    }
    let transport_max = (state.config.limits.max_message_bytes * 4).max(1 << 20);
    let on_fail = {
        let state = state.clone();
        let ctx = ctx.clone();
        move |e: axum::Error| {
            tracing::info!(connection_id = %ctx.connection_id, error = %e, "upgrade failed");
            let event = events::disconnect(&ctx, 1006, "upgrade failed", state.clock.now_ms());
            tokio::spawn(async move {
                state.handlers.connect(&event).await;
            });
        }
    };
    let tracker = state.connections.clone();
    ws.max_message_size(transport_max)
        .max_frame_size(transport_max)
        // Idle connections are the common case: a small read buffer (it grows for large frames)
        // keeps their memory low; writes are flushed per burst by the connection's writer.
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .on_failed_upgrade(on_fail)
        .on_upgrade(move |socket| {
            let identity = Identity {
                source_ip: ctx.source_ip.clone(),
                user_agent: ctx.user_agent.clone(),
            };
            let handle = state.gateway.register(ctx.connection_id.clone(), identity);
            tracker.track_future(crate::connection::run(socket, state, ctx, handle, slot))
        })
}

#[derive(Deserialize)]
struct DevTokenQuery {
    app: Option<String>,
    sub: Option<String>,
    role: Option<Role>,
    /// Seconds.
    ttl: Option<u64>,
}

/// Longest lifetime of a dev token: a day.
const MAX_DEV_TTL: u64 = 24 * 60 * 60;

async fn dev_token(
    AxState(state): AxState<Arc<State>>,
    headers: HeaderMap,
    Query(q): Query<DevTokenQuery>,
) -> Response {
    if !state.config.dev_mode {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    let app = match AppId::new(q.app.unwrap_or_else(|| "chat-demo".into())) {
        Ok(a) => a,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": e.to_string()})),
            )
                .into_response();
        }
    };
    let sub = q
        .sub
        .unwrap_or_else(|| format!("guest-{}", echo_core::ids::random_hex(2)));
    if sub.is_empty() || sub.len() > 256 {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "sub must be 1 to 256 bytes"})),
        )
            .into_response();
    }
    let ttl = q.ttl.unwrap_or(3600).clamp(1, MAX_DEV_TTL);
    let now = state.clock.now_secs();
    let claims = Claims::new(app.clone(), sub.clone(), now + ttl)
        .with_role(q.role.unwrap_or_default())
        .issued_at(now);
    match state.issuer.issue(&claims) {
        Ok(token) => {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .unwrap_or_else(|| state.config.listen.to_string());
            let url = format!("ws://{host}/?token={token}");
            Json(
                json!({"token": token, "url": url, "app": app, "sub": sub, "expiresAt": now + ttl}),
            )
            .into_response()
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

use axum::Json;

// ---- management listener ---------------------------------------------------------------------

fn manage_routes(state: Arc<State>) -> Router {
    Router::new()
        .route(
            "/@connections/{id}",
            get(conn_get).post(conn_post).delete(conn_delete),
        )
        .route(
            "/{stage}/@connections/{id}",
            get(staged_get).post(staged_post).delete(staged_delete),
        )
        .route("/associations", get(assoc_get).put(assoc_put))
        .route("/healthz", get(|| async { "ok" }))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_token,
        ))
        .with_state(state)
}

/// The management API takes `Authorization: Bearer <token>`, or an AWS SigV4 `Authorization`
/// whose access key id is the token (what the AWS SDK's management client sends when given the
/// token as its access key). Signatures are not verified: the API only listens on loopback, and
/// the key id is as secret as a bearer token.
async fn require_token(
    AxState(state): AxState<Arc<State>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ").or_else(|| {
                v.strip_prefix("AWS4-HMAC-SHA256 ")?
                    .split(", ")
                    .find_map(|part| part.strip_prefix("Credential="))?
                    .split('/')
                    .next()
            })
        });
    if request.uri().path() == "/healthz"
        || given
            .is_some_and(|t| constant_time_eq(t.as_bytes(), state.config.manage_token.as_bytes()))
    {
        return next.run(request).await;
    }
    (
        StatusCode::FORBIDDEN,
        Json(json!({"message": "Forbidden: send Authorization: Bearer <management token>"})),
    )
        .into_response()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn gone() -> Response {
    (StatusCode::GONE, Json(json!({"message": "GoneException"}))).into_response()
}

fn gateway_error(e: GatewayError) -> Response {
    match e {
        GatewayError::Gone => gone(),
        GatewayError::Overloaded | GatewayError::Throttled => (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({"message": "LimitExceededException"})),
        )
            .into_response(),
        GatewayError::Other(e) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": e.to_string()})),
        )
            .into_response(),
    }
}

async fn conn_post(
    AxState(state): AxState<Arc<State>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    emulated_latency(&state).await;
    if body.len() > state.config.limits.max_message_bytes {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(json!({"message": "PayloadTooLargeException"})),
        )
            .into_response();
    }
    let Ok(frame) = Frame::from_bytes(body) else {
        return (StatusCode::BAD_REQUEST, Json(json!({"message": "BadRequestException: the local edge sends text frames; the body must be UTF-8"}))).into_response();
    };
    match state.gateway.post(&ConnectionId(id), &frame).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => gateway_error(e),
    }
}

/// Waits `manage_latency`, as a request to API Gateway's management API would take.
async fn emulated_latency(state: &State) {
    if let Some(line) = &state.manage_delay {
        line.wait(state.config.manage_latency).await;
    }
}

async fn conn_get(AxState(state): AxState<Arc<State>>, Path(id): Path<String>) -> Response {
    emulated_latency(&state).await;
    match state.gateway.info(&ConnectionId(id)).await {
        Ok(info) => Json(info).into_response(),
        Err(e) => gateway_error(e),
    }
}

async fn conn_delete(AxState(state): AxState<Arc<State>>, Path(id): Path<String>) -> Response {
    emulated_latency(&state).await;
    match state.gateway.close(&ConnectionId(id)).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => gateway_error(e),
    }
}

async fn staged_post(
    s: AxState<Arc<State>>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    conn_post(s, Path(id), body).await
}

async fn staged_get(s: AxState<Arc<State>>, Path((_, id)): Path<(String, String)>) -> Response {
    conn_get(s, Path(id)).await
}

async fn staged_delete(s: AxState<Arc<State>>, Path((_, id)): Path<(String, String)>) -> Response {
    conn_delete(s, Path(id)).await
}

/// In faithful mode the handler Lambdas read associations from DynamoDB, not from the edge.
fn faithful_refusal(state: &State) -> Option<Response> {
    state.config.faithful.as_ref().map(|_| {
        (
            StatusCode::CONFLICT,
            Json(json!({"error": "in faithful mode associations live in DynamoDB: store them with `echo-aws-setup --associations FILE`"})),
        )
            .into_response()
    })
}

async fn assoc_get(AxState(state): AxState<Arc<State>>) -> Response {
    if let Some(r) = faithful_refusal(&state) {
        return r;
    }
    let a = state.associations.get();
    (
        [(header::CONTENT_TYPE, "application/json")],
        a.source().to_owned(),
    )
        .into_response()
}

async fn assoc_put(AxState(state): AxState<Arc<State>>, body: String) -> Response {
    if let Some(r) = faithful_refusal(&state) {
        return r;
    }
    match crate::associations::replace(
        &body,
        &state.associations,
        state.associations_store.as_ref(),
        state.invoker.as_ref(),
    )
    .await
    {
        Ok(a) => {
            tracing::info!(functions = ?a.function_names(), "associations replaced");
            Json(json!({"ok": true, "functions": a.function_names()})).into_response()
        }
        Err(crate::associations::LoadError::Store(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::max_connections;
    use crate::capacity::connections_for;

    #[test]
    fn a_configured_maximum_holds_within_what_the_open_file_limit_allows() {
        let room = connections_for(20_000);
        assert_eq!(max_connections(Some(100), Some(20_000)), 100);
        assert_eq!(max_connections(Some(50_000), Some(20_000)), room);
        assert_eq!(max_connections(None, Some(20_000)), room);
        assert_eq!(max_connections(Some(50_000), None), 50_000);
        assert_eq!(max_connections(None, None), usize::MAX);
    }
}
