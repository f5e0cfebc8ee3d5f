//! Functions in JavaScript: a Node.js module exporting `handler(event, context)`, as Lambda's
//! `nodejs24.x` runtime calls it, with the same JSON contract as Rust functions.
//!
//! Locally they run in one Node.js process that serves them on the Lambda Invoke API
//! (`node_runner.mjs`, started by [`NodeRunner`]), the way `cargo lambda watch` serves Rust ones:
//! `echoctl dev` routes their names to it, and `functions test` calls it once.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use echo_core::function::{FunctionInput, FunctionInvoker, InvokeError};
use echo_edge::invoker::LambdaInvokeApi;

use super::FunctionsError;

/// The module a JavaScript function's folder holds; its `handler` export is the function.
pub const ENTRY: &str = "index.mjs";

/// The runner, passed to `node -e` so that nothing has to be written to disk.
const RUNNER: &str = include_str!("node_runner.mjs");

/// How long `functions test` waits: the longest a function may take in an association.
const TEST_TIMEOUT: Duration = Duration::from_secs(25);

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(
        "cannot run {node:?} ({source}): JavaScript functions need Node.js 20 or later on PATH, or its path in ECHO_NODE"
    )]
    Spawn {
        node: String,
        source: std::io::Error,
    },
    #[error("the Node.js function runner stopped before it listened ({0}); its errors are above")]
    NotListening(String),
    #[error("{name}: {source}")]
    Invoke { name: String, source: InvokeError },
}

/// Node.js serving some of a folder's JavaScript functions on the Lambda Invoke API, on a free
/// port of 127.0.0.1. Stopped when dropped; it also stops by itself when echoctl goes, as its
/// standard input closes.
pub struct NodeRunner {
    child: Child,
    _stdin: Option<ChildStdin>,
    endpoint: String,
}

impl NodeRunner {
    /// Starts Node.js serving `names` from `dir`, and waits until it listens.
    pub fn start(dir: &Path, names: &[String]) -> Result<Self, NodeError> {
        let node = std::env::var("ECHO_NODE").unwrap_or_else(|_| "node".to_owned());
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        let mut child = Command::new(&node)
            .args(["--input-type=module", "-e", RUNNER])
            .env("ECHO_NODE_FUNCTIONS_DIR", &dir)
            .env("ECHO_NODE_FUNCTIONS", names.join(","))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|source| NodeError::Spawn { node, source })?;
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(
            child
                .stdout
                .take()
                .ok_or_else(|| NodeError::NotListening("no standard output".to_owned()))?,
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
            return Err(NodeError::NotListening(status));
        };
        // Nothing else is written there (handlers' console.log goes to stderr); drain it anyway.
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

impl Drop for NodeRunner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `dir/name`: package.json, index.mjs (the handler), index.test.mjs (its unit tests, for
/// `npm test`) and sample.json, and keeps the folder out of an enclosing Cargo workspace. Returns
/// the folder and what was done to the workspace, or what to do.
pub fn scaffold(
    dir: &Path,
    name: &str,
    hook: Option<super::hook::Hook>,
) -> Result<(PathBuf, Option<String>), FunctionsError> {
    let root = super::new_function_dir(dir, name)?;
    let mut files = vec![
        (
            "package.json",
            format!(
                r#"{{
  "name": "{name}",
  "version": "0.1.0",
  "description": "Echo function {name}",
  "private": true,
  "type": "module",
  "main": "{ENTRY}",
  "scripts": {{
    "test": "node --test"
  }},
  "engines": {{
    "node": ">=20"
  }}
}}
"#
            ),
        ),
        (
            ENTRY,
            format!(
                r#"// The `{name}` Echo function: it gets each message published on the channels that list it in
// their associations, and passes new data on ("continue") or stops the message ("drop").
//
// It receives {{"app", "channel", "message": {{"id", "data", "from", "ts"}}}} and answers
// {{"action": "continue", "data": ...}} or {{"action": "drop", "reason": "..."}}. Throwing fails
// the function: the channel's onError policy decides what happens to the message.

/** Trims `data.text`; drops messages whose text is left empty. */
export async function handler(event) {{
  const data = event.message.data;
  if (data === null || typeof data !== 'object' || typeof data.text !== 'string') {{
    return {{ action: 'continue', data }};
  }}
  const text = data.text.trim();
  if (text === '') {{
    return {{ action: 'drop', reason: 'empty message' }};
  }}
  return {{ action: 'continue', data: {{ ...data, text }} }};
}}
"#
            ),
        ),
        (
            "index.test.mjs",
            format!(
                r#"import {{ test }} from 'node:test';
import assert from 'node:assert/strict';

import {{ handler }} from './{ENTRY}';

const input = (data) => ({{
  app: 'my-app',
  channel: 'chat',
  message: {{ id: 'm1', data, from: 'alice', ts: 0 }},
}});

test('trims the text and drops empty messages', async () => {{
  assert.deepEqual(await handler(input({{ text: '  hi  ' }})), {{
    action: 'continue',
    data: {{ text: 'hi' }},
  }});
  assert.equal((await handler(input({{ text: '   ' }}))).action, 'drop');
}});

test('passes other data on as it is', async () => {{
  assert.deepEqual(await handler(input(42)), {{ action: 'continue', data: 42 }});
}});
"#
            ),
        ),
        (
            "sample.json",
            "{\"text\": \"  hello from echoctl  \"}\n".to_owned(),
        ),
    ];
    if let Some(hook) = hook {
        files.retain(|(file, _)| *file == "package.json");
        files.extend([
            (
                ENTRY,
                format!(
                    "// The `{name}` Echo hook function ({key} in associations). It gets the JSON in\n\
                     // sample.json and answers as README's \"Writing a function\" says.\n\n{body}",
                    key = hook.key(),
                    body = hook.js()
                ),
            ),
            (
                "index.test.mjs",
                format!(
                    r#"import {{ test }} from 'node:test';
import assert from 'node:assert/strict';
import {{ readFile }} from 'node:fs/promises';

import {{ handler }} from './{ENTRY}';

test('answers the sample', async () => {{
  const sample = JSON.parse(await readFile(new URL('./sample.json', import.meta.url), 'utf8'));
  assert.deepEqual(await handler(sample), {expected});
}});
"#,
                    expected = hook.js_test()
                ),
            ),
            ("sample.json", hook.sample().to_owned()),
        ]);
    }
    super::write_files(&root, &files)?;
    let workspace = super::rust::exclude_from_workspace(&root)?;
    Ok((root, workspace))
}

/// Runs `dir/name` once on the sample in `input` through the runner, as the edge would call it,
/// and prints its answer: a message function's, or a hook's when the sample is a hook's input.
pub fn test(dir: &Path, name: &str, input: &Path) -> crate::Result {
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
    eprintln!("running {name} (Node.js) on {}", input.display());
    let runner = NodeRunner::start(dir, &[name.to_owned()]).map_err(FunctionsError::from)?;
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
        FunctionsError::from(NodeError::Invoke {
            name: name.to_owned(),
            source,
        })
    })?;
    println!("{}", serde_json::to_string_pretty(&output)?);
    Ok(())
}
