//! `echoctl`: Echo's command line.
//!
//! - `echoctl dev`: the local edge with the demo functions and the chat demo, in dev mode.
//! - `echoctl serve`: the same edge without dev conveniences (no token endpoint; the secret must
//!   be given).
//! - `echoctl jwt APP`: prints a token.

mod edge;
mod jwt;
mod secrets;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "echoctl",
    version,
    about = "Echo: real-time messaging with middleware",
    propagate_version = true
)]
struct Cli {
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ECHO_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Dev(args) => edge::run(args, true),
        Command::Serve(args) => edge::run(args, false),
        Command::Jwt(args) => jwt::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
