//! `echoctl functions new|test`: a project's middleware functions, in Rust, JavaScript or Python.
//!
//! Each function is a folder of the functions folder, named as associations refer to it. Its
//! runtime shows in its files: a `Cargo.toml` makes it a Rust crate ([`rust`]), an `index.mjs` a
//! Node.js module ([`node`]), a `handler.py` a Python module ([`python`]). All speak the same
//! JSON contract (`echo_core::function`) and are called over the Lambda Invoke API locally, as
//! Lambda invokes them on AWS: JavaScript and Python ones through a [`runner`] of their language.

/// The demo functions of Echo's checkout (`functions/`), each a Lambda of Echo's stack.
pub const DEMO_FUNCTIONS: [&str; 7] = [
    "angry",
    "emojify",
    "backwards",
    "robot",
    "profanity",
    "members",
    "ticker",
];

pub mod hook;
pub mod node;
pub mod python;
pub mod runner;
pub mod rust;
pub mod rust_watch;
pub mod warm;

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use echo_core::function::reference::valid_function_name;

use crate::config::Loaded;

pub use rust::echo_source;

#[derive(Subcommand)]
pub enum FunctionsCommand {
    /// Create a function in the functions folder.
    New(NewArgs),
    /// Run a function once on a sample message (Rust functions are built first).
    Test(TestArgs),
}

/// The languages a function may be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Runtime {
    /// A Rust crate, a Lambda on `provided.al2023`.
    Rust,
    /// A JavaScript module for Node.js 20 or later, a Lambda on `nodejs24.x`.
    Node,
    /// A Python module for Python 3.9 or later, a Lambda on `python3.13`.
    Python,
}

#[derive(Args)]
pub struct NewArgs {
    /// The function's name, as associations refer to it (a-z, 0-9, -, _; starts with a letter).
    name: String,
    /// The language to write it in.
    #[arg(long, value_enum, default_value_t = Runtime::Rust)]
    runtime: Runtime,
    /// Write a hook function (onConnect, onSubscribe, a schedule, afterPresence) instead of a
    /// message function, with a sample of its input.
    #[arg(long, value_enum)]
    hook: Option<hook::Hook>,
    /// The functions folder (default: [functions] dir in echo.toml, else ./functions).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// A checkout of Echo whose crates a Rust function depends on (default: the one echoctl was
    /// built from, else the git repository).
    #[arg(long, env = "ECHO_SOURCE")]
    echo_path: Option<PathBuf>,
}

#[derive(Args)]
pub struct TestArgs {
    /// The function's name (its folder in the functions folder).
    name: String,
    /// A JSON file: a whole function input ({"app","channel","message"}), just the data, or a
    /// hook's input ({"hook":"connect"|"subscribe"|"schedule"|"presence",...}).
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
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not JSON: {source}")]
    Sample {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot run cargo: {0}")]
    Cargo(std::io::Error),
    #[error("the function failed or did not build (exit code {0:?})")]
    Failed(Option<i32>),
    #[error(transparent)]
    Runner(#[from] runner::RunnerError),
}

pub fn run(command: FunctionsCommand, loaded: &Loaded) -> crate::Result {
    match command {
        FunctionsCommand::New(args) => {
            let dir = functions_dir(args.dir, loaded);
            let (path, workspace) = match args.runtime {
                Runtime::Rust => {
                    let echo = echo_source(args.echo_path.or_else(|| configured_echo(loaded)));
                    let path = rust::scaffold(&dir, &args.name, &echo, args.hook)?;
                    let hint = rust::workspace_hint(&path);
                    (path, hint)
                }
                Runtime::Node => node::scaffold(&dir, &args.name, args.hook)?,
                Runtime::Python => python::scaffold(&dir, &args.name, args.hook)?,
            };
            println!("created {}", path.display());
            if let Some(hook) = args.hook {
                println!(
                    "name it under {} in associations.json (README, \"Associations\")",
                    hook.key()
                );
            }
            if let Some(workspace) = workspace {
                println!("{workspace}");
            }
            println!(
                "try it:  echoctl functions test {} --input {}/sample.json",
                args.name,
                path.display()
            );
            match args.runtime {
                Runtime::Rust => println!(
                    "unit tests: cargo test (in {}); echoctl dev builds it and serves it under cargo lambda watch when it is in the project's functions folder",
                    path.display()
                ),
                Runtime::Node => println!(
                    "unit tests: npm test (in {}); echoctl dev runs it when it is in the project's functions folder",
                    path.display()
                ),
                Runtime::Python => println!(
                    "unit tests: python3 -m unittest (in {}); echoctl dev runs it when it is in the project's functions folder",
                    path.display()
                ),
            }
            Ok(())
        }
        FunctionsCommand::Test(args) => {
            let dir = functions_dir(args.dir, loaded);
            let runtime = runtime_of(&dir, &args.name).ok_or_else(|| FunctionsError::Missing {
                name: args.name.clone(),
                dir: dir.clone(),
            })?;
            let input =
                std::fs::canonicalize(&args.input).map_err(|source| FunctionsError::Read {
                    path: args.input.clone(),
                    source,
                })?;
            match runtime {
                Runtime::Rust => rust::test(&dir, &args.name, &input),
                Runtime::Node => runner::test(&node::NODE, &dir, &args.name, &input),
                Runtime::Python => runner::test(&python::PYTHON, &dir, &args.name, &input),
            }
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

/// Echo's checkout, whose template and Lambdas a deploy builds: `ECHO_SOURCE`, else `[functions]
/// echo-path`, else the one echoctl was built from, if it is still there.
pub fn echo_checkout(loaded: &Loaded) -> Option<PathBuf> {
    let explicit = std::env::var_os("ECHO_SOURCE")
        .map(PathBuf::from)
        .or_else(|| configured_echo(loaded));
    match echo_source(explicit) {
        rust::EchoSource::Path(root) => Some(root),
        rust::EchoSource::Git(_) => None,
    }
}

/// `[functions] echo-path` of the config file.
fn configured_echo(loaded: &Loaded) -> Option<PathBuf> {
    loaded
        .file
        .functions
        .echo_path
        .as_deref()
        .map(|p| loaded.resolve(p))
}

/// What `dir/name` is written in, if it is a function.
pub fn runtime_of(dir: &Path, name: &str) -> Option<Runtime> {
    let root = dir.join(name);
    if root.join("Cargo.toml").is_file() {
        Some(Runtime::Rust)
    } else if root.join(node::ENTRY).is_file() {
        Some(Runtime::Node)
    } else if root.join(python::ENTRY).is_file() {
        Some(Runtime::Python)
    } else {
        None
    }
}

/// A project's functions: those of `dir`, unless it lies inside `echo_root`, Echo's own checkout
/// (whose demo functions the edge runs in process and Echo's template deploys).
pub fn of_project(dir: &Path, echo_root: Option<&Path>) -> Vec<(String, Runtime)> {
    match in_checkout(dir, echo_root) {
        true => Vec::new(),
        false => in_folder(dir),
    }
}

/// Whether `dir` lies inside `echo_root`, Echo's own checkout.
pub fn in_checkout(dir: &Path, echo_root: Option<&Path>) -> bool {
    let canonical = |p: &Path| std::fs::canonicalize(p).ok();
    match (canonical(dir), echo_root.and_then(canonical)) {
        (Some(dir), Some(root)) => dir.starts_with(&root),
        _ => false,
    }
}

/// The functions in `dir` (none when it does not exist), by name.
pub fn in_folder(dir: &Path) -> Vec<(String, Runtime)> {
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_owned();
            let runtime = runtime_of(dir, &name)?;
            valid_name(&name).then_some((name, runtime))
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// A name that suits associations, crates, npm packages and Lambda function names alike.
fn valid_name(name: &str) -> bool {
    valid_function_name(name)
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.contains(|c: char| c.is_ascii_uppercase())
}

/// `dir/name` for a new function: the name checked, nothing there yet.
fn new_function_dir(dir: &Path, name: &str) -> Result<PathBuf, FunctionsError> {
    if !valid_name(name) {
        return Err(FunctionsError::Name(name.to_owned()));
    }
    let root = dir.join(name);
    if root.exists() {
        return Err(FunctionsError::Exists(root));
    }
    Ok(root)
}

/// Writes each `(relative path, contents)` under `root`, creating folders as needed.
fn write_files(root: &Path, files: &[(&str, String)]) -> Result<(), FunctionsError> {
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_suit_crates_packages_and_lambdas() {
        assert!(valid_name("shout"));
        assert!(valid_name("geo-filter_2"));
        for bad in ["", "Shout", "2fast", "-x", "a b", "a/b", &"x".repeat(65)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn the_folder_lists_functions_of_either_runtime() {
        let dir = tempfile::tempdir().unwrap();
        rust::scaffold(
            dir.path(),
            "trim",
            &rust::EchoSource::Git("https://example.invalid/echo".into()),
            None,
        )
        .unwrap();
        let (_, workspace) = node::scaffold(dir.path(), "shout", None).unwrap();
        assert_eq!(workspace, None, "no workspace around it");
        python::scaffold(dir.path(), "enrich", None).unwrap();
        std::fs::create_dir(dir.path().join("notes")).unwrap();
        assert_eq!(
            in_folder(dir.path()),
            [
                ("enrich".to_owned(), Runtime::Python),
                ("shout".to_owned(), Runtime::Node),
                ("trim".to_owned(), Runtime::Rust)
            ]
        );
        assert!(matches!(
            node::scaffold(dir.path(), "trim", None),
            Err(FunctionsError::Exists(_))
        ));
        assert!(in_folder(&dir.path().join("missing")).is_empty());
    }
}
