//! Content hashes of the code behind each Lambda in a SAM template, so that `echoctl status` can
//! tell whether a deployed function runs the local code.
//!
//! A function's hash covers every file of the package that builds its binary and of the local
//! packages it depends on (transitively), plus `Cargo.lock`: what `cargo lambda build` compiles.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cargo metadata failed: {0}")]
    Metadata(String),
    #[error("no package in the workspace builds the binary {0:?}")]
    NoPackage(String),
}

/// A function in the template: its logical id and the binary `cargo lambda` builds for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateFunction {
    pub logical_id: String,
    pub binary: String,
}

/// The `AWS::Serverless::Function` resources of a SAM template built with `rust-cargolambda`,
/// read from the template's layout (two-space resource names, `Binary:` under
/// `BuildProperties`).
pub fn template_functions(template: &str) -> Vec<TemplateFunction> {
    let mut out = Vec::new();
    let mut in_resources = false;
    let mut current: Option<(String, bool, Option<String>)> = None;
    let mut flush = |c: &mut Option<(String, bool, Option<String>)>| {
        if let Some((id, true, Some(binary))) = c.take() {
            out.push(TemplateFunction {
                logical_id: id,
                binary,
            });
        }
    };
    for line in template.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if indent == 0 {
            flush(&mut current);
            in_resources = trimmed == "Resources:";
            continue;
        }
        if !in_resources {
            continue;
        }
        if indent == 2 && trimmed.ends_with(':') {
            flush(&mut current);
            current = Some((trimmed.trim_end_matches(':').to_owned(), false, None));
        } else if let Some((_, is_function, binary)) = &mut current {
            if let Some(t) = trimmed.strip_prefix("Type:").filter(|_| indent == 4) {
                *is_function = t.trim() == "AWS::Serverless::Function";
            } else if let Some(b) = trimmed.strip_prefix("Binary:") {
                *binary = Some(b.trim().trim_matches('"').to_owned());
            }
        }
    }
    flush(&mut current);
    out
}

#[derive(Deserialize)]
struct Metadata {
    packages: Vec<Package>,
    workspace_root: PathBuf,
}

#[derive(Deserialize)]
struct Package {
    manifest_path: PathBuf,
    dependencies: Vec<Dependency>,
    targets: Vec<Target>,
}

#[derive(Deserialize)]
struct Dependency {
    name: String,
    /// Set for path dependencies: the local packages whose code is compiled in.
    path: Option<PathBuf>,
    kind: Option<String>,
}

#[derive(Deserialize)]
struct Target {
    name: String,
    kind: Vec<String>,
}

/// The workspace around `dir`, as `cargo metadata` describes it.
pub struct Workspace {
    meta: Metadata,
}

impl Workspace {
    pub fn load(dir: &Path) -> Result<Self, HashError> {
        let output = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args([
                "metadata",
                "--format-version",
                "1",
                "--no-deps",
                "--offline",
            ])
            .current_dir(dir)
            .output()
            .map_err(|e| HashError::Metadata(e.to_string()))?;
        if !output.status.success() {
            return Err(HashError::Metadata(
                String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            ));
        }
        let meta = serde_json::from_slice(&output.stdout)
            .map_err(|e| HashError::Metadata(e.to_string()))?;
        Ok(Self { meta })
    }

    /// The hex SHA-256 of what builds `binary`.
    pub fn hash_binary(&self, binary: &str) -> Result<String, HashError> {
        let package = self
            .meta
            .packages
            .iter()
            .find(|p| {
                p.targets
                    .iter()
                    .any(|t| t.name == binary && t.kind.iter().any(|k| k == "bin"))
            })
            .ok_or_else(|| HashError::NoPackage(binary.to_owned()))?;
        let by_dir: BTreeMap<PathBuf, &Package> = self
            .meta
            .packages
            .iter()
            .filter_map(|p| Some((p.manifest_path.parent()?.to_path_buf(), p)))
            .collect();
        // The package and its local (path) dependencies, build and normal, transitively.
        let mut dirs = BTreeSet::new();
        let mut todo = vec![package];
        while let Some(p) = todo.pop() {
            let Some(dir) = p.manifest_path.parent() else {
                continue;
            };
            if !dirs.insert(dir.to_path_buf()) {
                continue;
            }
            for d in &p.dependencies {
                if d.kind.as_deref() == Some("dev") {
                    continue;
                }
                if let Some(dep) = d.path.as_ref().and_then(|path| by_dir.get(path)) {
                    todo.push(dep);
                } else if d.path.is_some() {
                    tracing::debug!(dependency = %d.name, "path dependency outside the workspace");
                }
            }
        }
        let root = &self.meta.workspace_root;
        let mut files = Vec::new();
        for dir in &dirs {
            collect(dir, &mut files)?;
        }
        files.push(root.join("Cargo.lock"));
        hash_files(root, files)
    }
}

/// The hex SHA-256 of every file under `dir` (a JavaScript function: its installed
/// `node_modules` left out, as the build installs them anew from `package.json`; a Python one:
/// its `__pycache__` and `.venv` left out, as the build installs from `requirements.txt`).
pub fn hash_folder(dir: &Path) -> Result<String, HashError> {
    let mut files = Vec::new();
    collect(dir, &mut files)?;
    hash_files(dir, files)
}

/// The hex SHA-256 of `files`: each one's path under `root`, length and bytes, in path order. A
/// file that is gone is left out.
fn hash_files(root: &Path, mut files: Vec<PathBuf>) -> Result<String, HashError> {
    files.sort();
    files.dedup();
    let mut hasher = Sha256::new();
    for file in files {
        let bytes = match std::fs::read(&file) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(HashError::Read { path: file, source }),
        };
        let name = file.strip_prefix(root).unwrap_or(&file);
        hasher.update(name.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Every file under `dir` except build output, VCS data, and nested packages' own folders.
fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), HashError> {
    let entries = std::fs::read_dir(dir).map_err(|source| HashError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if matches!(
            name.to_str(),
            Some(
                "target" | ".git" | "node_modules" | ".aws-sam" | ".echo" | "__pycache__" | ".venv"
            )
        ) {
            continue;
        }
        match entry.file_type() {
            // A nested package is hashed on its own when it is a dependency.
            Ok(t) if t.is_dir() && !path.join("Cargo.toml").is_file() => collect(&path, out)?,
            Ok(t) if t.is_file() => out.push(path),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_functions_of_a_template() {
        let t = "\
Parameters:
  X:
    Type: String
Resources:
  # the handler
  ConnectFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: rust-cargolambda
      BuildProperties:
        Binary: connect-handler
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      Binary: not-a-function
  AngryFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: \"angry\"
Outputs:
  Y:
    Value: 1
";
        assert_eq!(
            template_functions(t),
            vec![
                TemplateFunction {
                    logical_id: "ConnectFunction".into(),
                    binary: "connect-handler".into()
                },
                TemplateFunction {
                    logical_id: "AngryFunction".into(),
                    binary: "angry".into()
                },
            ]
        );
    }

    #[test]
    fn the_hash_follows_the_code() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let ws = Workspace::load(&root).unwrap();
        let angry = ws.hash_binary("angry").unwrap();
        assert_eq!(angry.len(), 64);
        assert_eq!(angry, ws.hash_binary("angry").unwrap(), "stable");
        assert_ne!(angry, ws.hash_binary("robot").unwrap());
        assert!(matches!(
            ws.hash_binary("no-such-binary"),
            Err(HashError::NoPackage(_))
        ));
    }
}
