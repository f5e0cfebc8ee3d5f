//! `echoctl associations validate|push`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::{ArgMatches, Args, Subcommand, ValueEnum};
use echo_core::associations::Associations;
use echo_core::function::reference::is_lambda_arn;

use crate::config::Loaded;

#[derive(Subcommand)]
pub enum AssociationsCommand {
    /// Check a file: JSON shape, channel patterns, limits and function names, with the line and
    /// column of what is wrong.
    Validate(ValidateArgs),
    /// Validate a file and make it the associations in force, without restarting anything.
    Push(PushArgs),
}

#[derive(Args)]
pub struct ValidateArgs {
    file: PathBuf,
    #[command(flatten)]
    names: NameArgs,
}

#[derive(Args)]
pub struct NameArgs {
    /// More function names to accept, besides the built-in demo functions and the crates in the
    /// functions folder (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    functions: Vec<String>,
    /// Accept any well-formed function name.
    #[arg(long)]
    any_function: bool,
    /// The functions folder whose crates are known functions (default: [functions] dir in
    /// echo.toml, else ./functions).
    #[arg(long)]
    functions_dir: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Target {
    /// The local edge's management API.
    Local,
    /// The deployed stack's DynamoDB table.
    Aws,
}

#[derive(Args)]
pub struct PushArgs {
    file: PathBuf,
    /// Where to push.
    #[arg(long, value_enum, default_value = "local")]
    target: Target,
    /// The local edge's management port.
    #[arg(long, default_value_t = 8081, env = "ECHO_MANAGE_PORT")]
    manage_port: u16,
    /// The local edge's data directory (for its management token, unless ECHO_MANAGE_TOKEN is
    /// set).
    #[arg(long, default_value = echo_edge::settings::DEFAULT_DATA_DIR, env = "ECHO_DATA_DIR")]
    data_dir: PathBuf,
    #[command(flatten)]
    aws: crate::aws::AwsArgs,
    /// Print what would be done, without doing it.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {error}")]
    Invalid {
        path: PathBuf,
        error: echo_core::associations::AssociationsError,
    },
    #[error(
        "no management token: set ECHO_MANAGE_TOKEN or pass the edge's --data-dir (looked in {0})"
    )]
    NoToken(PathBuf),
    #[error(
        "cannot reach the edge's management API at {url}: {source} (is `echoctl dev` running?)"
    )]
    Unreachable { url: String, source: reqwest::Error },
    #[error("the edge refused the associations ({status}): {message}")]
    Refused { status: u16, message: String },
}

pub fn run(command: AssociationsCommand, m: &ArgMatches, loaded: &Loaded) -> crate::Result {
    match command {
        AssociationsCommand::Validate(args) => {
            let known = known_functions(&args.names, loaded);
            // A Lambda ARN names a function deployed elsewhere: nothing here to check it against.
            let (_, parsed) = read(&args.file, &|name| {
                args.names.any_function || known.contains(name) || is_lambda_arn(name)
            })?;
            let apps = parsed.app_count();
            println!(
                "{}: valid ({apps} app{}; functions: {})",
                args.file.display(),
                if apps == 1 { "" } else { "s" },
                list(&parsed.function_names())
            );
            Ok(())
        }
        AssociationsCommand::Push(mut args) => {
            // The target knows which functions it can call: check the rest here.
            let (text, parsed) = read(&args.file, &|_| true)?;
            match args.target {
                Target::Local => push_local(&args, text, &parsed),
                Target::Aws => {
                    args.aws.layer(m, loaded)?;
                    crate::aws::push_associations(&args.aws, &args.file, &parsed, args.dry_run)
                }
            }
        }
    }
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// The file's text and what it parses to.
fn read(path: &Path, known: &dyn Fn(&str) -> bool) -> Result<(String, Associations), PushError> {
    let text = std::fs::read_to_string(path).map_err(|source| PushError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let parsed = Associations::parse(&text, known).map_err(|error| PushError::Invalid {
        path: path.to_path_buf(),
        error,
    })?;
    Ok((text, parsed))
}

/// The demo functions, the functions in the functions folder (Rust or JavaScript), and
/// `--functions`.
fn known_functions(args: &NameArgs, loaded: &Loaded) -> BTreeSet<String> {
    let dir = crate::functions::functions_dir(args.functions_dir.clone(), loaded);
    let project = crate::functions::in_folder(&dir)
        .into_iter()
        .map(|(name, _)| name);
    echo_chat_demo::functions()
        .names()
        .into_iter()
        .chain(project)
        .chain(args.functions.iter().cloned())
        .collect()
}

/// Sends the file as written, so that the edge's errors point at its lines.
fn push_local(args: &PushArgs, text: String, parsed: &Associations) -> crate::Result {
    let url = format!("http://127.0.0.1:{}/associations", args.manage_port);
    if args.dry_run {
        println!("would PUT {} to {url}", args.file.display());
        return Ok(());
    }
    let token = crate::secrets::existing_manage_token(&args.data_dir)
        .ok_or_else(|| PushError::NoToken(args.data_dir.clone()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let response = reqwest::Client::new()
            .put(&url)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(text)
            .send()
            .await
            .map_err(|source| PushError::Unreachable {
                url: url.clone(),
                source,
            })?;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        if status != 200 {
            let message = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
                .unwrap_or(body);
            return Err(PushError::Refused { status, message });
        }
        println!(
            "pushed {} to the edge at {url} (functions: {})",
            args.file.display(),
            list(&parsed.function_names())
        );
        Ok(())
    })?;
    Ok(())
}
