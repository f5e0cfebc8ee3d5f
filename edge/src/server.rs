//! Starting and stopping the edge: the store, the handlers and their dependencies, the client
//! and management listeners, and the background tasks (associations watcher, history pruning).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use echo_core::admission::{Admission, InProcessAdmission};
use echo_core::associations::LiveAssociations;
use echo_core::auth::jwks::Jwks;
use echo_core::auth::{TokenIssuer, TokenVerifier};
use echo_core::clock::{Clock, SystemClock};
use echo_core::function::FunctionInvoker;
use echo_core::presence::Presence;
use echo_core::protocol::CloseCode;
use echo_core::publish::Publisher;
use echo_core::store::MemoryStore;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::capacity::Capacity;
use crate::client_socket::{ClientListener, Peer};
use crate::config::EdgeConfig;
use crate::gateway::LocalGateway;
use crate::invoker::{InProcess, Invoker, LambdaInvokeApi};
use crate::key_file::KeyFile;
use crate::management::latency::DelayLine;
use crate::state::State;
use crate::store::RedbStore;

/// Why the edge could not start.
#[derive(Debug, Error)]
pub enum StartError {
    #[error("{0}")]
    Secret(#[from] echo_core::auth::WeakSecret),
    #[error("keys: {0}")]
    Keys(#[from] echo_core::auth::KeysError),
    #[error(
        "no keys to verify tokens with: give a JWT secret (ECHO_JWT_SECRET) or add keys to {0} \
         (echoctl keys create)"
    )]
    NoKeys(String),
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot make {path} readable by its owner only: {source}")]
    Private {
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
    #[error(
        "the dedup window ({window} s) is longer than the history retention ({retention} s): \
         an id must not outlive the message it names"
    )]
    DedupWindow { window: u64, retention: u64 },
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

/// A running edge.
pub struct RunningEdge {
    /// Where clients connect (`ws://{addr}/?token=...`) and the site is served.
    pub addr: SocketAddr,
    /// The management API.
    pub manage_addr: SocketAddr,
    /// The process's open-file limit, as raised at start (`None` where there is none to read).
    pub open_files: Option<u64>,
    /// Client sockets held at once: the WebSockets allowed and room for handshakes.
    pub sockets: usize,
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

/// Starts the edge with no in-process functions (functions are reached through the Lambda
/// Invoke API endpoints configured, if any).
pub async fn start(config: EdgeConfig) -> Result<RunningEdge, StartError> {
    start_with(config, InProcess::default()).await
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
    let (window, retention) = (
        config.limits.dedup_window_secs,
        config.history_retention.as_secs(),
    );
    if window > retention {
        return Err(StartError::DedupWindow { window, retention });
    }
    let instance = (!config.jwt_secret.is_empty()).then(|| config.jwt_secret.clone());
    let key_file = Arc::new(KeyFile::open(
        config.data_dir.join(crate::key_file::KEYS_FILE),
        instance,
    )?);
    let issuer = match config.jwt_secret.is_empty() {
        true => None,
        false => Some(TokenIssuer::new(&config.jwt_secret)?),
    };
    if issuer.is_none() {
        let set = crate::key_file::read(key_file.path())?;
        if set.keys.is_empty() && set.issuers.is_empty() {
            return Err(StartError::NoKeys(key_file.path().display().to_string()));
        }
    }
    let verifier = TokenVerifier::with_keys(
        key_file.clone(),
        Arc::new(Jwks::with_min_refetch(
            Arc::new(crate::jwks_fetch::HttpFetch::new()),
            config.jwks_min_refetch,
        )),
    );
    crate::data_dir::create_private(&config.data_dir).map_err(|source| StartError::DataDir {
        path: config.data_dir.display().to_string(),
        source,
    })?;
    let db_path = config.data_dir.join("echo.redb");
    let store = RedbStore::open(&db_path).map_err(|source| StartError::Store {
        path: db_path.display().to_string(),
        source,
    })?;
    crate::data_dir::make_private(&db_path).map_err(|source| StartError::Private {
        path: db_path.display().to_string(),
        source,
    })?;
    let store = Arc::new(store);
    let store_weak = Arc::downgrade(&store);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let connections = Arc::new(MemoryStore::with_clock(clock.clone()));
    let gateway = Arc::new(
        LocalGateway::new(
            clock.clone(),
            config.outbound_queue,
            config.limits.max_message_bytes,
        )
        .with_queue_bytes(config.outbound_queue_bytes),
    );
    let invoker: Arc<dyn FunctionInvoker> = Arc::new(Invoker {
        routes: config
            .function_endpoints
            .iter()
            .map(|(name, endpoint)| (name.clone(), LambdaInvokeApi::new(endpoint)))
            .collect(),
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
            &config.starting_associations,
            store.as_ref(),
            invoker.as_ref(),
        )
        .await?;
        tracing::info!(functions = ?a.function_names(), "associations loaded");
        a
    };
    let associations = Arc::new(LiveAssociations::new(initial));
    let metrics = Arc::new(crate::metrics::Prometheus::new());
    let departures = Arc::new(crate::departures::SpawnedDepartures::default());
    let dispatcher = fanout::Inline(fanout::Deps {
        subscriptions: connections.clone(),
        connections: connections.clone(),
        gateway: gateway.clone(),
        metrics: metrics.clone(),
        departures: departures.clone(),
    });
    // The edge owns every channel: stores are pipelined (and grouped into one commit by the
    // store) and dispatched in seq order.
    let publisher = Arc::new(Publisher::with_ordering(
        store.clone(),
        Arc::new(dispatcher),
        echo_core::publish::Ordering::Pipelined,
    ));
    let presence = Arc::new(
        Presence::new(connections.clone(), publisher.clone()).with_after(Arc::new(
            echo_core::after_presence::AfterPresence {
                associations: associations.clone(),
                invoker: invoker.clone(),
                metrics: metrics.clone(),
                background: true,
            },
        )),
    );
    departures.set(&presence);

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
    let (websockets, sockets) = crate::capacity::limits(config.max_connections, open_files);
    let capacity = Capacity::new(websockets);
    let socket_count = sockets;
    let sockets = Capacity::new(sockets);
    // One process holds each connection and hands its frames over one at a time: counted in
    // memory, no turns to take.
    let admission: Arc<dyn Admission> = Arc::new(InProcessAdmission::new(
        connections.clone(),
        config.publish_rate,
        config.publish_burst,
    ));
    let manage_delay = match config.manage_latency.is_zero() {
        true => None,
        false => Some(DelayLine::start().map_err(StartError::DelayThread)?),
    };
    let shutdown = CancellationToken::new();
    let (relay, relays) = crate::relay::queue();
    let state = Arc::new(State {
        handlers: match &config.faithful {
            None => {
                crate::handlers::Handlers::InProcess(Box::new(crate::handlers::InProcessHandlers {
                    connect: connect_handler::Deps {
                        verifier: verifier.clone(),
                        associations: associations.clone(),
                        invoker: invoker.clone(),
                        relay: Arc::new(relay),
                        refusals: connections.clone(),
                        metrics: metrics.clone(),
                        connections: connections.clone(),
                        publisher: publisher.clone(),
                        presence: presence.clone(),
                        clock: clock.clone(),
                        limits: config.limits,
                    },
                    message: message_handler::Deps {
                        connections: connections.clone(),
                        publisher,
                        presence,
                        associations: associations.clone(),
                        invoker: invoker.clone(),
                        gateway: gateway.clone(),
                        clock: clock.clone(),
                        limits: config.limits,
                        metrics: metrics.clone(),
                        admission: admission.clone(),
                        verifier,
                        // The edge outlives each reply.
                        after_publish: message_handler::AfterPublish::Background,
                    },
                }))
            }
            Some(endpoint) => crate::handlers::Handlers::Lambda {
                endpoint: endpoint.clone(),
                client: reqwest::Client::new(),
                concurrent: config.concurrent_frames,
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
        metrics: metrics.clone(),
        connections: TaskTracker::new(),
        admission,
        capacity,
        manage_delay,
    });

    let mut tasks = Vec::new();
    let app = crate::client_routes::routes(state.clone());
    let stop = shutdown.clone();
    let listener = ClientListener::new(listener, sockets, state.config.handshake_timeout);
    tasks.push(tokio::spawn(async move {
        let serve = axum::serve(listener, app.into_make_service_with_connect_info::<Peer>())
            .with_graceful_shutdown(async move { stop.cancelled().await });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "client listener failed");
        }
    }));
    let manage = crate::management::routes(state.clone());
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
    tasks.push(tokio::spawn(upkeep(metrics, shutdown.clone())));
    tasks.push(tokio::spawn(crate::relay::run(
        state.clone(),
        relays,
        shutdown.clone(),
    )));
    tasks.push(tokio::spawn(sweep(state.clone(), shutdown.clone())));
    tasks.push(tokio::spawn(crate::schedules::run(
        state.clone(),
        shutdown.clone(),
    )));
    tasks.push(tokio::spawn(crate::retention::prune_history(
        store,
        state.clock.clone(),
        state.config.history_retention,
        shutdown,
    )));
    Ok(RunningEdge {
        addr,
        manage_addr,
        open_files,
        sockets: socket_count,
        state,
        tasks,
        store: store_weak,
    })
}

/// Ends connections whose records expired, every `sweep_every`, until shutdown.
async fn sweep(state: Arc<State>, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(state.config.sweep_every.max(Duration::from_millis(10)));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {
                if let Err(e) = state.handlers.sweep().await {
                    tracing::warn!(error = %e, "sweep failed");
                }
            }
        }
    }
}

/// Folds the metrics' histogram samples into buckets now and then until shutdown.
async fn upkeep(metrics: Arc<crate::metrics::Prometheus>, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(crate::metrics::UPKEEP_EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => metrics.upkeep(),
        }
    }
}
