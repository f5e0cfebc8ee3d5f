//! The SAM CLI: the commands deploy and teardown run, printed as typed, and what `sam list`
//! says about the stack.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use super::{AwsArgs, AwsError};

/// A command, printed as it would be typed (with `redact` hidden).
pub(super) struct Step {
    title: String,
    command: Command,
    /// The command as it would be typed, secrets hidden.
    pub(super) shown: String,
}

impl Step {
    pub(super) fn new(title: &str, program: &Path, args: &[String], redact: Option<&str>) -> Self {
        let mut command = Command::new(program);
        command.args(args);
        let mut shown = std::iter::once(program.display().to_string())
            .chain(args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ");
        if let Some(secret) = redact.filter(|s| !s.is_empty()) {
            shown = shown.replace(secret, "****");
        }
        Self {
            title: title.to_owned(),
            command,
            shown,
        }
    }

    pub(super) fn run(mut self, n: usize, of: usize) -> Result<(), AwsError> {
        eprintln!("==> [{n}/{of}] {}", self.title);
        eprintln!("    {}", self.shown);
        let started = Instant::now();
        let status = self
            .command
            .status()
            .map_err(|_| AwsError::Step(self.shown.clone(), None))?;
        eprintln!(
            "    {} in {}",
            if status.success() { "done" } else { "failed" },
            humantime::format_duration(std::time::Duration::from_secs(started.elapsed().as_secs()))
        );
        if status.success() {
            Ok(())
        } else {
            Err(AwsError::Step(self.title, status.code()))
        }
    }
}

pub(super) fn check_sam(sam: &Path) -> Result<(), AwsError> {
    let found = Command::new(sam)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        Ok(())
    } else {
        Err(AwsError::NoSam(sam.to_path_buf()))
    }
}

/// What `sam build` needs besides the SAM CLI: cargo-lambda for Rust Lambdas (Echo's own and a
/// project's Rust functions), npm for JavaScript ones, the Python of their Lambda runtime for
/// Python ones. Checked before anything is built.
pub(super) fn check_builders(rust: bool, node: bool, python: bool) -> Result<(), AwsError> {
    let answers = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if rust && !answers("cargo", &["lambda", "--version"]) {
        return Err(AwsError::NoTool {
            tool: "cargo-lambda",
            what: "Rust Lambdas for arm64",
            fix: "pip install cargo-lambda, and put its directory on PATH",
        });
    }
    if node && !answers("npm", &["--version"]) {
        return Err(AwsError::NoTool {
            tool: "npm",
            what: "JavaScript functions",
            fix: "install Node.js 20 or later, which brings npm",
        });
    }
    let interpreter = crate::functions::python::LAMBDA_RUNTIME;
    if python && !answers(interpreter, &["--version"]) {
        return Err(AwsError::NoTool {
            tool: interpreter,
            what: "Python functions (sam build installs their requirements with the runtime's Python)",
            fix: "install that Python version and put its python3.N command on PATH",
        });
    }
    Ok(())
}

/// Prints the stack's outputs (sam list stack-outputs).
pub(super) fn print_outputs(aws: &AwsArgs) -> crate::Result {
    for (key, value) in stack_outputs(aws)? {
        println!("{key:<24} {value}");
    }
    Ok(())
}

pub(super) fn stack_outputs(aws: &AwsArgs) -> Result<Vec<(String, String)>, AwsError> {
    Ok(sam_list(aws, "stack-outputs")?
        .iter()
        .filter_map(|r| {
            Some((
                r.get("OutputKey")?.as_str()?.to_owned(),
                r.get("OutputValue")?.as_str()?.to_owned(),
            ))
        })
        .collect())
}

/// The deployed name of each function resource, by logical id (sam list resources).
#[cfg(feature = "aws")]
pub(super) fn physical_names(
    aws: &AwsArgs,
) -> Result<std::collections::HashMap<String, String>, AwsError> {
    Ok(sam_list(aws, "resources")?
        .iter()
        .filter_map(|r| {
            // Resources of the local template that the stack does not have show as "-".
            let physical = r.get("PhysicalResourceId")?.as_str()?;
            (physical != "-").then(|| {
                Some((
                    r.get("LogicalResourceId")?.as_str()?.to_owned(),
                    physical.to_owned(),
                ))
            })?
        })
        .collect())
}

/// `sam list WHAT` for the stack, read as JSON (a list).
fn sam_list(aws: &AwsArgs, what: &str) -> Result<Vec<serde_json::Value>, AwsError> {
    let sam = aws.sam();
    check_sam(&sam)?;
    let mut command = Command::new(&sam);
    command.args([
        "list",
        what,
        "--stack-name",
        &aws.stack_name,
        "--output",
        "json",
    ]);
    // Resources are listed as the template declares them, with the stack's physical ids.
    if what == "resources" {
        command.arg("--template").arg(&aws.template);
    }
    let output = command
        .args(aws.region_args())
        .output()
        .map_err(|e| AwsError::Outputs(e.to_string()))?;
    if !output.status.success() {
        return Err(AwsError::Outputs(
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| AwsError::Outputs(e.to_string()))
}
