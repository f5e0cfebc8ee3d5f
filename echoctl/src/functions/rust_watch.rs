//! A project's Rust functions in `echoctl dev`: built once with `cargo build` (its errors shown
//! as they come), then served by `cargo lambda watch` on the Lambda Invoke API on a free port of
//! 127.0.0.1, which rebuilds a function when its code changes. The build comes first so that
//! `echoctl dev` says ready only once every function is built (`cargo lambda watch` builds a
//! function at its first invocation and holds that invocation meanwhile), and names what did not
//! build. Their output goes to echoctl's standard error, each line after `[cargo] ` or
//! `[cargo lambda] `. Stopped with echoctl.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::child::{self, Lines};

/// How long `cargo lambda watch` may take to listen once the build is done.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(
        "the project has Rust functions, which echoctl dev serves with cargo-lambda: install it \
         (pip install cargo-lambda, and put its directory on PATH), or move them out of the \
         functions folder"
    )]
    NoCargoLambda,
    #[error("cannot run cargo in {dir}: {source}")]
    Spawn { dir: String, source: std::io::Error },
    #[error(
        "cargo lambda watch did not listen on 127.0.0.1:{port} within {} s; its output is above",
        LISTEN_TIMEOUT.as_secs()
    )]
    NotListening { port: u16 },
}

/// `cargo lambda watch` serving a workspace's functions; killed with its process group when
/// dropped.
pub struct RustWatch {
    child: Child,
    endpoint: String,
    /// Whether the first build succeeded.
    pub built: bool,
    /// How long the build and the start took.
    pub took: Duration,
}

/// What a [`RustWatch`] builds and serves, and how.
pub struct WatchSpec<'a> {
    /// The Cargo workspace.
    pub root: &'a Path,
    /// The binaries built before it starts; every binary of the workspace when empty.
    pub bins: &'a [&'a str],
    /// Variables of the functions it runs.
    pub env: &'a [(String, String)],
    /// Instances it may run of each function at once (cargo lambda's default when `None`).
    pub concurrency: Option<u32>,
    /// Whether it rebuilds a function when its code changes.
    pub rebuild: bool,
    /// Whether it builds with optimizations (Cargo's release profile), as `sam build` does.
    pub release: bool,
    /// Where the watch's output goes (the build's goes to standard error after `[cargo] `).
    pub output: Lines,
}

impl<'a> WatchSpec<'a> {
    /// Every binary of `root`, rebuilt on change, its output on standard error.
    pub fn project(root: &'a Path) -> Self {
        Self {
            root,
            bins: &[],
            env: &[],
            concurrency: None,
            rebuild: true,
            release: false,
            output: child::labelled("cargo lambda"),
        }
    }
}

impl RustWatch {
    /// Builds what `spec` names, then serves it.
    pub fn start_with(spec: &WatchSpec<'_>) -> Result<Self, WatchError> {
        let root = spec.root;
        let started = Instant::now();
        let answers = Command::new("cargo")
            .args(["lambda", "--version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !answers {
            return Err(WatchError::NoCargoLambda);
        }
        let spawn_error = |source| WatchError::Spawn {
            dir: root.display().to_string(),
            source,
        };
        eprintln!("building the Rust functions in {} ...", root.display());
        let mut build = Command::new("cargo");
        build.args(["build", "--color", "never"]);
        if spec.release {
            build.arg("--release");
        }
        match spec.bins {
            [] => {
                build.arg("--bins");
            }
            bins => {
                for bin in bins {
                    build.args(["--bin", bin]);
                }
            }
        }
        let mut build = build
            .current_dir(root)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_error)?;
        let forwarded = child::forward(&mut build, child::labelled("cargo"));
        let built = build.wait().is_ok_and(|s| s.success());
        for f in forwarded {
            let _ = f.join();
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(spawn_error)?;
        let mut command = Command::new("cargo");
        // On loopback only: its Invoke API takes any invocation without credentials.
        command.args([
            "lambda",
            "watch",
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
            &port.to_string(),
        ]);
        if !spec.rebuild {
            command.arg("--ignore-changes");
        }
        if spec.release {
            command.arg("--release");
        }
        if let Some(n) = spec.concurrency {
            command.args(["--concurrency", &n.to_string()]);
        }
        for (k, v) in spec.env {
            command.args(["--env-var", &format!("{k}={v}")]);
        }
        command
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = child::own_group(&mut command)
            .spawn()
            .map_err(spawn_error)?;
        child::forward(&mut child, spec.output.clone());
        let mut watch = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            built,
            took: Duration::ZERO,
        };
        let listening = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            let exited = watch.child.try_wait().ok().flatten().is_some();
            if exited || listening.elapsed() > LISTEN_TIMEOUT {
                return Err(WatchError::NotListening { port });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        watch.took = started.elapsed();
        Ok(watch)
    }

    /// Its Lambda Invoke API endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

impl Drop for RustWatch {
    fn drop(&mut self) {
        child::kill_group(&mut self.child);
    }
}
