//! A project's own functions on AWS: a SAM template of their Lambdas, deployed as a stack of its
//! own beside Echo's (`<stack>-functions`), whose ARNs Echo's stack then lets the message handler
//! invoke, and no others.
//!
//! Each function becomes the Lambda `<stack>-<name>`, the name the message handler invokes for
//! `<name>` in an association: a Rust crate on `provided.al2023` built by cargo-lambda, a
//! JavaScript module on `nodejs24.x` (handler `index.handler`), a Python module on `python3.13`
//! (handler `handler.handler`, its `requirements.txt` installed by `sam build`), all arm64 with
//! the 25 s timeout that the longest `timeoutMs` allows.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::functions::rust::cargo_root;
use crate::functions::{self, Runtime, python};
use crate::hash::{HashError, TemplateFunction, Workspace, hash_folder};

/// Whether Echo's own stack has a Lambda `<stack>-<name>`, which a project function cannot take.
fn echo_takes(name: &str) -> bool {
    name == "fanout" || crate::functions::DEMO_FUNCTIONS.contains(&name)
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error(
        "function {0:?} has the name of one of Echo's own Lambdas (<stack>-{0}); rename its folder in the functions folder"
    )]
    Reserved(String),
    #[error(
        "functions {0:?} and {1:?} would have the same resource name in the template ({2}); rename one"
    )]
    Clash(String, String, String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A project's functions, as deploy and teardown see them.
#[derive(Debug, Clone)]
pub struct Project {
    /// The functions folder.
    pub dir: PathBuf,
    /// Its functions, by name; empty when the folder is Echo's own (its demo functions are in
    /// Echo's template) or has none.
    pub functions: Vec<(String, Runtime)>,
}

impl Project {
    /// The functions of `dir`, unless it lies inside `echo_root`, Echo's own checkout.
    pub fn load(dir: &Path, echo_root: Option<&Path>) -> Self {
        Self {
            dir: std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()),
            functions: functions::of_project(dir, echo_root),
        }
    }

    /// The name of the stack that holds the functions of Echo's stack `stack`.
    pub fn stack_name(stack: &str) -> String {
        format!("{stack}-functions")
    }

    /// Where the template is written and built: `.echo/aws` beside the functions folder.
    pub fn work_dir(&self) -> PathBuf {
        self.dir
            .parent()
            .unwrap_or(Path::new("."))
            .join(".echo/aws")
    }

    pub fn template_path(&self) -> PathBuf {
        self.work_dir().join("functions.yaml")
    }

    /// `name (runtime), ...`, for what deploy says it will do.
    pub fn describe(&self) -> String {
        self.functions
            .iter()
            .map(|(name, runtime)| {
                let runtime = match runtime {
                    Runtime::Rust => "Rust",
                    Runtime::Node => "JavaScript",
                    Runtime::Python => "Python",
                };
                format!("{name} ({runtime})")
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The SAM template of the functions' Lambdas.
    pub fn template(&self) -> Result<String, ProjectError> {
        let mut ids = BTreeMap::new();
        for (name, _) in &self.functions {
            if echo_takes(name) {
                return Err(ProjectError::Reserved(name.clone()));
            }
            let id = logical_id(name);
            if let Some(other) = ids.insert(id.clone(), name.clone()) {
                return Err(ProjectError::Clash(other, name.clone(), id));
            }
        }
        let mut t = String::new();
        let _ = writeln!(
            t,
            "AWSTemplateFormatVersion: \"2010-09-09\"\n\
             Transform: AWS::Serverless-2016-10-31\n\
             Description: \"Echo functions of the project in {}, written by echoctl deploy. Echo's stack invokes each as <EchoStackName>-<name>.\"\n\
             \n\
             Parameters:\n  \
               EchoStackName:\n    \
                 Type: String\n    \
                 AllowedPattern: \"^[A-Za-z][A-Za-z0-9-]*$\"\n    \
                 Description: The Echo stack whose message handler invokes these functions.\n  \
               SourceHash:\n    \
                 Type: String\n    \
                 Default: \"\"\n    \
                 Description: SHA-256 of this template as echoctl deployed it, for echoctl status.\n\
             \n\
             Conditions:\n  \
               HasSourceHash: !Not [!Equals [!Ref SourceHash, \"\"]]\n\
             \n\
             Globals:\n  \
               Function:\n    \
                 Architectures: [arm64]\n    \
                 MemorySize: 256\n    \
                 # As long as the largest timeoutMs an association may give (25 s).\n    \
                 Timeout: 25\n\
             \n\
             Resources:",
            yaml_string_content(&self.dir.display().to_string())
        );
        for (name, runtime) in &self.functions {
            let id = logical_id(name);
            let folder = self.dir.join(name);
            let _ = writeln!(t, "  {id}:\n    Type: AWS::Serverless::Function");
            match runtime {
                Runtime::Rust => {
                    let _ = writeln!(
                        t,
                        "    Metadata:\n      \
                           BuildMethod: rust-cargolambda\n      \
                           BuildProperties:\n        \
                             Binary: {name}\n    \
                         Properties:\n      \
                           FunctionName: !Sub \"${{EchoStackName}}-{name}\"\n      \
                           Description: Echo function {name} (Rust)\n      \
                           CodeUri: {}\n      \
                           Runtime: provided.al2023\n      \
                           Handler: bootstrap",
                        yaml_path(&cargo_root(&folder))
                    );
                }
                Runtime::Node => {
                    let _ = writeln!(
                        t,
                        "    Properties:\n      \
                           FunctionName: !Sub \"${{EchoStackName}}-{name}\"\n      \
                           Description: Echo function {name} (JavaScript)\n      \
                           CodeUri: {}\n      \
                           Runtime: nodejs24.x\n      \
                           Handler: index.handler",
                        yaml_path(&folder)
                    );
                }
                Runtime::Python => {
                    let _ = writeln!(
                        t,
                        "    Properties:\n      \
                           FunctionName: !Sub \"${{EchoStackName}}-{name}\"\n      \
                           Description: Echo function {name} (Python)\n      \
                           CodeUri: {}\n      \
                           Runtime: {}\n      \
                           Handler: handler.handler",
                        yaml_path(&folder),
                        python::LAMBDA_RUNTIME
                    );
                }
            }
            let _ = writeln!(
                t,
                "  {id}LogGroup:\n    \
                   Type: AWS::Logs::LogGroup\n    \
                   DeletionPolicy: Delete\n    \
                   UpdateReplacePolicy: Delete\n    \
                   Properties:\n      \
                     LogGroupName: !Sub \"/aws/lambda/${{{id}}}\"\n      \
                     RetentionInDays: 14"
            );
        }
        let arns: Vec<String> = self
            .functions
            .iter()
            .map(|(name, _)| format!("!GetAtt {}.Arn", logical_id(name)))
            .collect();
        let _ = write!(
            t,
            "\nOutputs:\n  \
               SourceHash:\n    \
                 Condition: HasSourceHash\n    \
                 Description: SHA-256 of this template as echoctl deployed it.\n    \
                 Value: !Ref SourceHash\n  \
               FunctionArns:\n    \
                 Description: The functions' ARNs, for Echo's ProjectFunctionArns parameter.\n    \
                 Value: !Join [\",\", [{}]]\n",
            arns.join(", ")
        );
        Ok(t)
    }

    /// The Lambda that runs `name` for Echo's stack `stack`.
    pub fn lambda_name(stack: &str, name: &str) -> String {
        format!("{stack}-{name}")
    }

    /// Each function as a template resource, with the hash of its code: for a Rust one, its
    /// crate, the local crates it depends on and `Cargo.lock`; for a JavaScript or Python one,
    /// its folder.
    pub fn hashes(&self) -> Result<Vec<(TemplateFunction, String)>, HashError> {
        let mut workspaces: BTreeMap<PathBuf, Workspace> = BTreeMap::new();
        let mut out = Vec::new();
        for (name, runtime) in &self.functions {
            let folder = self.dir.join(name);
            let hash = match runtime {
                Runtime::Rust => {
                    let root = cargo_root(&folder);
                    let workspace = match workspaces.entry(root) {
                        Entry::Occupied(e) => e.into_mut(),
                        Entry::Vacant(e) => {
                            let loaded = Workspace::load(e.key())?;
                            e.insert(loaded)
                        }
                    };
                    workspace.hash_binary(name)?
                }
                Runtime::Node | Runtime::Python => hash_folder(&folder)?,
            };
            let function = TemplateFunction {
                logical_id: logical_id(name),
                binary: name.clone(),
            };
            out.push((function, hash));
        }
        Ok(out)
    }

    /// Writes [`Self::template`] to [`Self::template_path`].
    pub fn write_template(&self) -> Result<PathBuf, ProjectError> {
        let text = self.template()?;
        let path = self.template_path();
        let write = |p: &Path| -> std::io::Result<()> {
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(p, &text)
        };
        write(&path).map_err(|source| ProjectError::Write {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }
}

/// `geo-filter_2` → `GeoFilter2Function`.
pub fn logical_id(name: &str) -> String {
    let mut id = String::new();
    for part in name.split(['-', '_']) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            id.push(first.to_ascii_uppercase());
            id.extend(chars);
        }
    }
    id + "Function"
}

/// A path as a double-quoted YAML scalar.
fn yaml_path(path: &Path) -> String {
    format!("\"{}\"", yaml_string_content(&path.display().to_string()))
}

/// `s` escaped for a double-quoted YAML scalar.
fn yaml_string_content(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logical_ids_are_camel_case() {
        assert_eq!(logical_id("shout"), "ShoutFunction");
        assert_eq!(logical_id("geo-filter_2"), "GeoFilter2Function");
    }

    fn project(functions: &[(&str, Runtime)]) -> Project {
        Project {
            dir: PathBuf::from("/p/functions"),
            functions: functions
                .iter()
                .map(|(n, r)| ((*n).to_owned(), *r))
                .collect(),
        }
    }

    #[test]
    fn echo_names_and_clashes_are_refused() {
        assert!(matches!(
            project(&[("fanout", Runtime::Node)]).template(),
            Err(ProjectError::Reserved(n)) if n == "fanout"
        ));
        assert!(matches!(
            project(&[("geo-x", Runtime::Node), ("geo_x", Runtime::Rust)]).template(),
            Err(ProjectError::Clash(..))
        ));
    }

    #[test]
    fn the_template_names_each_function_and_its_runtime() {
        let t = project(&[("shout", Runtime::Node), ("tidy", Runtime::Rust)])
            .template()
            .unwrap();
        assert!(
            t.contains("FunctionName: !Sub \"${EchoStackName}-shout\""),
            "{t}"
        );
        assert!(t.contains("Runtime: nodejs24.x"), "{t}");
        assert!(t.contains("CodeUri: \"/p/functions/shout\""), "{t}");
        assert!(t.contains("Binary: tidy"), "{t}");
        assert!(
            t.contains(
                "Value: !Join [\",\", [!GetAtt ShoutFunction.Arn, !GetAtt TidyFunction.Arn]]"
            ),
            "{t}"
        );
    }
}
