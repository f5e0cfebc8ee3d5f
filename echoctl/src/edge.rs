//! `echoctl dev` and `echoctl serve`: the local edge.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{ArgMatches, Args};
use echo_core::auth::{Claims, TokenIssuer};
use echo_core::channel::AppId;
use echo_core::clock::{Clock, SystemClock};
use echo_edge::EdgeConfig;

use crate::config::{ConfigError, Loaded, Row, copy};
use crate::functions::node::{NodeError, NodeRunner};
use crate::functions::{self, Runtime};
use crate::layer;

#[derive(Args)]
pub struct EdgeArgs {
    /// Port for client WebSockets and the chat demo (0 picks a free one).
    #[arg(long, default_value_t = 8080, env = "ECHO_PORT")]
    port: u16,
    /// Address to listen on for clients; 0.0.0.0 exposes the edge to the network.
    #[arg(long, default_value = "127.0.0.1", env = "ECHO_HOST")]
    host: IpAddr,
    /// Port for the @connections management API, on 127.0.0.1 only (0 picks a free one).
    #[arg(long, default_value_t = 8081, env = "ECHO_MANAGE_PORT")]
    manage_port: u16,
    /// Where the embedded store, the dev secret and the management token live.
    #[arg(long, default_value = ".echo", env = "ECHO_DATA_DIR")]
    data_dir: PathBuf,
    /// Associations file, reloaded when it changes (default: what the store kept, else the demo).
    #[arg(long, env = "ECHO_ASSOCIATIONS")]
    associations: Option<PathBuf>,
    /// Lambda Invoke API for functions that are not built in, e.g. http://127.0.0.1:9000 for
    /// `cargo lambda watch`.
    #[arg(long, env = "ECHO_FUNCTIONS_ENDPOINT")]
    functions_endpoint: Option<String>,
    /// Largest message, in bytes (API Gateway: 131072).
    #[arg(long, default_value_t = echo_core::limits::DEFAULT_MAX_MESSAGE_BYTES)]
    max_message_bytes: usize,
    /// Subscriptions one connection may hold.
    #[arg(long, default_value_t = echo_core::limits::DEFAULT_MAX_SUBSCRIPTIONS)]
    max_subscriptions: usize,
    /// Close connections idle this long (API Gateway: 10m).
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    idle_timeout: Duration,
    /// Close connections this old (API Gateway: 2h).
    #[arg(long, default_value = "2h", value_parser = humantime::parse_duration)]
    max_connection_age: Duration,
    /// How long stored messages are kept.
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    history_retention: Duration,
    /// Faithful mode: send API Gateway events to the handler Lambdas at this Lambda Invoke API
    /// endpoint (`cargo lambda watch`; `--faithful` alone means http://127.0.0.1:9000) instead of
    /// running them in-process. `scripts/faithful.sh` starts everything this needs.
    #[arg(
        long,
        value_name = "URL",
        env = "ECHO_FAITHFUL",
        num_args = 0..=1,
        default_missing_value = "http://127.0.0.1:9000"
    )]
    faithful: Option<String>,
    /// Faithful mode: hand a connection's frames to the handler Lambdas as they come, without
    /// waiting for the previous answer, as API Gateway may (publishes keep their `order`).
    #[arg(long, env = "ECHO_CONCURRENT_FRAMES", requires = "faithful")]
    concurrent_frames: bool,
    /// Send no `$disconnect` when a connection ends, as API Gateway may (it is best effort):
    /// to see connections that vanished cleaned up by fan-out and expiry.
    #[arg(long, env = "ECHO_LOSE_DISCONNECTS")]
    lose_disconnects: bool,
    /// How often connections whose records expired without a `$disconnect` are ended (and leave
    /// their channels); the AWS stack sweeps every minute.
    #[arg(long, env = "ECHO_SWEEP_EVERY", default_value = "1m", value_parser = humantime::parse_duration)]
    sweep_every: Duration,
    /// Frames queued per connection before it is dropped as a slow consumer.
    #[arg(long, default_value_t = echo_edge::config::DEFAULT_OUTBOUND_QUEUE)]
    outbound_queue: usize,
    /// Bytes of frames queued per connection before it is dropped as a slow consumer.
    #[arg(long, default_value_t = echo_edge::config::DEFAULT_OUTBOUND_QUEUE_BYTES)]
    outbound_queue_bytes: usize,
    /// Delay every management API request this long, as API Gateway's management API takes tens
    /// of milliseconds per post (for measuring the AWS delivery path locally).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    manage_latency: Duration,
    /// Publishes per second one connection may sustain; more get `rate_limited` (0: no limit).
    #[arg(long, default_value_t = echo_edge::config::DEFAULT_PUBLISH_RATE)]
    publish_rate: u32,
    /// Publishes one connection may make at once after a quiet period.
    #[arg(long, default_value_t = echo_edge::config::DEFAULT_PUBLISH_BURST)]
    publish_burst: u32,
    /// Client connections held at once; further upgrades get HTTP 503 (default: as many as the
    /// open-file limit leaves room for, which also caps a larger value).
    #[arg(long, env = "ECHO_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// In dev mode on an address beyond loopback, also hand `/dev/token` tokens (admin ones
    /// included) to other machines, by IP address; otherwise only this machine gets them.
    #[arg(long)]
    dev_tokens_for_network: bool,
    /// Close a client socket that is not a WebSocket this long after it was accepted (a silent
    /// or slow request, an idle keep-alive).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    handshake_timeout: Duration,
}

impl EdgeArgs {
    /// Fills what neither flags nor the environment set from the config file's `[edge]`.
    pub fn layer(&mut self, m: &ArgMatches, loaded: &Loaded) -> Result<Vec<Row>, ConfigError> {
        let f = &loaded.file.edge;
        let args = self;
        let mut rows = Vec::new();
        let path = |v: &PathBuf| Ok::<_, ConfigError>(loaded.resolve(v));
        layer!(rows, m, args.port, f.port, "port", copy);
        layer!(rows, m, args.host, f.host, "host", copy);
        layer!(
            rows,
            m,
            args.manage_port,
            f.manage_port,
            "manage-port",
            copy
        );
        layer!(rows, m, args.data_dir, f.data_dir, "data-dir", path);
        layer!(
            rows,
            m,
            args.associations,
            f.associations,
            "associations",
            |v| path(v).map(Some)
        );
        layer!(
            rows,
            m,
            args.functions_endpoint,
            f.functions_endpoint,
            "functions-endpoint",
            |v: &String| { Ok::<_, ConfigError>(Some(v.clone())) }
        );
        layer!(
            rows,
            m,
            args.max_message_bytes,
            f.max_message_bytes,
            "max-message-bytes",
            copy
        );
        layer!(
            rows,
            m,
            args.max_subscriptions,
            f.max_subscriptions,
            "max-subscriptions",
            copy
        );
        layer!(
            rows,
            m,
            args.idle_timeout,
            f.idle_timeout,
            "idle-timeout",
            |v: &String| { loaded.duration("idle-timeout", v) }
        );
        layer!(
            rows,
            m,
            args.max_connection_age,
            f.max_connection_age,
            "max-connection-age",
            |v: &String| { loaded.duration("max-connection-age", v) }
        );
        layer!(
            rows,
            m,
            args.history_retention,
            f.history_retention,
            "history-retention",
            |v: &String| { loaded.duration("history-retention", v) }
        );
        layer!(
            rows,
            m,
            args.outbound_queue,
            f.outbound_queue,
            "outbound-queue",
            copy
        );
        layer!(
            rows,
            m,
            args.publish_rate,
            f.publish_rate,
            "publish-rate",
            copy
        );
        layer!(
            rows,
            m,
            args.publish_burst,
            f.publish_burst,
            "publish-burst",
            copy
        );
        layer!(
            rows,
            m,
            args.max_connections,
            f.max_connections,
            "max-connections",
            |v: &usize| Ok::<_, ConfigError>(Some(*v))
        );
        layer!(
            rows,
            m,
            args.manage_latency,
            f.manage_latency,
            "manage-latency",
            |v: &String| loaded.duration("manage-latency", v)
        );
        layer!(
            rows,
            m,
            args.faithful,
            f.faithful,
            "faithful",
            |v: &String| { Ok::<_, ConfigError>(Some(v.clone())) }
        );
        Ok(rows)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

/// Runs the edge until Ctrl-C or SIGTERM, with the JavaScript functions of the `functions`
/// folder served by Node.js beside it.
pub fn run(args: EdgeArgs, functions: &Path, dev: bool) -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(args, functions, dev))
}

async fn serve(
    args: EdgeArgs,
    functions: &Path,
    dev: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let (secret, generated) = crate::secrets::jwt_secret(&args.data_dir, dev)?;
    let manage_token = crate::secrets::manage_token(&args.data_dir)?;
    let mut config = EdgeConfig::new(
        args.data_dir.clone(),
        secret.clone().into_bytes(),
        manage_token,
    );
    config.listen = SocketAddr::new(args.host, args.port);
    config.manage_listen = SocketAddr::from(([127, 0, 0, 1], args.manage_port));
    config.associations_file = args.associations;
    config.functions_endpoint = args.functions_endpoint;
    config.dev_mode = dev;
    config.dev_tokens_for_network = dev && args.dev_tokens_for_network;
    config.limits.max_message_bytes = args.max_message_bytes;
    config.limits.max_subscriptions = args.max_subscriptions;
    config.limits.max_connection_age_secs = args.max_connection_age.as_secs();
    config.idle_timeout = args.idle_timeout;
    config.max_connection_age = args.max_connection_age;
    config.history_retention = args.history_retention;
    config.outbound_queue = args.outbound_queue;
    config.outbound_queue_bytes = args.outbound_queue_bytes;
    config.faithful = args.faithful;
    config.concurrent_frames = args.concurrent_frames;
    config.lose_disconnects = args.lose_disconnects;
    config.sweep_every = args.sweep_every;
    config.manage_latency = args.manage_latency;
    config.publish_rate = args.publish_rate;
    config.publish_burst = args.publish_burst;
    config.max_connections = args.max_connections;
    config.handshake_timeout = args.handshake_timeout;
    // In faithful mode the handler Lambdas call functions themselves, not the edge.
    let node = match config.faithful {
        Some(_) => None,
        None => node_functions(functions)?,
    };
    if let Some((runner, names)) = &node {
        for name in names {
            config
                .function_endpoints
                .insert(name.clone(), runner.endpoint().to_owned());
        }
    }

    let edge = echo_edge::start(config).await?;
    let host = match edge.addr.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
        ip => ip.to_string(),
    };
    let base = format!("{host}:{}", edge.addr.port());
    println!("echo edge listening on http://{base}");
    println!("  chat demo       http://{base}/");
    println!("  websocket       ws://{base}/?token=JWT");
    println!(
        "  management API  http://{} (Authorization: Bearer $(cat {}))",
        edge.manage_addr,
        args.data_dir
            .join(crate::secrets::MANAGE_TOKEN_FILE)
            .display()
    );
    if let Some((runner, names)) = &node {
        println!(
            "  node functions  {} (Node.js, Lambda Invoke API on {})",
            names.join(", "),
            runner.endpoint()
        );
    }
    let open_files = edge
        .open_files
        .map_or_else(|| "no limit read".to_owned(), |n| format!("open files {n}"));
    match (edge.state.capacity.max(), edge.sockets) {
        (usize::MAX, _) => println!("  connections     no limit ({open_files})"),
        (max, sockets) => println!(
            "  connections     up to {max}, {sockets} sockets with handshakes ({open_files})"
        ),
    }
    if dev && !edge.addr.ip().is_loopback() {
        let who = if args.dev_tokens_for_network {
            "ANYONE ON THE NETWORK who can reach this address"
        } else {
            "this machine only (--dev-tokens-for-network widens that)"
        };
        eprintln!();
        eprintln!(
            "  WARNING: dev mode on {}, beyond loopback.",
            edge.addr.ip()
        );
        eprintln!(
            "  /dev/token hands out tokens for any app and user, admin ones included, to {who}."
        );
        eprintln!("  Use `echoctl serve` with real tokens for anything others can reach.");
        eprintln!();
        tracing::warn!(addr = %edge.addr, for_network = args.dev_tokens_for_network, "dev mode beyond loopback: /dev/token serves tokens for any app and user");
    }
    if dev {
        if generated {
            println!(
                "  JWT secret      {secret} (generated; kept in {})",
                args.data_dir
                    .join(crate::secrets::DEV_SECRET_FILE)
                    .display()
            );
        }
        let issuer = TokenIssuer::new(secret.as_bytes())?;
        let now = SystemClock.now_secs();
        let token = issuer
            .issue(&Claims::new(AppId::new("chat-demo")?, "alice", now + 3600).issued_at(now))?;
        println!("  dev tokens      curl 'http://{base}/dev/token?app=chat-demo&sub=alice'");
        println!("  try it          npx wscat -c 'ws://{base}/?token={token}'");
        println!(
            "                  then send {{\"action\":\"subscribe\",\"channel\":\"angry\"}} and {{\"action\":\"publish\",\"channel\":\"angry\",\"data\":{{\"text\":\"hello\"}}}}"
        );
    }
    edge.serve_until(shutdown_signal()).await;
    Ok(())
}

/// Node.js serving the JavaScript functions in `dir`, if it has any, and their names.
fn node_functions(dir: &Path) -> Result<Option<(NodeRunner, Vec<String>)>, NodeError> {
    let names: Vec<String> = functions::in_folder(dir)
        .into_iter()
        .filter(|(_, runtime)| *runtime == Runtime::Node)
        .map(|(name, _)| name)
        .collect();
    if names.is_empty() {
        return Ok(None);
    }
    Ok(Some((NodeRunner::start(dir, &names)?, names)))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
