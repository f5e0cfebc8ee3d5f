//! `echoctl dev` and `echoctl serve`: the local edge.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{ArgMatches, Args};
use echo_core::auth::{Claims, TokenIssuer};
use echo_core::channel::AppId;
use echo_core::clock::{Clock, SystemClock};
use echo_edge::{EdgeConfig, Settings};

use crate::config::{ConfigError, Loaded, Row, layer_args};
use crate::faithful;
use crate::functions::runner::{Language, Runner, RunnerError};
use crate::functions::rust::cargo_root;
use crate::functions::rust_watch::{RustWatch, WatchError, WatchSpec};
use crate::functions::{self, Runtime, node, python, warm};

/// The edge's settings as `echoctl dev`, `serve` and `config` take them: flags, `ECHO_*`
/// variables and `echo.toml`'s `[edge]`, all from [`Settings`]' declarations.
#[derive(Args)]
pub struct EdgeArgs {
    #[command(flatten)]
    settings: Settings,
}

impl EdgeArgs {
    /// Fills what neither flags nor the environment set from the config file's `[edge]`.
    pub fn layer(&mut self, m: &ArgMatches, loaded: &Loaded) -> Result<Vec<Row>, ConfigError> {
        let (settings, rows) = layer_args(m, loaded, "edge", &loaded.file.edge)?;
        self.settings = settings;
        Ok(rows)
    }

    pub fn data_dir(&self) -> &Path {
        &self.settings.data_dir
    }
}

/// Runs the edge until Ctrl-C or SIGTERM, with the project's functions in the `functions`
/// folder served beside it: JavaScript and Python ones each by a runner of its language, and in
/// dev mode Rust ones by `cargo lambda watch`. A folder inside `echo_root` (Echo's own checkout)
/// holds the demo functions, which the edge runs in process.
pub fn run(
    args: EdgeArgs,
    functions: &Path,
    echo_root: Option<&Path>,
    dev: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(args, functions, echo_root, dev))
}

async fn serve(
    args: EdgeArgs,
    functions: &Path,
    echo_root: Option<&Path>,
    dev: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let data_dir = args.settings.data_dir.clone();
    let dev_tokens_for_network = args.settings.dev_tokens_for_network;
    let async_invoke_delay = args.settings.async_invoke_delay;
    let release = args.settings.release_lambdas;
    let (secret, generated) = crate::secrets::jwt_secret(&data_dir, dev)?;
    let manage_token = crate::secrets::manage_token(&data_dir)?;
    let mut config = EdgeConfig::from_settings(
        args.settings,
        secret.clone().into_bytes(),
        manage_token,
        dev,
    );
    // `--faithful` alone: echoctl starts the handler Lambdas, and they call the project's
    // functions. With a URL they run elsewhere, and call functions of their own.
    let start_faithful = config.faithful.as_deref() == Some(faithful::START);
    let project = match (&config.faithful, start_faithful) {
        (Some(_), false) => Vec::new(),
        _ => functions::of_project(functions, echo_root),
    };
    let named = |runtime: Runtime| -> Vec<String> {
        project
            .iter()
            .filter(|(_, r)| *r == runtime)
            .map(|(name, _)| name.clone())
            .collect()
    };
    let mut runners = Vec::new();
    for (language, runtime) in [
        (&node::NODE, Runtime::Node),
        (&python::PYTHON, Runtime::Python),
    ] {
        if let Some(runner) = runner_for(functions, language, &named(runtime))? {
            runners.push((language, runner, named(runtime)));
        }
    }
    let rust = named(Runtime::Rust);
    let watches = match dev || start_faithful {
        true => rust_watches(functions, &rust, start_faithful && release)?,
        false => Vec::new(),
    };
    let served: Vec<(String, String)> = runners
        .iter()
        .map(|(_, runner, names)| (runner.endpoint(), names))
        .chain(watches.iter().map(|(w, names)| (w.endpoint(), names)))
        .flat_map(|(endpoint, names)| names.iter().map(|n| (n.clone(), endpoint.to_owned())))
        .collect();
    // The chat demo: its page and the JavaScript client, its associations when nothing else is
    // there, and its functions in-process.
    echo_chat_demo::serve(&mut config);
    if !start_faithful && !watches.is_empty() {
        let rust_served: Vec<(String, String)> = served
            .iter()
            .filter(|(name, _)| rust.contains(name))
            .cloned()
            .collect();
        let associations = config
            .associations_file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .unwrap_or_else(|| config.starting_associations.clone());
        warm::warm(&rust_served, &associations).await;
    }
    let stack = match start_faithful {
        true => {
            let echo_root = echo_root.ok_or(faithful::FaithfulError::NoCheckout)?;
            if config.manage_listen.port() == 0 {
                let free = std::net::TcpListener::bind(config.manage_listen)?.local_addr()?;
                config.manage_listen.set_port(free.port());
            }
            let stack = faithful::Stack::start(faithful::Spec {
                echo_root,
                data_dir: &data_dir,
                secret: &secret,
                manage_token: &config.manage_token,
                manage_port: config.manage_listen.port(),
                associations: config
                    .associations_file
                    .clone()
                    .unwrap_or_else(|| echo_root.join("apps/chat/associations.json")),
                functions: served,
                demo: functions::in_checkout(functions, Some(echo_root)),
                async_invoke_delay,
                release,
            })
            .await?;
            config.faithful = Some(stack.endpoint.clone());
            config.concurrent_frames = true;
            Some(stack)
        }
        false => {
            config.function_endpoints.extend(served);
            None
        }
    };

    let edge = echo_edge::start_with(config, echo_chat_demo::functions()).await?;
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
        data_dir.join(crate::secrets::MANAGE_TOKEN_FILE).display()
    );
    for (language, runner, names) in &runners {
        println!(
            "  {:<15} {} (Lambda Invoke API on {})",
            format!("{} functions", language.name),
            names.join(", "),
            runner.endpoint()
        );
    }
    for (watch, names) in &watches {
        let state = match watch.built {
            true => format!("built in {} s", watch.took.as_secs()),
            false => "DID NOT BUILD: its errors are above; fixed code is rebuilt".to_owned(),
        };
        println!(
            "  Rust functions  {} (cargo lambda watch on {}, {state})",
            names.join(", "),
            watch.endpoint()
        );
    }
    if let Some(stack) = &stack {
        stack.feed(edge.state.metrics.clone());
        let (lambdas, took) = stack.lambdas();
        println!(
            "  faithful mode   handler Lambdas under cargo lambda watch on {lambdas} (built in {} s), log {}",
            took.as_secs(),
            stack.log.display()
        );
        println!(
            "                  Lambda API {}, DynamoDB (dynalite) {}",
            stack.endpoint, stack.dynamodb
        );
    }
    if !dev && !rust.is_empty() {
        println!(
            "  Rust functions  {} (at --functions-endpoint: echoctl serve does not start cargo lambda watch)",
            rust.join(", ")
        );
    }
    // What a user needs; how it follows from the open-file limit is in the log and the docs.
    tracing::info!(
        clients = edge.state.capacity.max(),
        sockets = edge.sockets,
        open_files = edge.open_files,
        "connection capacity"
    );
    match edge.state.capacity.max() {
        usize::MAX => println!("  connections     no limit"),
        max => println!("  connections     up to {} clients", thousands(max)),
    }
    println!("  ready in        {:.1} s", started.elapsed().as_secs_f64());
    if dev && !edge.addr.ip().is_loopback() {
        let who = if dev_tokens_for_network {
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
        tracing::warn!(addr = %edge.addr, for_network = dev_tokens_for_network, "dev mode beyond loopback: /dev/token serves tokens for any app and user");
    }
    if dev {
        // Where the secret is, never the secret: a terminal pasted into an issue leaks nothing.
        let kept = data_dir.join(crate::secrets::DEV_SECRET_FILE);
        match (generated, std::env::var_os("ECHO_JWT_SECRET").is_some()) {
            (_, true) => println!("  JWT secret      from ECHO_JWT_SECRET"),
            (true, false) => println!(
                "  JWT secret      generated and kept in {} (echoctl jwt signs with it)",
                kept.display()
            ),
            (false, false) => println!(
                "  JWT secret      kept in {} (echoctl jwt signs with it)",
                kept.display()
            ),
        }
        // The app and channel the associations in force name first: a project's own, or the
        // chat demo's.
        let (app, channel) = match &stack {
            Some(stack) => suggestion(&stack.associations()),
            None => suggestion(edge.state.associations.get().source()),
        };
        let issuer = TokenIssuer::new(secret.as_bytes())?;
        let now = SystemClock.now_secs();
        let token = issuer
            .issue(&Claims::new(AppId::new(app.as_str())?, "alice", now + 3600).issued_at(now))?;
        println!("  dev tokens      curl 'http://{base}/dev/token?app={app}&sub=alice'");
        println!("  try it          npx wscat -c 'ws://{base}/?token={token}'");
        println!(
            "                  then send {{\"action\":\"subscribe\",\"channel\":\"{channel}\"}} and {{\"action\":\"publish\",\"channel\":\"{channel}\",\"data\":{{\"text\":\"hello\"}}}}"
        );
    }
    edge.serve_until(shutdown_signal()).await;
    Ok(())
}

/// The associations' first app (by name) and, of its channels named exactly (not patterns), the
/// first that runs functions, else the first; the chat demo's `angry` when there is no app.
fn suggestion(source: &str) -> (String, String) {
    let doc: serde_json::Value = serde_json::from_str(source).unwrap_or_default();
    let Some((app, spec)) = doc["apps"].as_object().and_then(|apps| apps.iter().next()) else {
        return ("chat-demo".to_owned(), "angry".to_owned());
    };
    let channels: Vec<(&String, &serde_json::Value)> = spec["channels"]
        .as_object()
        .map(|c| c.iter().filter(|(name, _)| !name.contains('*')).collect())
        .unwrap_or_default();
    let runs_functions =
        |c: &serde_json::Value| c["functions"].as_array().is_some_and(|f| !f.is_empty());
    let channel = channels
        .iter()
        .find(|(_, c)| runs_functions(c))
        .or(channels.first())
        .map_or_else(|| "news".to_owned(), |(name, _)| (*name).clone());
    (app.clone(), channel)
}

/// `n` with a comma between each group of three digits: 17,726.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `language`'s runner serving `names` from `dir`, if there are any.
fn runner_for(
    dir: &Path,
    language: &Language,
    names: &[String],
) -> Result<Option<Runner>, RunnerError> {
    if names.is_empty() {
        return Ok(None);
    }
    Ok(Some(Runner::start(language, dir, names)?))
}

/// `cargo lambda watch` serving the Rust functions `names` of `dir`, one per Cargo workspace they
/// build in, each with the names it serves.
/// `release`: built with optimizations.
fn rust_watches(
    dir: &Path,
    names: &[String],
    release: bool,
) -> Result<Vec<(RustWatch, Vec<String>)>, WatchError> {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut by_root: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
    for name in names {
        by_root
            .entry(cargo_root(&dir.join(name)))
            .or_default()
            .push(name.clone());
    }
    let mut watches = Vec::new();
    for (root, names) in by_root {
        let spec = WatchSpec {
            release,
            ..WatchSpec::project(&root)
        };
        watches.push((RustWatch::start_with(&spec)?, names));
    }
    Ok(watches)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_banner_suggests_the_project_s_own_app_and_channel() {
        let project = r#"{"apps":{"shop":{"channels":{"orders-*":{"functions":["tidy"]},"lobby":{},"chat":{"functions":["tidy","shout"]}}}}}"#;
        assert_eq!(suggestion(project), ("shop".to_owned(), "chat".to_owned()));
        let demo = include_str!("../../apps/chat/associations.json");
        assert_eq!(
            suggestion(demo),
            ("chat-demo".to_owned(), "angry".to_owned())
        );
        assert_eq!(
            suggestion(r#"{"apps":{}}"#),
            ("chat-demo".to_owned(), "angry".to_owned())
        );
    }

    #[test]
    fn thousands_are_grouped() {
        for (n, text) in [
            (0, "0"),
            (999, "999"),
            (1000, "1,000"),
            (17726, "17,726"),
            (1234567, "1,234,567"),
        ] {
            assert_eq!(thousands(n), text);
        }
    }
}
