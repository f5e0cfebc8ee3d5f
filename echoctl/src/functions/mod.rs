//! `echoctl functions new|test`: middleware function crates.
//!
//! A function crate is a library with a `transform` and a one-line Lambda binary over
//! `echo-function-runtime`: it builds with `cargo lambda build`, serves with `cargo lambda watch`,
//! and runs once on a file with `--input FILE`, which `functions test` uses.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::{Args, Subcommand};
use echo_core::associations::valid_function_name;

use crate::config::Loaded;

/// Where echoctl's own sources were when it was built: function crates depend on Echo's crates
/// there when they are present.
const BUILT_FROM: &str = env!("CARGO_MANIFEST_DIR");
/// Otherwise they depend on the repository.
const REPOSITORY: &str = env!("CARGO_PKG_REPOSITORY");

#[derive(Subcommand)]
pub enum FunctionsCommand {
    /// Create a function crate in the functions folder.
    New(NewArgs),
    /// Build a function and run it once on a sample message.
    Test(TestArgs),
}

#[derive(Args)]
pub struct NewArgs {
    /// The function's name, as associations refer to it (a-z, 0-9, -, _; starts with a letter).
    name: String,
    /// The functions folder (default: [functions] dir in echo.toml, else ./functions).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// A checkout of Echo whose crates the function depends on (default: the one echoctl was
    /// built from, else the git repository).
    #[arg(long, env = "ECHO_SOURCE")]
    echo_path: Option<PathBuf>,
}

#[derive(Args)]
pub struct TestArgs {
    /// The function's name (its folder in the functions folder).
    name: String,
    /// A JSON file: a whole function input ({"app","channel","message"}) or just the data.
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// The functions folder (default: [functions] dir in echo.toml, else ./functions).
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum FunctionsError {
    #[error("{0:?} is not a valid function name: use 1-64 of a-z 0-9 - _, starting with a letter")]
    Name(String),
    #[error("{0} already exists")]
    Exists(PathBuf),
    #[error("no function {name:?} in {dir} (create it with `echoctl functions new {name}`)")]
    Missing { name: String, dir: PathBuf },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot run cargo: {0}")]
    Cargo(std::io::Error),
    #[error("the function failed or did not build (exit code {0:?})")]
    Failed(Option<i32>),
}

pub fn run(command: FunctionsCommand, loaded: &Loaded) -> crate::Result {
    match command {
        FunctionsCommand::New(args) => {
            let dir = functions_dir(args.dir, loaded);
            let echo = echo_source(args.echo_path.or_else(|| {
                loaded
                    .file
                    .functions
                    .echo_path
                    .as_deref()
                    .map(|p| loaded.resolve(p))
            }));
            let path = scaffold(&dir, &args.name, &echo)?;
            println!("created {}", path.display());
            if let Some(hint) = workspace_hint(&path) {
                println!("{hint}");
            }
            println!(
                "try it:  echoctl functions test {} --input {}/sample.json",
                args.name,
                path.display()
            );
            println!(
                "serve it: cargo lambda watch (in {}), then point the edge at it with --functions-endpoint http://127.0.0.1:9000",
                path.display()
            );
            Ok(())
        }
        FunctionsCommand::Test(args) => {
            test(&functions_dir(args.dir, loaded), &args.name, &args.input)
        }
    }
}

/// The functions folder: `flag`, else `[functions] dir` in the config file, else `./functions`.
pub fn functions_dir(flag: Option<PathBuf>, loaded: &Loaded) -> PathBuf {
    flag.or_else(|| {
        loaded
            .file
            .functions
            .dir
            .as_deref()
            .map(|p| loaded.resolve(p))
    })
    .unwrap_or_else(|| PathBuf::from("functions"))
}

/// How a function crate refers to Echo's crates.
#[derive(Debug, Clone, PartialEq)]
pub enum EchoSource {
    Path(PathBuf),
    Git(String),
}

impl EchoSource {
    fn dependency(&self, krate: &str, subdir: &str) -> String {
        match self {
            Self::Path(root) => format!(
                "{krate} = {{ path = {:?} }}",
                root.join(subdir).display().to_string()
            ),
            Self::Git(url) => format!("{krate} = {{ git = {url:?} }}"),
        }
    }
}

pub fn echo_source(explicit: Option<PathBuf>) -> EchoSource {
    let checkout = explicit.or_else(|| Path::new(BUILT_FROM).parent().map(Path::to_path_buf));
    match checkout {
        Some(root) if root.join("core/Cargo.toml").is_file() => {
            EchoSource::Path(std::fs::canonicalize(&root).unwrap_or(root))
        }
        _ => EchoSource::Git(REPOSITORY.to_owned()),
    }
}

fn valid_crate_name(name: &str) -> bool {
    valid_function_name(name)
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.contains(|c: char| c.is_ascii_uppercase())
}

/// Writes `dir/name`: Cargo.toml, src/lib.rs (the transform, with tests), src/main.rs (the
/// Lambda) and sample.json.
pub fn scaffold(dir: &Path, name: &str, echo: &EchoSource) -> Result<PathBuf, FunctionsError> {
    if !valid_crate_name(name) {
        return Err(FunctionsError::Name(name.to_owned()));
    }
    let root = dir.join(name);
    if root.exists() {
        return Err(FunctionsError::Exists(root));
    }
    let lib = name.replace('-', "_");
    // A crate outside any workspace gets its own, so that it builds where it is.
    let standalone = find_workspace(dir).is_none();
    let files = [
        (
            "Cargo.toml",
            format!(
                r#"[package]
name = "{name}"
description = "Echo function {name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
name = "{lib}"

[[bin]]
name = "{name}"
path = "src/main.rs"

[dependencies]
{core}
{runtime}
serde_json = "1"
tokio = {{ version = "1", features = ["macros", "rt-multi-thread"] }}
{workspace}"#,
                core = echo.dependency("echo-core", "core"),
                runtime = echo.dependency("echo-function-runtime", "functions/runtime"),
                workspace = if standalone { "\n[workspace]\n" } else { "" },
            ),
        ),
        (
            "src/lib.rs",
            format!(
                r#"//! The `{name}` Echo function: it gets each message published on the channels that list it
//! in their associations, and passes new data on (`continue`) or stops the message (`drop`).

use echo_core::function::{{FunctionError, FunctionInput, FunctionOutput, map_text}};

/// Trims `data.text`; drops messages whose text is left empty.
pub fn transform(input: FunctionInput) -> Result<FunctionOutput, FunctionError> {{
    let data = map_text(input.message.data, |text| text.trim().to_owned());
    if data.get("text").and_then(|t| t.as_str()) == Some("") {{
        return Ok(FunctionOutput::drop("empty message"));
    }}
    Ok(FunctionOutput::cont(data))
}}

#[cfg(test)]
mod tests {{
    use super::*;
    use serde_json::json;

    fn input(data: serde_json::Value) -> FunctionInput {{
        serde_json::from_value(json!({{
            "app": "my-app",
            "channel": "chat",
            "message": {{"id": "m1", "data": data, "from": "alice", "ts": 0}}
        }}))
        .unwrap()
    }}

    #[test]
    fn trims_and_drops_empty_messages() {{
        assert_eq!(
            transform(input(json!({{"text": "  hi  "}}))).unwrap(),
            FunctionOutput::cont(json!({{"text": "hi"}}))
        );
        assert!(matches!(
            transform(input(json!({{"text": "   "}}))).unwrap(),
            FunctionOutput::Drop {{ .. }}
        ));
    }}
}}
"#
            ),
        ),
        (
            "src/main.rs",
            format!(
                r#"//! `{name}` as a Lambda (`cargo lambda build --release --arm64`; `cargo lambda watch` serves
//! it locally). With `--input FILE` it runs once on the file and prints the answer.

#[tokio::main]
async fn main() -> Result<(), echo_function_runtime::Error> {{
    echo_function_runtime::run({lib}::transform).await
}}
"#
            ),
        ),
        (
            "sample.json",
            "{\"text\": \"  hello from echoctl  \"}\n".to_owned(),
        ),
    ];
    for (file, contents) in files {
        let path = root.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| FunctionsError::Write {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(&path, contents).map_err(|source| FunctionsError::Write { path, source })?;
    }
    Ok(root)
}

/// The nearest Cargo.toml above `dir` with a `[workspace]` table.
fn find_workspace(dir: &Path) -> Option<PathBuf> {
    let start = std::fs::canonicalize(dir)
        .or_else(|_| std::env::current_dir().map(|c| c.join(dir)))
        .ok()?;
    start.ancestors().find_map(|d| {
        let manifest = d.join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).ok()?;
        text.lines()
            .any(|l| l.trim() == "[workspace]")
            .then_some(manifest)
    })
}

/// What to add to the enclosing workspace, unless its members already cover the crate.
fn workspace_hint(crate_dir: &Path) -> Option<String> {
    let manifest = find_workspace(crate_dir.parent()?)?;
    let text = std::fs::read_to_string(&manifest).ok()?;
    let folder = crate_dir
        .parent()?
        .file_name()?
        .to_string_lossy()
        .into_owned();
    let name = crate_dir.file_name()?.to_string_lossy().into_owned();
    let covered =
        text.contains(&format!("\"{folder}/*\"")) || text.contains(&format!("\"{folder}/{name}\""));
    (!covered).then(|| {
        format!(
            "add \"{folder}/{name}\" to the members of the workspace in {}",
            manifest.display()
        )
    })
}

/// Builds `dir/name` and runs its binary once on `input`.
fn test(dir: &Path, name: &str, input: &Path) -> crate::Result {
    let manifest = dir.join(name).join("Cargo.toml");
    if !manifest.is_file() {
        return Err(FunctionsError::Missing {
            name: name.to_owned(),
            dir: dir.to_path_buf(),
        }
        .into());
    }
    let input = std::fs::canonicalize(input).map_err(|source| FunctionsError::Write {
        path: input.to_path_buf(),
        source,
    })?;
    eprintln!("building {name} and running it on {}", input.display());
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["run", "--quiet", "--manifest-path"])
        .arg(&manifest)
        .args(["--bin", name, "--", "--input"])
        .arg(&input)
        .status()
        .map_err(FunctionsError::Cargo)?;
    if status.success() {
        Ok(())
    } else {
        Err(FunctionsError::Failed(status.code()).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_suit_crates_and_lambdas() {
        assert!(valid_crate_name("shout"));
        assert!(valid_crate_name("geo-filter_2"));
        for bad in ["", "Shout", "2fast", "-x", "a b", "a/b", &"x".repeat(65)] {
            assert!(!valid_crate_name(bad), "{bad}");
        }
    }

    #[test]
    fn scaffold_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let echo = EchoSource::Git("https://example.invalid/echo".into());
        let made = scaffold(dir.path(), "shout", &echo).unwrap();
        assert!(made.join("src/lib.rs").is_file());
        let manifest = std::fs::read_to_string(made.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("echo-core = { git = \"https://example.invalid/echo\" }"));
        assert!(matches!(
            scaffold(dir.path(), "shout", &echo),
            Err(FunctionsError::Exists(_))
        ));
        assert!(matches!(
            scaffold(dir.path(), "Bad", &echo),
            Err(FunctionsError::Name(_))
        ));
    }
}
