//! A project's Rust functions in `echoctl dev`: built once with `cargo build` (its errors shown
//! as they come), then served by `cargo lambda watch` on the Lambda Invoke API on a free port of
//! 127.0.0.1, which rebuilds a function when its code changes. The build comes first so that
//! `echoctl dev` says ready only once every function is built (`cargo lambda watch` builds a
//! function at its first invocation and holds that invocation meanwhile), and names what did not
//! build. Their output goes to echoctl's standard error, each line after `[cargo] ` or
//! `[cargo lambda] `. Stopped with echoctl.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

impl RustWatch {
    /// Builds the Rust functions of the Cargo workspace `root`, then serves them.
    pub fn start(root: &Path) -> Result<Self, WatchError> {
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
        let mut build = Command::new("cargo")
            .args(["build", "--bins", "--color", "never"])
            .current_dir(root)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_error)?;
        let forwarded = forward(&mut build, "cargo");
        let built = build.wait().is_ok_and(|s| s.success());
        for f in forwarded {
            let _ = f.join();
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(spawn_error)?;
        let mut command = Command::new("cargo");
        command
            .args(["lambda", "watch", "-P", &port.to_string()])
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        die_with_parent(&mut command);
        let mut child = command.spawn().map_err(spawn_error)?;
        forward(&mut child, "cargo lambda");
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
        // cargo-lambda does not stop on SIGTERM; the whole group goes, functions included.
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

/// Makes the kernel kill `command`'s process when echoctl dies, so that a killed echoctl leaves
/// no watch behind.
#[allow(unsafe_code)]
fn die_with_parent(command: &mut Command) {
    // SAFETY: the closure runs in the child between fork and exec and only calls prctl(2),
    // which is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// Copies `child`'s standard output and error to echoctl's standard error, each line after
/// `[label] `; the threads end with the child's output.
fn forward(child: &mut Child, label: &'static str) -> Vec<std::thread::JoinHandle<()>> {
    let mut threads = Vec::new();
    let out: [Option<Box<dyn Read + Send>>; 2] = [
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|e| Box::new(e) as Box<dyn Read + Send>),
    ];
    for stream in out.into_iter().flatten() {
        threads.push(std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                eprintln!("[{label}] {line}");
            }
        }));
    }
    threads
}
