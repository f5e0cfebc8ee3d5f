//! Local stand-ins for AWS services, started by the tests that need them and stopped when
//! dropped: dynalite (DynamoDB), moto (Secrets Manager) and `cargo lambda watch` (the Lambda
//! Invoke API).

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn root() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/..")
}

/// A process group, killed whole on drop.
pub struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        // cargo-lambda does not stop on SIGTERM; the whole group goes, functions included.
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

pub struct Service {
    _group: Group,
    pub endpoint: String,
    /// Where its output goes, when it is kept.
    pub log: Option<std::path::PathBuf>,
}

/// dynalite (from `tests/services`) on a free port.
pub async fn dynalite() -> Service {
    let port = free_port();
    let mut command = Command::new(format!(
        "{}/tests/services/node_modules/.bin/dynalite",
        root()
    ));
    command.args(["--port", &port.to_string()]);
    serve(
        command,
        port,
        "dynalite is installed: (cd tests/services && npm ci)",
    )
    .await
}

/// moto's server (Secrets Manager, among others) on a free port, from the virtualenv
/// `ECHO_MOTO_VENV` names (relative to the repository; default `.venv-sam`, where the test
/// script installs it).
pub async fn moto() -> Service {
    let port = free_port();
    let venv = std::env::var("ECHO_MOTO_VENV").unwrap_or_else(|_| ".venv-sam".into());
    let venv = match venv.starts_with('/') {
        true => venv,
        false => format!("{}/{venv}", root()),
    };
    let mut command = Command::new(format!("{venv}/bin/moto_server"));
    command.args(["-p", &port.to_string()]);
    serve(
        command,
        port,
        "moto's server is installed: pip install 'moto[server]' (ECHO_MOTO_VENV)",
    )
    .await
}

/// Runs `command` in a process group of its own and waits until it accepts connections on
/// `port` (30 s at most); `missing` says how to install it.
async fn serve(mut command: Command, port: u16, missing: &str) -> Service {
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect(missing);
    let group = Group(child);
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{command:?} did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Service {
        _group: group,
        endpoint: format!("http://127.0.0.1:{port}"),
        log: None,
    }
}

/// An AWS SDK Secrets Manager client for moto.
pub fn secrets_client(endpoint: &str) -> aws_sdk_secretsmanager::Client {
    use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("local", "local", None, None, "tests"))
        .build();
    aws_sdk_secretsmanager::Client::from_conf(config)
}

/// `cargo lambda watch` for one function on a free port; see [`lambda_watch_on`].
pub async fn lambda_watch(
    package: Option<(&str, &str)>,
    env: &[(&str, String)],
    warm: &[&str],
) -> Service {
    watch(free_port(), package, env, warm).await
}

/// `cargo lambda watch` serving every function of the workspace on `port`.
pub async fn lambda_watch_on(port: u16, env: &[(&str, String)], warm: &[&str]) -> Service {
    watch(port, None, env, warm).await
}

/// `cargo lambda watch` with `env` passed to the functions, returning once each of `warm`
/// answers an invocation (the first one builds it).
async fn watch(
    port: u16,
    package: Option<(&str, &str)>,
    env: &[(&str, String)],
    warm: &[&str],
) -> Service {
    let mut cmd = Command::new("cargo");
    // Several instances per function: fan-out hands batches to itself, and a single instance
    // would wait on its own hand-off.
    cmd.args([
        "lambda",
        "watch",
        "--ignore-changes",
        "--concurrency",
        "4",
        "-P",
        &port.to_string(),
    ]);
    if let Some((package, bin)) = package {
        cmd.args(["-p", package, "--bin", bin]);
    }
    for (k, v) in env {
        if !v.is_empty() {
            cmd.args(["--env-var", &format!("{k}={v}")]);
        }
    }
    // Its own target directory: the test build's lock may still be held. The functions' logs go
    // to target/lambda-watch/watch-PORT.log.
    let dir = format!("{}/target/lambda-watch", root());
    std::fs::create_dir_all(&dir).unwrap();
    let log_path = std::path::PathBuf::from(format!("{dir}/watch-{port}.log"));
    let log = std::fs::File::create(&log_path).unwrap();
    let child = cmd
        .current_dir(root())
        .env("CARGO_TARGET_DIR", &dir)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .expect("`cargo lambda` is installed (pip install cargo-lambda)");
    let group = Group(child);
    let endpoint = format!("http://127.0.0.1:{port}");
    for function in warm {
        let url = format!("{endpoint}/2015-03-31/functions/{function}/invocations");
        let started = Instant::now();
        loop {
            // cargo lambda watch holds an invocation while it builds the function: bound each
            // try, and accept any answer from the function itself (the probe is not a valid event).
            let attempt = reqwest::Client::new()
                .post(&url)
                .body("{}")
                .timeout(Duration::from_secs(60));
            if let Ok(r) = attempt.send().await
                && (r.status().is_success() || r.status().as_u16() == 500)
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(900),
                "cargo lambda watch did not serve {function}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Service {
        _group: group,
        endpoint,
        log: Some(log_path),
    }
}

/// An AWS SDK DynamoDB client for a local DynamoDB-compatible server.
pub fn dynamodb_client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("local", "local", None, None, "tests"))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}
