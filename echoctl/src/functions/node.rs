//! Functions in JavaScript: a Node.js module exporting `handler(event, context)`, as Lambda's
//! `nodejs24.x` runtime calls it, with the same JSON contract as Rust functions.
//!
//! Locally they run in one Node.js process that serves them on the Lambda Invoke API
//! (`node_runner.mjs`, a [`Runner`](super::runner::Runner) of [`NODE`]).

use std::path::{Path, PathBuf};

use super::FunctionsError;
use super::runner::Language;

/// The module a JavaScript function's folder holds; its `handler` export is the function.
pub const ENTRY: &str = "index.mjs";

/// Node.js, running `node_runner.mjs`.
pub const NODE: Language = Language {
    name: "Node.js",
    program_env: "ECHO_NODE",
    program: "node",
    need: "JavaScript functions need Node.js 20 or later on PATH, or its path in ECHO_NODE",
    args: |script| vec!["--input-type=module", "-e", script],
    script: include_str!("node_runner.mjs"),
    dir_env: "ECHO_NODE_FUNCTIONS_DIR",
    names_env: "ECHO_NODE_FUNCTIONS",
};

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
