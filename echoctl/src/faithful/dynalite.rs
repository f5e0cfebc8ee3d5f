//! dynalite, the DynamoDB-compatible server of `echoctl dev --faithful`: installed from Echo's
//! checkout (`tests/services`, with npm) when it is not there yet, run on a free port of
//! 127.0.0.1 with its data in memory, and stopped with echoctl.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::child;

/// How long dynalite may take to listen.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum DynaliteError {
    #[error(
        "faithful mode runs dynalite, a DynamoDB-compatible server, with Node.js: install Node.js 20+ with npm ({0})"
    )]
    NoNpm(std::io::Error),
    #[error("npm could not install dynalite in {0}; its output is above")]
    Install(String),
    #[error("cannot run dynalite: {0}")]
    Spawn(std::io::Error),
    #[error("dynalite did not listen on 127.0.0.1:{0} within {secs} s", secs = LISTEN_TIMEOUT.as_secs())]
    NotListening(u16),
}

pub struct Dynalite {
    child: Child,
    pub endpoint: String,
}

impl Dynalite {
    pub fn start(echo_root: &Path) -> Result<Self, DynaliteError> {
        let services = echo_root.join("tests/services");
        let program = services.join("node_modules/.bin/dynalite");
        if !program.exists() {
            eprintln!("installing dynalite in {} ...", services.display());
            let status = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&services)
                .status()
                .map_err(DynaliteError::NoNpm)?;
            if !status.success() {
                return Err(DynaliteError::Install(services.display().to_string()));
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(DynaliteError::Spawn)?;
        let mut command = Command::new(&program);
        command
            // On loopback only: it takes any request without checking its signature.
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = child::own_group(&mut command)
            .spawn()
            .map_err(DynaliteError::Spawn)?;
        child::forward(&mut child, child::labelled("dynalite"));
        let mut dynalite = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            let exited = dynalite.child.try_wait().ok().flatten().is_some();
            if exited || started.elapsed() > LISTEN_TIMEOUT {
                return Err(DynaliteError::NotListening(port));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(dynalite)
    }
}

impl Drop for Dynalite {
    fn drop(&mut self) {
        child::kill_group(&mut self.child);
    }
}
