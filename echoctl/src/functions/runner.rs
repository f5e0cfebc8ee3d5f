//! A language's functions served on the Lambda Invoke API by one process of that language
//! (Node.js, Python), the way `cargo lambda watch` serves Rust ones: `echoctl dev` routes their
//! names to it, and `functions test` calls it once. The runner is a script of this crate, passed
//! on the command line so that nothing has to be written to disk; it loads a function again when
//! its file changes, listens on a free port of 127.0.0.1 and writes `listening PORT` as its first
//! line.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use echo_core::function::{FunctionInput, FunctionInvoker, InvokeError};
use echo_edge::invoker::LambdaInvokeApi;

use super::FunctionsError;

/// How long `functions test` waits: the longest a function may take in an association.
const TEST_TIMEOUT: Duration = Duration::from_secs(25);

/// A language whose functions a runner serves.
pub struct Language {
    /// As people name it: `Node.js`, `Python`.
    pub name: &'static str,
    /// The variable that names its interpreter, and the interpreter otherwise.
    pub program_env: &'static str,
    pub program: &'static str,
    /// What it takes to run it, said when it cannot start.
    pub need: &'static str,
    /// The interpreter's arguments that run `script`.
    pub args: fn(&'static str) -> Vec<&'static str>,
    /// The runner's source.
    pub script: &'static str,
    /// The variables that tell the runner its folder and its functions' names.
    pub dir_env: &'static str,
    pub names_env: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("cannot run {program:?} ({source}): {need}")]
    Spawn {
        program: String,
        need: &'static str,
        source: std::io::Error,
    },
    #[error(
        "the {language} function runner stopped before it listened ({status}); its errors are above"
    )]
    NotListening {
        language: &'static str,
        status: String,
    },
    #[error("{name}: {source}")]
    Invoke { name: String, source: InvokeError },
}

/// A runner serving some of a folder's functions, on a free port of 127.0.0.1. Stopped when
/// dropped; it also stops by itself when echoctl goes, as its standard input closes.
pub struct Runner {
    child: Child,
    _stdin: Option<ChildStdin>,
    endpoint: String,
}

impl Runner {
    /// Starts `language`'s runner serving `names` from `dir`, and waits until it listens.
    pub fn start(language: &Language, dir: &Path, names: &[String]) -> Result<Self, RunnerError> {
        let program =
            std::env::var(language.program_env).unwrap_or_else(|_| language.program.to_owned());
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        let mut child = Command::new(&program)
            .args((language.args)(language.script))
            .env(language.dir_env, &dir)
            .env(language.names_env, names.join(","))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|source| RunnerError::Spawn {
                program,
                need: language.need,
                source,
            })?;
        let stdin = child.stdin.take();
        let not_listening = |status: String| RunnerError::NotListening {
            language: language.name,
            status,
        };
        let mut stdout = BufReader::new(
            child
                .stdout
                .take()
                .ok_or_else(|| not_listening("no standard output".to_owned()))?,
        );
        let mut first = String::new();
        let _ = stdout.read_line(&mut first);
        let Some(port) = first
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse::<u16>().ok())
        else {
            let status = child
                .wait()
                .map_or_else(|e| e.to_string(), |s| s.to_string());
            return Err(not_listening(status));
        };
        // Nothing else is written there (what handlers print goes to stderr); drain it anyway.
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut stdout, &mut std::io::sink());
        });
        Ok(Self {
            child,
            _stdin: stdin,
            endpoint: format!("http://127.0.0.1:{port}"),
        })
    }

    /// Its Lambda Invoke API endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `dir/name` once on the sample in `input` through `language`'s runner, as the edge would
/// call it, and prints its answer: a message function's, or a hook's when the sample is a hook's
/// input.
pub fn test(language: &Language, dir: &Path, name: &str, input: &Path) -> crate::Result {
    let text = std::fs::read_to_string(input).map_err(|source| FunctionsError::Read {
        path: input.to_path_buf(),
        source,
    })?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| FunctionsError::Sample {
            path: input.to_path_buf(),
            source,
        })?;
    // A hook's input (`{"hook":"connect"|"subscribe"|"schedule"|"presence",...}`) goes to the
    // function as it is, and its answer comes back as it is; anything else is a message.
    let hook = value.get("hook").is_some();
    let sample = if hook {
        None
    } else {
        Some(FunctionInput::from_sample(value.clone()).map_err(|source| {
            FunctionsError::Sample {
                path: input.to_path_buf(),
                source,
            }
        })?)
    };
    eprintln!("running {name} ({}) on {}", language.name, input.display());
    let runner = Runner::start(language, dir, &[name.to_owned()]).map_err(FunctionsError::from)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let api = LambdaInvokeApi::new(runner.endpoint());
    let answer = runtime.block_on(async {
        let call = async {
            match &sample {
                Some(sample) => api.invoke(name, sample).await.and_then(|o| {
                    serde_json::to_value(o).map_err(|e| InvokeError::InvalidOutput(e.to_string()))
                }),
                None => api.call(name, &value).await,
            }
        };
        tokio::time::timeout(TEST_TIMEOUT, call)
            .await
            .unwrap_or(Err(InvokeError::TimedOut(TEST_TIMEOUT)))
    });
    let output = answer.map_err(|source| {
        FunctionsError::from(RunnerError::Invoke {
            name: name.to_owned(),
            source,
        })
    })?;
    println!("{}", serde_json::to_string_pretty(&output)?);
    Ok(())
}
