//! Functions in Rust: a crate with a `transform` and a one-line Lambda binary over
//! `echo-function-runtime`. It builds with `cargo lambda build`, serves with `cargo lambda watch`,
//! and runs once on a file with `--input FILE`, which `functions test` uses.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::FunctionsError;

/// Where echoctl's own sources were when it was built: function crates depend on Echo's crates
/// there when they are present.
const BUILT_FROM: &str = env!("CARGO_MANIFEST_DIR");
/// Otherwise they depend on the repository.
const REPOSITORY: &str = env!("CARGO_PKG_REPOSITORY");

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

/// Writes `dir/name`: Cargo.toml, src/lib.rs (the transform, with tests), src/main.rs (the
/// Lambda) and sample.json.
pub fn scaffold(
    dir: &Path,
    name: &str,
    echo: &EchoSource,
    hook: Option<super::hook::Hook>,
) -> Result<PathBuf, FunctionsError> {
    let root = super::new_function_dir(dir, name)?;
    let lib = name.replace('-', "_");
    // A crate outside any workspace gets its own, so that it builds where it is.
    let standalone = find_workspace(dir).is_none();
    let mut files = vec![
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
    if let Some(hook) = hook {
        files.retain(|(file, _)| *file == "Cargo.toml");
        files.extend([
            (
                "src/lib.rs",
                format!(
                    r#"//! The `{name}` Echo hook function (`{key}` in associations). It gets the JSON in
//! sample.json and answers as README's "Writing a function" says.

use echo_core::function::FunctionError;
use serde_json::{{Value, json}};

pub fn decide(input: Value) -> Result<Value, FunctionError> {{
{body}
}}

#[cfg(test)]
mod tests {{
    use super::*;

    #[test]
    fn answers_the_sample() {{
        let sample: Value = serde_json::from_str(include_str!("../sample.json")).unwrap();
        assert_eq!(decide(sample).unwrap(), {expected});
    }}
}}
"#,
                    key = hook.key(),
                    body = hook.rust(),
                    expected = hook.rust_test(),
                ),
            ),
            (
                "src/main.rs",
                format!(
                    r#"//! `{name}` as a Lambda (`cargo lambda build --release --arm64`; `cargo lambda watch` serves
//! it locally). With `--input FILE` it runs once on the file and prints the answer.

#[tokio::main]
async fn main() -> Result<(), echo_function_runtime::Error> {{
    echo_function_runtime::run_hook({lib}::decide).await
}}
"#
                ),
            ),
            ("sample.json", hook.sample().to_owned()),
        ]);
    }
    super::write_files(&root, &files)?;
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
pub fn workspace_hint(crate_dir: &Path) -> Option<String> {
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

/// Keeps `dir`, a function folder that is not a crate, out of the enclosing Cargo workspace, whose
/// `"functions/*"` members would otherwise take it for one and stop every cargo command there:
/// adds it to the workspace's one-line `exclude = [...]` (as `echoctl init` writes it), or says
/// what to add.
pub fn exclude_from_workspace(dir: &Path) -> Result<Option<String>, FunctionsError> {
    let Some(manifest) = dir.parent().and_then(find_workspace) else {
        return Ok(None);
    };
    let (Some(folder), Some(name)) = (dir.parent().and_then(Path::file_name), dir.file_name())
    else {
        return Ok(None);
    };
    let (folder, name) = (folder.to_string_lossy(), name.to_string_lossy());
    let text = std::fs::read_to_string(&manifest).map_err(|source| FunctionsError::Read {
        path: manifest.clone(),
        source,
    })?;
    let entry = format!("\"{folder}/{name}\"");
    if !text.contains(&format!("\"{folder}/*\"")) || text.contains(&entry) {
        return Ok(None);
    }
    let mut edited = false;
    let lines: Vec<String> = text
        .lines()
        .map(|line| match line.trim().strip_prefix("exclude = [") {
            Some(rest) if !edited && rest.ends_with(']') => {
                edited = true;
                let items = rest.trim_end_matches(']').trim();
                match items {
                    "" => format!("exclude = [{entry}]"),
                    _ => format!("exclude = [{items}, {entry}]"),
                }
            }
            _ => line.to_owned(),
        })
        .collect();
    if !edited {
        return Ok(Some(format!(
            "add {entry} to the exclude list of the workspace in {}: it is not a crate",
            manifest.display()
        )));
    }
    std::fs::write(&manifest, lines.join("\n") + "\n").map_err(|source| FunctionsError::Write {
        path: manifest.clone(),
        source,
    })?;
    Ok(Some(format!(
        "added {entry} to the exclude list of the workspace in {}",
        manifest.display()
    )))
}

/// Builds `dir/name` and runs its binary once on `input`.
pub fn test(dir: &Path, name: &str, input: &Path) -> crate::Result {
    let manifest = dir.join(name).join("Cargo.toml");
    eprintln!("building {name} and running it on {}", input.display());
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["run", "--quiet", "--manifest-path"])
        .arg(&manifest)
        .args(["--bin", name, "--", "--input"])
        .arg(input)
        .status()
        .map_err(FunctionsError::Cargo)?;
    if status.success() {
        Ok(())
    } else {
        Err(FunctionsError::Failed(status.code()).into())
    }
}

/// The Cargo workspace a crate builds in (cargo-lambda builds from there), or the crate itself.
pub fn cargo_root(krate: &Path) -> PathBuf {
    krate
        .ancestors()
        .skip(1)
        .find(|d| {
            std::fs::read_to_string(d.join("Cargo.toml"))
                .is_ok_and(|t| t.lines().any(|l| l.trim() == "[workspace]"))
        })
        .unwrap_or(krate)
        .to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaffold_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let echo = EchoSource::Git("https://example.invalid/echo".into());
        let made = scaffold(dir.path(), "shout", &echo, None).unwrap();
        assert!(made.join("src/lib.rs").is_file());
        let manifest = std::fs::read_to_string(made.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("echo-core = { git = \"https://example.invalid/echo\" }"));
        assert!(matches!(
            scaffold(dir.path(), "shout", &echo, None),
            Err(FunctionsError::Exists(_))
        ));
        assert!(matches!(
            scaffold(dir.path(), "Bad", &echo, None),
            Err(FunctionsError::Name(_))
        ));
    }
}
