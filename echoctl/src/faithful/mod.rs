//! `echoctl dev --faithful`: a project on the AWS code path, on one machine. echoctl starts
//!
//! - dynalite, standing in for DynamoDB ([`dynalite`]), with Echo's tables and the project's
//!   associations, stored again whenever their file changes;
//! - Echo's handler Lambdas (connect, message, fan-out, HTTP API) under one `cargo lambda watch`,
//!   built before the edge says ready and each invoked once with an event that changes nothing, so
//!   that none is built or started on a client's first request (and the functions the
//!   associations name, with a sample event: [`warm`]);
//! - a Lambda Invoke API ([`router`]) where the Lambdas find each other and the project's
//!   functions, in every language, wherever `echoctl dev` serves them;
//!
//! and the edge stands in for API Gateway in front of them, handing a connection's frames over as
//! they come. The Lambdas' output goes to `lambda.log` in the data directory (their errors to
//! standard error as well), and the metrics in it to the edge's `GET /metrics`
//! ([`lambda_metrics`]).

pub mod dynalite;
pub mod lambda_metrics;
pub mod router;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use echo_core::metrics::Metrics;

use crate::child::Lines;
use crate::functions::rust_watch::{RustWatch, WatchError, WatchSpec};
use crate::functions::warm;
use dynalite::{Dynalite, DynaliteError};
use router::{Router, Table};

/// `--faithful` alone: echoctl starts what faithful mode needs. A URL instead names a Lambda
/// Invoke API where the handler Lambdas already run.
pub const START: &str = "start";

/// Echo's handler Lambdas: the binaries of its handler crates.
const HANDLERS: [&str; 4] = ["connect-handler", "message-handler", "fanout", "http-api"];

/// What stores the tables and the associations.
const SETUP: &str = "echo-aws-setup";

/// An event each handler Lambda takes and that changes nothing.
const WARM_EVENTS: [(&str, &str); 4] = [
    ("connect-handler", r#"{"sweep":{}}"#),
    (
        "message-handler",
        r#"{"relay":{"app":"warm","origin":"warm","publish":[]}}"#,
    ),
    (
        "fanout",
        r#"{"channel":"warm/warm","message":{"channel":"warm","seq":1,"id":"warm","data":null,"from":"warm","ts":0},"connections":[]}"#,
    ),
    (
        "http-api",
        r#"{"version":"2.0","routeKey":"$default","rawPath":"/v1/connect-attempts/warm-0123456789abcdefghij","rawQueryString":"","headers":{},"requestContext":{"accountId":"local","apiId":"local","domainName":"localhost","domainPrefix":"localhost","http":{"method":"GET","path":"/v1/connect-attempts/warm-0123456789abcdefghij","protocol":"HTTP/1.1","sourceIp":"127.0.0.1","userAgent":"echoctl"},"requestId":"warm","routeKey":"$default","stage":"$default","time":"01/Jan/2026:00:00:00 +0000","timeEpoch":0},"isBase64Encoded":false}"#,
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum FaithfulError {
    #[error(
        "faithful mode runs Echo's handler Lambdas from Echo's source checkout, and none was found: \
         set ECHO_SOURCE or `[functions] echo-path` in echo.toml to it"
    )]
    NoCheckout,
    #[error(transparent)]
    Dynalite(#[from] DynaliteError),
    #[error(transparent)]
    Watch(#[from] WatchError),
    #[error("Echo's handler Lambdas did not build; the errors are above")]
    NotBuilt,
    #[error("{0}")]
    Setup(String),
    #[error("{name} did not answer its warm-up: {reason}")]
    Warm { name: String, reason: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What the stack serves.
pub struct Spec<'a> {
    pub echo_root: &'a Path,
    pub data_dir: &'a Path,
    pub secret: &'a str,
    pub manage_token: &'a str,
    /// The edge's management port, where the Lambdas post to connections.
    pub manage_port: u16,
    pub associations: PathBuf,
    /// The project's functions, each with the Lambda Invoke API endpoint that serves it.
    pub functions: Vec<(String, String)>,
    /// Echo's own checkout: its demo functions are served beside the handler Lambdas.
    pub demo: bool,
    /// How long an asynchronous invocation waits before it runs.
    pub async_invoke_delay: Duration,
    /// Whether the Lambdas are built with optimizations.
    pub release: bool,
}

/// Everything faithful mode runs beside the edge; stopped when dropped.
pub struct Stack {
    _dynalite: Dynalite,
    lambdas: RustWatch,
    /// The Lambda Invoke API the edge sends API Gateway's events to.
    pub endpoint: String,
    pub dynamodb: String,
    pub log: PathBuf,
    associations: PathBuf,
    metrics: Arc<OnceLock<Arc<dyn Metrics>>>,
}

impl Stack {
    pub async fn start(spec: Spec<'_>) -> Result<Self, FaithfulError> {
        let dynalite = Dynalite::start(spec.echo_root)?;
        let router = Router::bind().await?;
        let env = lambda_env(&spec, &dynalite.endpoint, router.endpoint());
        let log = spec.data_dir.join("lambda.log");
        let metrics: Arc<OnceLock<Arc<dyn Metrics>>> = Arc::new(OnceLock::new());
        let output = lambda_output(std::fs::File::create(&log)?, metrics.clone());
        let mut bins: Vec<&str> = HANDLERS.iter().chain([&SETUP]).copied().collect();
        if spec.demo {
            bins.extend(crate::functions::DEMO_FUNCTIONS);
        }
        let lambdas = RustWatch::start_with(&WatchSpec {
            root: spec.echo_root,
            bins: &bins,
            env: &env,
            // Several instances per function: fan-out hands batches of a large channel to
            // itself, and frames of one connection come concurrently.
            concurrency: Some(4),
            rebuild: false,
            release: spec.release,
            output,
        })?;
        if !lambdas.built {
            return Err(FaithfulError::NotBuilt);
        }
        let mut table = Table::default();
        for name in HANDLERS {
            table.route(name, lambdas.endpoint());
        }
        for (name, endpoint) in &spec.functions {
            table.route(name, endpoint);
        }
        if spec.demo {
            table.route_rest(lambdas.endpoint());
        }
        let endpoint = router.endpoint().to_owned();
        router.serve(table, spec.async_invoke_delay);
        let setup = setup_program(spec.echo_root, spec.release);
        store(&setup, &env, &spec.associations, true)?;
        keep_stored(setup, env, spec.associations.clone());
        // Each handler Lambda once, all at once; then each function the associations name.
        let handlers = WARM_EVENTS
            .iter()
            .map(|(name, event)| ((*name).to_owned(), endpoint.clone(), *event))
            .collect();
        if let Some((name, reason)) = warm::invoke_all(handlers).await.into_iter().next() {
            return Err(FaithfulError::Warm { name, reason });
        }
        let associations = std::fs::read_to_string(&spec.associations).unwrap_or_default();
        let functions = warm::events(&associations)
            .into_iter()
            .map(|(name, event)| (name, endpoint.clone(), event))
            .collect();
        for (name, e) in warm::invoke_all(functions).await {
            eprintln!("warning: {name} failed its warm-up with a sample event ({e})");
        }
        Ok(Self {
            dynamodb: dynalite.endpoint.clone(),
            _dynalite: dynalite,
            lambdas,
            endpoint,
            log,
            associations: spec.associations,
            metrics,
        })
    }

    /// Where the handler Lambdas run, and how long building and starting them took.
    pub fn lambdas(&self) -> (&str, Duration) {
        (self.lambdas.endpoint(), self.lambdas.took)
    }

    /// The associations in force (their file's).
    pub fn associations(&self) -> String {
        std::fs::read_to_string(&self.associations).unwrap_or_default()
    }

    /// From now on, the Lambdas' metrics go to `metrics`.
    pub fn feed(&self, metrics: Arc<dyn Metrics>) {
        let _ = self.metrics.set(metrics);
    }
}

/// What the Lambdas see, as `template.yaml` sets it on AWS, pointed at the local stand-ins (and
/// functions by their own names: no `ECHO_FUNCTION_PREFIX`). The
/// management token is their access key id and secret: the edge checks their posts' signatures
/// with it.
fn lambda_env(spec: &Spec<'_>, dynamodb: &str, lambda: &str) -> Vec<(String, String)> {
    let or = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    [
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", spec.manage_token.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", spec.manage_token.to_owned()),
        ("AWS_ENDPOINT_URL_DYNAMODB", dynamodb.to_owned()),
        ("AWS_ENDPOINT_URL_LAMBDA", lambda.to_owned()),
        ("ECHO_JWT_SECRET", spec.secret.to_owned()),
        ("ECHO_CONNECTIONS_TABLE", "echo-connections".to_owned()),
        ("ECHO_HISTORY_TABLE", "echo-history".to_owned()),
        ("ECHO_FANOUT_FUNCTION", "fanout".to_owned()),
        ("ECHO_RELAY_FUNCTION", "message-handler".to_owned()),
        (
            "ECHO_MANAGEMENT_ENDPOINT",
            format!("http://127.0.0.1:{}/local", spec.manage_port),
        ),
        (
            "ECHO_ASSOCIATIONS_CACHE_SECS",
            or("ECHO_ASSOCIATIONS_CACHE_SECS", "1"),
        ),
        (
            "ECHO_FANOUT_BATCH_SIZE",
            or("ECHO_FANOUT_BATCH_SIZE", "1000"),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    // Tuning the Lambdas take as they are, when echoctl has them.
    .chain(
        PASSED_ON
            .iter()
            .filter_map(|name| std::env::var(name).ok().map(|v| ((*name).to_owned(), v))),
    )
    .collect()
}

/// The Lambdas' settings passed on from echoctl's environment when set there.
const PASSED_ON: [&str; 5] = [
    "ECHO_DIRECT_MAX_SUBSCRIBERS",
    "ECHO_DIRECT_BUDGET_MS",
    "ECHO_FANOUT_CONCURRENCY",
    "ECHO_SUBSCRIBER_SHARDS",
    "ECHO_DEDUP_WINDOW_SECS",
];

/// Each line of the Lambdas' output: to `log`; their metrics to the edge, once it runs; their
/// errors to standard error too.
fn lambda_output(log: std::fs::File, metrics: Arc<OnceLock<Arc<dyn Metrics>>>) -> Lines {
    let log = Mutex::new(std::io::LineWriter::new(log));
    Arc::new(move |line: &str| {
        if let Ok(mut log) = log.lock() {
            let _ = writeln!(log, "{line}");
        }
        if let Some(metrics) = metrics.get()
            && lambda_metrics::record(line, metrics.as_ref())
        {
            return;
        }
        if line.contains(r#""level":"ERROR""#) {
            eprintln!("[lambda] {line}");
        }
    })
}

/// `echo-aws-setup` as built with the Lambdas (`release`: with optimizations).
fn setup_program(echo_root: &Path, release: bool) -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    let profile = if release { "release" } else { "debug" };
    echo_root.join(target).join(profile).join(SETUP)
}

/// Creates the tables (with `create`) and stores the associations of `file` with `setup`.
fn store(
    setup: &Path,
    env: &[(String, String)],
    file: &Path,
    create: bool,
) -> Result<(), FaithfulError> {
    let mut command = Command::new(setup);
    if create {
        command.arg("--create-tables");
    }
    let output = command
        .arg("--associations")
        .arg(file)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .map_err(|e| FaithfulError::Setup(format!("cannot run {}: {e}", setup.display())))?;
    match output.status.success() {
        true => Ok(()),
        false => Err(FaithfulError::Setup(format!(
            "storing the associations of {} in dynalite failed: {}",
            file.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ))),
    }
}

/// Stores the associations again whenever their file changes, as `echoctl dev` reloads them.
fn keep_stored(setup: PathBuf, env: Vec<(String, String)>, file: PathBuf) {
    let modified =
        |file: &Path| -> Option<SystemTime> { std::fs::metadata(file).ok()?.modified().ok() };
    let mut last = modified(&file);
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_secs(1));
            let now = modified(&file);
            if now == last {
                continue;
            }
            last = now;
            match store(&setup, &env, &file, false) {
                Ok(()) => eprintln!(
                    "[faithful] stored the associations of {} again",
                    file.display()
                ),
                // The Lambdas keep the last stored ones.
                Err(e) => eprintln!("[faithful] {e}; the Lambdas keep the ones stored before"),
            }
        }
    });
}
