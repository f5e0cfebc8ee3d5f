//! `echoctl init`: a new Echo project.

use std::path::{Path, PathBuf};

use clap::Args;
use echo_core::channel::AppId;

use crate::functions::{Runtime, echo_source, node, python, rust};

#[derive(Args)]
pub struct InitArgs {
    /// Where to create the project (created if missing).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// The app id the associations and tokens use.
    #[arg(long, default_value = "my-app")]
    app: String,
    /// The first function's name.
    #[arg(long, default_value = "tidy")]
    function: String,
    /// The language of the first function.
    #[arg(long, value_enum, default_value_t = Runtime::Rust)]
    runtime: Runtime,
    /// A checkout of Echo whose crates functions depend on (default: the one echoctl was built
    /// from, else the git repository).
    #[arg(long, env = "ECHO_SOURCE")]
    echo_path: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{dir} already has {files}; nothing was written")]
    Exists { dir: PathBuf, files: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub fn run(args: InitArgs) -> crate::Result {
    let app = AppId::new(args.app.clone())?;
    let dir = &args.dir;
    let function_dir = format!("functions/{}", args.function);
    let files = [
        ("echo.toml", echo_toml()),
        (
            "associations.json",
            associations(app.as_str(), &args.function),
        ),
        ("Cargo.toml", WORKSPACE.to_owned()),
        (".gitignore", "/target\n/.echo\n".to_owned()),
        ("README.md", readme(app.as_str(), &args.function)),
    ];
    let taken: Vec<&str> = files
        .iter()
        .map(|(f, _)| *f)
        .chain([function_dir.as_str()])
        .filter(|f| dir.join(f).exists())
        .collect();
    if !taken.is_empty() {
        return Err(InitError::Exists {
            dir: dir.clone(),
            files: taken.join(", "),
        }
        .into());
    }
    std::fs::create_dir_all(dir).map_err(|source| write_err(dir, source))?;
    for (file, contents) in &files {
        let path = dir.join(file);
        std::fs::write(&path, contents).map_err(|source| write_err(&path, source))?;
    }
    let functions = dir.join("functions");
    let function = match args.runtime {
        Runtime::Rust => rust::scaffold(
            &functions,
            &args.function,
            &echo_source(args.echo_path),
            None,
        )?,
        Runtime::Node => node::scaffold(&functions, &args.function, None)?.0,
        Runtime::Python => python::scaffold(&functions, &args.function, None)?.0,
    };
    println!("created an Echo project in {}", dir.display());
    println!("  echo.toml          settings for echoctl (edge, aws, functions)");
    println!(
        "  associations.json  channel \"chat\" of app {app} runs {}",
        args.function
    );
    println!("  {}  your first function", function.display());
    println!();
    println!("next:");
    println!("  cd {}", dir.display());
    println!(
        "  echoctl functions test {} --input functions/{}/sample.json",
        args.function, args.function
    );
    println!(
        "  echoctl dev                   # the edge and every function (Rust under cargo lambda watch)"
    );
    Ok(())
}

fn write_err(path: &Path, source: std::io::Error) -> InitError {
    InitError::Write {
        path: path.to_path_buf(),
        source,
    }
}

const WORKSPACE: &str = r#"[workspace]
resolver = "3"
members = ["functions/*"]
# JavaScript and Python functions are not crates; `echoctl functions new` adds them here.
exclude = []
"#;

fn echo_toml() -> String {
    r#"# echoctl's settings for this project. Flags and ECHO_* environment variables override them;
# `echoctl config` shows the effective values and where each came from.

[edge]
port = 8080
manage-port = 8081
data-dir = ".echo"
# Reloaded when it changes; `echoctl associations push` replaces it on a running edge.
associations = "associations.json"
# echoctl dev serves the functions of the functions folder itself: Rust ones under
# `cargo lambda watch`, JavaScript ones in Node.js, Python ones in Python. Functions served
# elsewhere are found at functions-endpoint (a Lambda Invoke API):
# functions-endpoint = "http://127.0.0.1:9000"

[functions]
dir = "functions"

[aws]
stack-name = "echo"
# Echo's own stack: by default the template of the Echo checkout echoctl was built from (or
# [functions] echo-path); the project's functions deploy beside it as <stack-name>-functions.
# template = "../echo/template.yaml"
"#
    .to_owned()
}

fn associations(app: &str, function: &str) -> String {
    format!(
        r#"{{
  "apps": {{
    "{app}": {{
      "channels": {{
        "chat": {{ "functions": ["{function}"], "onError": "reject", "timeoutMs": 1000 }}
      }}
    }}
  }}
}}
"#
    )
}

fn readme(app: &str, function: &str) -> String {
    format!(
        r#"# {app}

An Echo project: real-time channels with middleware functions.

- `associations.json`: which functions run on which channel (`chat` runs `{function}`).
- `functions/{function}/`: your first function. A Rust one is a crate (`src/lib.rs` is the logic,
  with tests); a JavaScript one a module (`index.mjs`, tested by `index.test.mjs`); a Python one
  a module (`handler.py`, tested by `test_handler.py` with `python3 -m unittest`, its packages in
  `requirements.txt`).
- `echo.toml`: echoctl's settings.

```sh
echoctl functions test {function} --input functions/{function}/sample.json
echoctl dev                 # the local edge and every function (Rust ones under cargo lambda watch)
echoctl jwt {app} --endpoint ws://127.0.0.1:8080/
echoctl associations validate associations.json
echoctl functions new another-function                  # in Rust
echoctl functions new another-function --runtime node   # in JavaScript
echoctl functions new another-function --runtime python # in Python
```
"#
    )
}
