//! `echo-bench`: Echo's benchmarks.
//!
//! - `load`: one load against a running system (Echo, the socket.io baseline or the ceiling);
//! - `idle`: memory per idle connection;
//! - `fanout`: the AWS delivery path (the fan-out Lambda's code, posting through the management
//!   API to the local edge with an injected per-post latency);
//! - `startup`: each Lambda binary's start-up under `cargo lambda watch`;
//! - `presence`: connects with presence on and off, and joins and leaves beside messages;
//! - `e2e`: the Rust client sealing and opening end-to-end encrypted messages;
//! - `hop`: a small channel on the AWS path in faithful mode, through fan-out and directly;
//! - `suite`: starts every system, runs everything, prints the figures side by side and writes
//!   `docs/benchmarks.md` (`--smoke` for a quick pass).
//!
//! Modules: `target` (the systems' protocols), `load`, `stats`, `fanout_path`, `startup`,
//! `suite` (each runs one kind of measurement), `results` (what they measured, and the suite's
//! series), `report` (how results are printed and written).

mod aws_hop;
mod e2e;
mod fanout_path;
mod load;
mod memory;
mod presence;
mod report;
mod results;
mod runners;
mod startup;
mod stats;
mod suite;
mod target;
mod tokens;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "echo-bench", about = "Echo's benchmarks", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One load against a running system.
    Load(LoadArgs),
    /// Opens idle subscribed connections and reports the server's memory per connection.
    Idle(IdleArgs),
    /// The AWS delivery path against the local edge's @connections API.
    Fanout(fanout_path::FanoutArgs),
    /// Start-up of each Lambda binary under `cargo lambda watch`.
    Startup(startup::StartupArgs),
    /// The edge's memory before, at the peak of and after a slow-consumer flood and large
    /// history reads.
    Memory(memory::MemoryArgs),
    /// The Rust client sealing and opening end-to-end encrypted messages.
    E2e(e2e::E2eArgs),
    /// Connects with presence on and off; joins and leaves beside messages.
    Presence(presence::PresenceArgs),
    /// Token verification per kind of key: per verification, and connects per second.
    Tokens(tokens::TokensArgs),
    /// A function's round trip through `echoctl dev`'s Node.js and Python runners.
    Runners(runners::RunnersArgs),
    /// A small channel on the AWS path in faithful mode, through fan-out and delivered directly
    /// (run from the repository root; needs cargo-lambda and Node.js).
    Hop(aws_hop::HopArgs),
    /// Everything, side by side; writes docs/benchmarks.md.
    Suite(suite::SuiteArgs),
}

#[derive(Args)]
pub(crate) struct TargetArgs {
    #[arg(long, value_enum)]
    system: target::System,
    /// The system's address.
    #[arg(long)]
    addr: SocketAddr,
    /// Echo's JWT secret (ECHO_JWT_SECRET), to make tokens.
    #[arg(long, env = "ECHO_JWT_SECRET", hide_env_values = true)]
    secret: Option<String>,
    #[arg(long, default_value = "chat-demo")]
    app: String,
    /// Server process ids, for CPU and memory.
    #[arg(long, value_delimiter = ',')]
    pid: Vec<u32>,
}

impl TargetArgs {
    pub(crate) fn endpoint(&self) -> target::Endpoint {
        target::Endpoint {
            system: self.system,
            addr: self.addr,
            secret: self.secret.clone(),
            app: self.app.clone(),
        }
    }
}

#[derive(Args)]
struct LoadArgs {
    #[command(flatten)]
    target: TargetArgs,
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    #[arg(long, default_value_t = 4)]
    publishers: usize,
    /// Channels the load is spread over (1: one hot channel).
    #[arg(long, default_value_t = 1)]
    channels: usize,
    /// The channel (or channel prefix). `angry` runs angry then emojify in the demo associations.
    #[arg(long, default_value = "bench")]
    channel: String,
    /// Publishes per second in total; omit for as fast as acknowledgements allow.
    #[arg(long)]
    rate: Option<f64>,
    /// Unacknowledged publishes per publisher.
    #[arg(long, default_value_t = 32)]
    window: usize,
    /// Bytes of data per message.
    #[arg(long, default_value_t = 100)]
    payload: usize,
    /// Echo only: publish through the HTTP API instead of WebSocket frames.
    #[arg(long)]
    http: bool,
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    duration: Duration,
}

#[derive(Args)]
struct IdleArgs {
    #[command(flatten)]
    target: TargetArgs,
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
}

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

async fn run(cli: Cli) -> Result {
    match cli.command {
        Command::Load(a) => {
            let spec = load::Spec {
                subscribers: a.subscribers,
                publishers: a.publishers,
                channels: a.channels,
                channel: a.channel,
                rate: a.rate,
                window: a.window,
                payload: a.payload,
                http: a.http,
                warmup: a.warmup,
                duration: a.duration,
            };
            let outcome = load::run(&a.target.endpoint(), &spec, &a.target.pid).await?;
            println!("{}", report::load_line(&outcome));
            println!("{}", serde_json::to_string(&outcome)?);
        }
        Command::Idle(a) => {
            let outcome = load::idle(&a.target.endpoint(), a.connections, &a.target.pid).await?;
            println!("{}", serde_json::to_string(&outcome)?);
        }
        Command::Fanout(a) => fanout_path::run(a).await?,
        Command::Startup(a) => startup::run(a).await?,
        Command::Memory(a) => memory::run(&a).await?,
        Command::Presence(a) => presence::run(a).await?,
        Command::E2e(a) => e2e::run(&a)?,
        Command::Tokens(a) => tokens::run(a).await?,
        Command::Runners(a) => runners::run(a).await?,
        Command::Hop(a) => aws_hop::run(a).await?,
        Command::Suite(a) => suite::run(a).await?,
    }
    Ok(())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ECHO_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    // Every subscriber is a file; the servers the suite starts inherit the raised limit too.
    echo_edge::capacity::raise_open_files_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(Cli::parse())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
