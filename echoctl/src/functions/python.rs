//! Functions in Python: a module `handler.py` defining `handler(event, context)`, as Lambda's
//! Python runtime calls it with the handler `handler.handler`, with the same JSON contract as
//! Rust and JavaScript functions. Its `requirements.txt` lists what it needs, as pip reads it:
//! `sam build` packages them on deploy.
//!
//! Locally they run in one Python process that serves them on the Lambda Invoke API
//! (`python_runner.py`, standard library only, a [`Runner`](super::runner::Runner) of
//! [`PYTHON`]); the packages their `requirements.txt` lists must be installed where that Python
//! finds them.

use std::path::{Path, PathBuf};

use super::FunctionsError;
use super::runner::Language;

/// The module a Python function's folder holds; its `handler` function is the function.
pub const ENTRY: &str = "handler.py";

/// Python 3, running `python_runner.py`.
pub const PYTHON: Language = Language {
    name: "Python",
    program_env: "ECHO_PYTHON",
    program: "python3",
    need: "Python functions need Python 3.9 or later on PATH as python3, or its path in ECHO_PYTHON",
    args: |script| vec!["-u", "-c", script],
    script: include_str!("python_runner.py"),
    dir_env: "ECHO_PYTHON_FUNCTIONS_DIR",
    names_env: "ECHO_PYTHON_FUNCTIONS",
};

/// The Lambda runtime Python functions deploy on (`sam build` needs this Python on PATH).
pub const LAMBDA_RUNTIME: &str = "python3.13";

/// Writes `dir/name`: handler.py, test_handler.py (its unit tests, for `python3 -m unittest`),
/// requirements.txt and sample.json, and keeps the folder out of an enclosing Cargo workspace.
/// Returns the folder and what was done to the workspace, or what to do.
pub fn scaffold(
    dir: &Path,
    name: &str,
    hook: Option<super::hook::Hook>,
) -> Result<(PathBuf, Option<String>), FunctionsError> {
    let root = super::new_function_dir(dir, name)?;
    let requirements = (
        "requirements.txt",
        "# The packages this function needs, one per line as pip reads them: `echoctl deploy`\n\
         # packages them. Locally, install them where echoctl's python3 finds them.\n"
            .to_owned(),
    );
    let files = match hook {
        None => vec![
            (
                ENTRY,
                format!(
                    r#""""The `{name}` Echo function: it gets each message published on the channels that list
it in their associations, and passes new data on ("continue") or stops the message ("drop").

It receives {{"app", "channel", "message": {{"id", "data", "from", "ts"}}}} and answers
{{"action": "continue", "data": ...}} or {{"action": "drop", "reason": "..."}}. Raising fails the
function: the channel's onError policy decides what happens to the message.
"""


def handler(event, context):
    """Trims `data["text"]`; drops messages whose text is left empty."""
    data = event["message"]["data"]
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        return {{"action": "continue", "data": data}}
    text = data["text"].strip()
    if text == "":
        return {{"action": "drop", "reason": "empty message"}}
    return {{"action": "continue", "data": {{**data, "text": text}}}}
"#
                ),
            ),
            (
                "test_handler.py",
                r#"import unittest

from handler import handler


def message(data):
    return {"app": "my-app", "channel": "chat", "message": {"id": "m1", "data": data, "from": "alice", "ts": 0}}


class HandlerTest(unittest.TestCase):
    def test_trims_the_text_and_drops_empty_messages(self):
        self.assertEqual(handler(message({"text": "  hi  "}), None), {"action": "continue", "data": {"text": "hi"}})
        self.assertEqual(handler(message({"text": "   "}), None)["action"], "drop")

    def test_passes_other_data_on_as_it_is(self):
        self.assertEqual(handler(message(42), None), {"action": "continue", "data": 42})


if __name__ == "__main__":
    unittest.main()
"#
                .to_owned(),
            ),
            (
                "sample.json",
                "{\"text\": \"  hello from echoctl  \"}\n".to_owned(),
            ),
            requirements,
        ],
        Some(hook) => vec![
            (
                ENTRY,
                format!(
                    "# The `{name}` Echo hook function ({key} in associations). It gets the JSON in\n\
                     # sample.json and answers as README's \"Writing a function\" says.\n\n{body}",
                    key = hook.key(),
                    body = hook.py()
                ),
            ),
            (
                "test_handler.py",
                format!(
                    r#"import json
import pathlib
import unittest

from handler import handler


class HandlerTest(unittest.TestCase):
    def test_answers_the_sample(self):
        sample = json.loads((pathlib.Path(__file__).parent / "sample.json").read_text())
        self.assertEqual(handler(sample, None), {expected})


if __name__ == "__main__":
    unittest.main()
"#,
                    expected = hook.py_test()
                ),
            ),
            ("sample.json", hook.sample().to_owned()),
            requirements,
        ],
    };
    super::write_files(&root, &files)?;
    let workspace = super::rust::exclude_from_workspace(&root)?;
    Ok((root, workspace))
}
