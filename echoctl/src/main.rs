//! `echoctl`: Echo's command line.
//!
//! - `dev`, `serve`: the local edge (in dev mode: demo functions, chat demo, dev tokens);
//! - `jwt`: tokens; `keys`: the apps' keys and trusted issuers; `publish`: a message through
//!   the HTTP API;
//! - `init`, `functions new|test`: a project and its function crates;
//! - `associations validate|push`: check and replace associations, locally or on AWS;
//! - `deploy`, `update`, `status`, `teardown`: the AWS stacks (Echo's, and a project's
//!   functions), through the SAM CLI;
//! - `config`: the effective settings (defaults, `echo.toml`, `ECHO_*` variables, flags).
//!
//! Modules: `config` (layering), `edge`, `jwt`, `secrets`, `init`, `functions`,
//! `associations`, `aws` (SAM and stack state), `hash` (content hashes of function code).

mod allocator;
mod associations;
mod aws;
mod child;
mod config;
mod edge;
mod faithful;
mod functions;
mod hash;
mod init;
mod jwt;
mod keys;
mod publish;
mod secrets;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

#[derive(Parser)]
#[command(
    name = "echoctl",
    version,
    about = "Echo: real-time messaging with middleware",
    propagate_version = true
)]
struct Cli {
    /// Config file (default: ./echo.toml when it exists). Flags and ECHO_* variables override it.
    #[arg(long, global = true, env = "ECHO_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the local edge in dev mode: demo functions, chat demo, dev tokens.
    Dev(edge::EdgeArgs),
    /// Run the local edge without dev mode: ECHO_JWT_SECRET is required, no token endpoint.
    Serve(edge::EdgeArgs),
    /// Print a token for APP.
    Jwt(jwt::JwtArgs),
    /// Manage the apps' signing keys and trusted OIDC issuers.
    Keys(keys::KeysArgs),
    /// Publish a message through the HTTP API (for scripts), with an admin token.
    Publish(publish::PublishArgs),
    /// Create an Echo project: echo.toml, associations.json and a first function.
    Init(init::InitArgs),
    /// Create and try middleware functions.
    #[command(subcommand)]
    Functions(functions::FunctionsCommand),
    /// Check associations files and replace the associations in force.
    #[command(subcommand)]
    Associations(associations::AssociationsCommand),
    /// Build and deploy the stack to AWS (sam build, sam deploy).
    Deploy(aws::DeployArgs),
    /// Deploy only the project's functions whose code changed (or FN), without a stack update.
    Update(aws::UpdateArgs),
    /// Show the deployed stack and whether each function matches the local code.
    Status(aws::StatusArgs),
    /// Delete the stack from AWS (sam delete).
    Teardown(aws::TeardownArgs),
    /// Print the effective settings and where each comes from.
    Config(ConfigArgs),
}

#[derive(clap::Args)]
struct ConfigArgs {
    #[command(flatten)]
    edge: edge::EdgeArgs,
    #[command(flatten)]
    aws: aws::AwsArgs,
}

fn main() -> ExitCode {
    allocator::configure();
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ECHO_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour for a person at a terminal; none in a file or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let sub = matches
        .subcommand()
        .map_or_else(ArgMatches::default, |(_, m)| m.clone());
    match run(cli, &sub) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The AWS settings layered, Echo's template found, and the project's own functions.
fn project(
    aws: &mut aws::AwsArgs,
    m: &ArgMatches,
    loaded: &config::Loaded,
) -> Result<aws::Project> {
    aws.layer(m, loaded)?;
    let echo = functions::echo_checkout(loaded);
    aws.fall_back_to_echo(echo.as_deref());
    Ok(aws::Project::load(
        &functions::functions_dir(None, loaded),
        echo.as_deref(),
    ))
}

/// `echoctl dev` (`dev`) or `echoctl serve`, with the project's functions folder.
fn run_edge(
    mut args: edge::EdgeArgs,
    m: &ArgMatches,
    loaded: &config::Loaded,
    dev: bool,
) -> Result {
    args.layer(m, loaded)?;
    let echo = functions::echo_checkout(loaded);
    edge::run(
        args,
        &functions::functions_dir(None, loaded),
        echo.as_deref(),
        dev,
    )
}

fn run(cli: Cli, m: &ArgMatches) -> Result {
    let loaded = config::Loaded::load(cli.config.as_deref())?;
    match cli.command {
        Command::Dev(args) => run_edge(args, m, &loaded, true),
        Command::Serve(args) => run_edge(args, m, &loaded, false),
        Command::Jwt(args) => jwt::run(args, m, &loaded),
        Command::Keys(args) => keys::run(args, m, &loaded),
        Command::Publish(args) => publish::run(args),
        Command::Init(args) => init::run(args),
        Command::Functions(command) => functions::run(command, &loaded),
        Command::Associations(command) => {
            let m = m.subcommand().map_or(m, |(_, m)| m);
            associations::run(command, m, &loaded)
        }
        Command::Deploy(mut args) => {
            let project = project(&mut args.aws, m, &loaded)?;
            aws::deploy(args, &project)
        }
        Command::Update(mut args) => {
            let project = project(&mut args.aws, m, &loaded)?;
            aws::update(args, &project)
        }
        Command::Status(mut args) => {
            let project = project(&mut args.aws, m, &loaded)?;
            aws::status(args, &project)
        }
        Command::Teardown(mut args) => {
            let project = project(&mut args.aws, m, &loaded)?;
            aws::teardown(args, &project)
        }
        Command::Config(mut args) => {
            let edge = args.edge.layer(m, &loaded)?;
            let aws = args.aws.layer(m, &loaded)?;
            match &loaded.path {
                Some(p) => println!("config file: {}", p.display()),
                None => println!("config file: none ({} not found)", config::DEFAULT_FILE),
            }
            config::print_rows("edge", &edge);
            config::print_rows("aws", &aws);
            println!("[secrets]");
            println!(
                "  jwt-secret    {}",
                secrets::describe(args.edge.data_dir())
            );
            Ok(())
        }
    }
}
