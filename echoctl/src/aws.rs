//! `echoctl deploy`, `status` and `teardown`: the AWS stack through the SAM CLI, and what the
//! SAM CLI cannot tell (whether each deployed function runs the local code) through the AWS SDK
//! when echoctl is built with the `aws` feature.
//!
//! Every command checks for AWS credentials first and fails with a clear message without them;
//! `--dry-run` prints what would run (secrets redacted) and the local code hashes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use clap::{ArgMatches, Args};
use echo_core::associations::Associations;

use crate::config::{ConfigError, Loaded, Row};
use crate::hash::{TemplateFunction, Workspace, template_functions};
use crate::layer;

/// The tag `deploy` puts on each function: the hash of the code it was built from.
pub const SOURCE_HASH_TAG: &str = "echo:source-hash";

#[derive(Args, Clone)]
pub struct AwsArgs {
    /// The CloudFormation stack.
    #[arg(long, default_value = "echo", env = "ECHO_STACK_NAME")]
    stack_name: String,
    /// The AWS region (default: the AWS configuration's).
    #[arg(long, env = "AWS_REGION")]
    region: Option<String>,
    /// The SAM template.
    #[arg(long, default_value = "template.yaml", env = "ECHO_TEMPLATE")]
    template: PathBuf,
    /// The SAM CLI (default: .venv-sam/bin/sam when present, else sam on PATH).
    #[arg(long, env = "ECHO_SAM")]
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
    #[error(
        "no AWS credentials found (AWS_PROFILE, AWS_ACCESS_KEY_ID, or ~/.aws/credentials and \
         ~/.aws/config): this command works on a deployed stack in your AWS account; \
         --dry-run shows what it would do"
    )]
    NoCredentials,
    #[error(
        "the SAM CLI was not found at {0:?}: install it (pip install aws-sam-cli) or set ECHO_SAM"
    )]
    NoSam(PathBuf),
    #[error("{0} failed with exit code {1:?}")]
    Step(String, Option<i32>),
    #[error("no template at {0}: run from the folder with template.yaml or pass --template")]
    NoTemplate(PathBuf),
    #[error("ECHO_JWT_SECRET must be set to the stack's JWT secret (at least 32 bytes)")]
    NoSecret,
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
fn has_credentials() -> bool {
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

/// A command, printed as it would be typed (with `redact` hidden).
struct Step {
    title: String,
    command: Command,
    shown: String,
}

impl Step {
    fn new(title: &str, program: &Path, args: &[String], redact: Option<&str>) -> Self {
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

    fn run(mut self, n: usize, of: usize) -> Result<(), AwsError> {
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

fn check_sam(sam: &Path) -> Result<(), AwsError> {
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

pub fn deploy(args: DeployArgs) -> crate::Result {
    let aws = &args.aws;
    if !aws.template.is_file() {
        return Err(AwsError::NoTemplate(aws.template.clone()).into());
    }
    let secret = std::env::var(crate::secrets::JWT_SECRET_ENV).ok();
    let secret_shown = secret
        .clone()
        .unwrap_or_else(|| "$ECHO_JWT_SECRET".to_owned());
    let sam = aws.sam();
    let build_dir = aws.template_dir().join(".aws-sam/build");
    let mut build = vec!["build".to_owned(), "--template".to_owned()];
    build.push(aws.template.display().to_string());
    build.extend(["--build-dir".to_owned(), build_dir.display().to_string()]);
    let mut deploy = vec![
        "deploy".to_owned(),
        "--template-file".to_owned(),
        build_dir.join("template.yaml").display().to_string(),
        "--stack-name".to_owned(),
        aws.stack_name.clone(),
        "--capabilities".to_owned(),
        "CAPABILITY_IAM".to_owned(),
        "--resolve-s3".to_owned(),
        "--no-confirm-changeset".to_owned(),
        "--no-fail-on-empty-changeset".to_owned(),
        "--parameter-overrides".to_owned(),
        format!("JwtSecret={secret_shown}"),
    ];
    deploy.extend(aws.region_args());
    let steps = [
        Step::new(
            "building every Lambda for arm64 (sam build; several minutes the first time)",
            &sam,
            &build,
            None,
        ),
        Step::new(
            "deploying the stack (sam deploy)",
            &sam,
            &deploy,
            secret.as_deref(),
        ),
    ];
    if args.dry_run {
        println!("echoctl deploy would run:");
        for s in &steps {
            println!("  {}", s.shown);
        }
        println!("  then tag each function with {SOURCE_HASH_TAG} (its local code hash)");
        if let Some(file) = &args.associations {
            println!(
                "  then store {} in the stack's connections table",
                file.display()
            );
        }
        return Ok(());
    }
    if !has_credentials() {
        return Err(AwsError::NoCredentials.into());
    }
    match &secret {
        Some(s) if s.len() >= 32 => {}
        _ => return Err(AwsError::NoSecret.into()),
    }
    check_sam(&sam)?;
    let total = 3 + usize::from(args.associations.is_some());
    for (i, step) in steps.into_iter().enumerate() {
        step.run(i + 1, total)?;
    }
    eprintln!("==> [3/{total}] recording the code hash of each function");
    record_hashes(aws)?;
    if let Some(file) = &args.associations {
        eprintln!("==> [4/{total}] storing {}", file.display());
        let text = std::fs::read_to_string(file)?;
        let parsed = Associations::parse(&text, &|_| true)
            .map_err(|e| format!("{}: {e}", file.display()))?;
        push_associations(aws, file, &parsed, false)?;
    }
    print_outputs(aws)
}

pub fn teardown(args: TeardownArgs) -> crate::Result {
    let aws = &args.aws;
    let mut delete = vec![
        "delete".to_owned(),
        "--stack-name".to_owned(),
        aws.stack_name.clone(),
        "--no-prompts".to_owned(),
    ];
    delete.extend(aws.region_args());
    let step = Step::new(
        "deleting the stack, its tables and their data (sam delete)",
        &aws.sam(),
        &delete,
        None,
    );
    if args.dry_run {
        println!("echoctl teardown would run:\n  {}", step.shown);
        return Ok(());
    }
    if !has_credentials() {
        return Err(AwsError::NoCredentials.into());
    }
    check_sam(&aws.sam())?;
    step.run(1, 1)?;
    Ok(())
}

/// The local hash of every function in the template.
fn local_hashes(aws: &AwsArgs) -> crate::Result<Vec<(TemplateFunction, String)>> {
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

pub fn status(args: StatusArgs) -> crate::Result {
    let aws = &args.aws;
    if !args.dry_run && !has_credentials() {
        return Err(AwsError::NoCredentials.into());
    }
    let local = local_hashes(aws)?;
    if args.dry_run {
        println!(
            "echoctl status would read the outputs of stack {} and, for each function, its \
             {SOURCE_HASH_TAG} tag, and compare it with the local code:",
            aws.stack_name
        );
        for (f, hash) in &local {
            println!("  {:<24} {:<20} local {hash}", f.logical_id, f.binary);
        }
        return Ok(());
    }
    print_outputs(aws)?;
    compare_functions(aws, &local)
}

/// Prints the stack's outputs (sam list stack-outputs).
fn print_outputs(aws: &AwsArgs) -> crate::Result {
    for (key, value) in stack_outputs(aws)? {
        println!("{key:<24} {value}");
    }
    Ok(())
}

fn stack_outputs(aws: &AwsArgs) -> Result<Vec<(String, String)>, AwsError> {
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
fn physical_names(aws: &AwsArgs) -> Result<std::collections::HashMap<String, String>, AwsError> {
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
    let output = Command::new(&sam)
        .args([
            "list",
            what,
            "--stack-name",
            &aws.stack_name,
            "--output",
            "json",
        ])
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

#[cfg(feature = "aws")]
fn record_hashes(aws: &AwsArgs) -> crate::Result {
    let local = local_hashes(aws)?;
    sdk::runtime()?.block_on(sdk::record_hashes(aws, &local))
}

#[cfg(not(feature = "aws"))]
fn record_hashes(_aws: &AwsArgs) -> crate::Result {
    eprintln!(
        "    skipped: this echoctl was built without the `aws` feature, so `echoctl status` \
         cannot compare code"
    );
    Ok(())
}

#[cfg(feature = "aws")]
fn compare_functions(aws: &AwsArgs, local: &[(TemplateFunction, String)]) -> crate::Result {
    sdk::runtime()?.block_on(sdk::compare(aws, local))
}

#[cfg(not(feature = "aws"))]
fn compare_functions(_aws: &AwsArgs, _local: &[(TemplateFunction, String)]) -> crate::Result {
    Err(AwsError::NoSdk("comparing deployed code").into())
}

/// Stores associations in the deployed stack's connections table.
pub fn push_associations(
    aws: &AwsArgs,
    file: &Path,
    parsed: &Associations,
    dry_run: bool,
) -> crate::Result {
    if dry_run {
        println!(
            "would store {} in the ConnectionsTableName output of stack {}",
            file.display(),
            aws.stack_name
        );
        return Ok(());
    }
    store_associations(aws, file, parsed)
}

#[cfg(feature = "aws")]
fn store_associations(aws: &AwsArgs, file: &Path, parsed: &Associations) -> crate::Result {
    if !has_credentials() {
        return Err(AwsError::NoCredentials.into());
    }
    let table = stack_outputs(aws)?
        .into_iter()
        .find(|(k, _)| k == "ConnectionsTableName")
        .map(|(_, v)| v)
        .ok_or_else(|| AwsError::Outputs("the stack has no ConnectionsTableName output".into()))?;
    sdk::runtime()?.block_on(sdk::store_associations(aws, &table, parsed))?;
    println!(
        "stored {} in {table} (functions: {}); Lambdas pick it up within their cache time",
        file.display(),
        parsed.function_names().join(", ")
    );
    Ok(())
}

#[cfg(not(feature = "aws"))]
fn store_associations(_: &AwsArgs, _: &Path, _: &Associations) -> crate::Result {
    Err(AwsError::NoSdk("pushing associations to AWS").into())
}

#[cfg(feature = "aws")]
mod sdk {
    use std::sync::Arc;

    use echo_aws::store::dynamodb::{DynamoStore, Tables};
    use echo_core::associations::Associations;
    use echo_core::store::AssociationsStore;

    use super::{AwsArgs, SOURCE_HASH_TAG};

    /// Next to the source hash, the deployed package's `CodeSha256`, to notice code changed
    /// outside echoctl.
    const CODE_SHA_TAG: &str = "echo:code-sha256";
    use crate::hash::TemplateFunction;

    /// An SDK error with its cause chain, naming the call and the function.
    fn sdk_error(call: &str, name: &str, e: &dyn std::error::Error) -> String {
        format!(
            "{call} {name}: {}",
            aws_sdk_lambda::error::DisplayErrorContext(e)
        )
    }

    pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }

    async fn config(aws: &AwsArgs) -> aws_config::SdkConfig {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &aws.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        loader.load().await
    }

    async fn get_function(
        lambda: &aws_sdk_lambda::Client,
        name: &str,
    ) -> crate::Result<aws_sdk_lambda::operation::get_function::GetFunctionOutput> {
        lambda
            .get_function()
            .function_name(name)
            .send()
            .await
            .map_err(|e| sdk_error("GetFunction", name, &e).into())
    }

    pub async fn record_hashes(
        aws: &AwsArgs,
        local: &[(TemplateFunction, String)],
    ) -> crate::Result {
        let sdk = config(aws).await;
        let names = super::physical_names(aws)?;
        let lambda = aws_sdk_lambda::Client::new(&sdk);
        for (f, hash) in local {
            let Some(name) = names.get(&f.logical_id) else {
                continue;
            };
            let function = get_function(&lambda, name).await?;
            let Some(config) = function.configuration() else {
                continue;
            };
            lambda
                .tag_resource()
                .resource(config.function_arn().unwrap_or(name))
                .tags(SOURCE_HASH_TAG, hash)
                .tags(CODE_SHA_TAG, config.code_sha256().unwrap_or_default())
                .send()
                .await
                .map_err(|e| sdk_error("TagResource", name, &e))?;
            eprintln!("    {:<24} {}", f.logical_id, &hash[..12]);
        }
        Ok(())
    }

    pub async fn compare(aws: &AwsArgs, local: &[(TemplateFunction, String)]) -> crate::Result {
        let sdk = config(aws).await;
        let names = super::physical_names(aws)?;
        let lambda = aws_sdk_lambda::Client::new(&sdk);
        println!();
        println!(
            "{:<24} {:<20} {:<14} {:<14} state",
            "function", "binary", "deployed", "local"
        );
        let mut differ = 0;
        for (f, hash) in local {
            let state = match names.get(&f.logical_id) {
                None => ("-".to_owned(), "not deployed"),
                Some(name) => {
                    let got = get_function(&lambda, name).await?;
                    let tags = got.tags().cloned().unwrap_or_default();
                    let code = got
                        .configuration()
                        .and_then(|c| c.code_sha256())
                        .unwrap_or_default();
                    match (tags.get(SOURCE_HASH_TAG), tags.get(CODE_SHA_TAG)) {
                        (Some(deployed), Some(sha)) if sha == code => (
                            deployed.chars().take(12).collect(),
                            if deployed == hash {
                                "matches"
                            } else {
                                "differs"
                            },
                        ),
                        (Some(deployed), _) => (
                            deployed.chars().take(12).collect(),
                            "changed outside echoctl",
                        ),
                        (None, _) => ("?".to_owned(), "unknown (not deployed by echoctl)"),
                    }
                }
            };
            if state.1 != "matches" {
                differ += 1;
            }
            println!(
                "{:<24} {:<20} {:<14} {:<14} {}",
                f.logical_id,
                f.binary,
                state.0,
                &hash[..12],
                state.1
            );
        }
        if differ > 0 {
            println!(
                "\n{differ} function(s) do not match the local code: echoctl deploy updates them"
            );
        }
        Ok(())
    }

    pub async fn store_associations(
        aws: &AwsArgs,
        table: &str,
        parsed: &Associations,
    ) -> crate::Result {
        let sdk = config(aws).await;
        let store = Arc::new(DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            Tables {
                connections: table.to_owned(),
                history: String::new(),
                subscriber_shards: 1,
                history_ttl_secs: 0,
            },
        ));
        store.save_associations(parsed.source()).await?;
        Ok(())
    }
}
