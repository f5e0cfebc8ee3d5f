//! `echoctl deploy`, `status` and `teardown`: the AWS stack through the SAM CLI, and what the
//! SAM CLI cannot tell (whether each deployed function runs the local code) through the AWS SDK
//! when echoctl is built with the `aws` feature.
//!
//! Every command checks for AWS credentials first and fails with a clear message without them;
//! `--dry-run` prints what would run (secrets redacted) and the local code hashes.
//!
//! - this file: the settings every AWS command shares, its errors, the credentials check.
//! - `deploy`, `status`, `teardown`: the commands; `associations`: `associations push --target
//!   aws`; `key_set`: the stack's key set secret.
//! - `project`: a project's own functions, as a stack beside Echo's; `update`: only those whose
//!   code changed.
//! - `sam`: the SAM CLI's commands and what `sam list` says.
//! - `sdk` (the `aws` feature): code hashes and associations through the AWS SDK.

mod associations;
mod deploy;
mod key_set;
mod project;
mod sam;
#[cfg(feature = "aws")]
mod sdk;
mod status;
mod teardown;
mod update;

pub use associations::push_associations;
pub use deploy::deploy;
pub use key_set::{adopt_instance_secret, read_key_set, write_key_set};
pub use project::Project;
pub use status::status;
pub use teardown::teardown;
pub use update::{UpdateArgs, update};

use std::path::{Path, PathBuf};

use clap::{ArgMatches, Args};

use crate::config::{ConfigError, Loaded, Row};
use crate::hash::{TemplateFunction, Workspace, template_functions};
use crate::layer;

/// The tag `deploy` puts on each function: the hash of the code it was built from.
pub const SOURCE_HASH_TAG: &str = "echo:source-hash";

#[derive(Args, Clone)]
pub struct AwsArgs {
    // Global, so that commands with subcommands (`keys`) take them after the subcommand too.
    /// The CloudFormation stack.
    #[arg(long, default_value = "echo", env = "ECHO_STACK_NAME", global = true)]
    stack_name: String,
    /// The AWS region (default: the AWS configuration's).
    #[arg(long, env = "AWS_REGION", global = true)]
    region: Option<String>,
    /// The SAM template.
    #[arg(
        long,
        default_value = "template.yaml",
        env = "ECHO_TEMPLATE",
        global = true
    )]
    template: PathBuf,
    /// The SAM CLI (default: .venv-sam/bin/sam when present, else sam on PATH).
    #[arg(long, env = "ECHO_SAM", global = true)]
    sam: Option<PathBuf>,
}

impl AwsArgs {
    /// Fills what neither flags nor the environment set from the config file's `[aws]`.
    pub fn layer(&mut self, m: &ArgMatches, loaded: &Loaded) -> Result<Vec<Row>, ConfigError> {
        let f = &loaded.file.aws;
        let args = self;
        let mut rows = Vec::new();
        let clone = |v: &String| Ok::<_, ConfigError>(v.clone());
        layer!(rows, m, args.stack_name, f.stack_name, "stack-name", clone);
        layer!(rows, m, args.region, f.region, "region", |v: &String| Ok::<
            _,
            ConfigError,
        >(
            Some(v.clone())
        ));
        layer!(
            rows,
            m,
            args.template,
            f.template,
            "template",
            |v: &PathBuf| Ok::<_, ConfigError>(loaded.resolve(v))
        );
        layer!(rows, m, args.sam, f.sam, "sam", |v: &PathBuf| Ok::<
            _,
            ConfigError,
        >(
            Some(loaded.resolve(v))
        ));
        Ok(rows)
    }

    fn sam(&self) -> PathBuf {
        self.sam.clone().unwrap_or_else(|| {
            let venv = Path::new(".venv-sam/bin/sam");
            if venv.is_file() {
                venv.to_path_buf()
            } else {
                PathBuf::from("sam")
            }
        })
    }

    /// In a project, which has no template of Echo's stack: the one of Echo's checkout (`echo`).
    pub fn fall_back_to_echo(&mut self, echo: Option<&Path>) {
        if let Some(template) = echo.map(|root| root.join("template.yaml"))
            && !self.template.is_file()
            && template.is_file()
        {
            self.template = template;
        }
    }

    fn region_args(&self) -> Vec<String> {
        self.region
            .iter()
            .flat_map(|r| ["--region".to_owned(), r.clone()])
            .collect()
    }

    fn template_dir(&self) -> PathBuf {
        match self.template.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }
}

#[derive(Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Associations to store in the stack's table once it is deployed.
    #[arg(long, value_name = "FILE")]
    associations: Option<PathBuf>,
    /// Print what would run, without running it.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Print what would be queried and the local code hashes, without calling AWS.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Args)]
pub struct TeardownArgs {
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Print what would run, without running it.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// No credentials; what the command does in the account.
    #[error(
        "no AWS credentials found (AWS_PROFILE, AWS_ACCESS_KEY_ID, or ~/.aws/credentials and \
         ~/.aws/config): {0}; --dry-run shows what it would do"
    )]
    NoCredentials(&'static str),
    #[error(
        "the SAM CLI was not found at {0:?}: install it (pip install aws-sam-cli) or set ECHO_SAM"
    )]
    NoSam(PathBuf),
    #[error("{tool} is needed to build {what}, and `{tool} --version` did not answer: {fix}")]
    NoTool {
        tool: &'static str,
        what: &'static str,
        fix: &'static str,
    },
    #[error("{0} failed with exit code {1:?}")]
    Step(String, Option<i32>),
    #[error(
        "no template at {0}: run from a checkout of Echo or a project, pass --template, or name Echo's checkout in ECHO_SOURCE or [functions] echo-path"
    )]
    NoTemplate(PathBuf),
    #[error("cannot read the stack outputs: {0}")]
    Outputs(String),
    #[cfg(not(feature = "aws"))]
    #[error(
        "this echoctl was built without the `aws` feature, which {0} needs: \
         cargo install --path echoctl --features aws"
    )]
    NoSdk(&'static str),
}

/// Whether the AWS SDK and CLI would find credentials.
pub(super) fn has_credentials() -> bool {
    let env = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    if [
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ]
    .iter()
    .any(|k| env(k))
    {
        return true;
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let file = |var: &str, default: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(default)))
            .is_some_and(|p| p.is_file())
    };
    file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials")
        || file("AWS_CONFIG_FILE", ".aws/config")
}

/// The hex SHA-256 of a template as deploy passes it (its `SourceHash` parameter), which
/// `status` compares with the stack's `SourceHash` output.
pub(super) fn template_hash(path: &Path) -> Result<String, AwsError> {
    use sha2::{Digest, Sha256};
    let text = std::fs::read(path).map_err(|_| AwsError::NoTemplate(path.to_path_buf()))?;
    Ok(Sha256::digest(&text)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The local hash of every function in the template.
pub(super) fn local_hashes(aws: &AwsArgs) -> crate::Result<Vec<(TemplateFunction, String)>> {
    let template = std::fs::read_to_string(&aws.template)
        .map_err(|_| AwsError::NoTemplate(aws.template.clone()))?;
    let workspace = Workspace::load(&aws.template_dir())?;
    template_functions(&template)
        .into_iter()
        .map(|f| {
            let hash = workspace.hash_binary(&f.binary)?;
            Ok((f, hash))
        })
        .collect()
}
