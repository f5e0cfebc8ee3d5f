//! `echoctl deploy`: `sam build` and `sam deploy`, then each function tagged with the hash of
//! the code it was built from.

use echo_core::associations::Associations;
use echo_core::function::reference::is_lambda_arn;

use super::associations::push_associations;
use std::path::Path;

use super::project::Project;
use super::sam::{Step, check_builders, check_sam, print_outputs, stack_outputs};
use super::{AwsArgs, AwsError, DeployArgs, SOURCE_HASH_TAG, has_credentials, template_hash};
#[cfg(feature = "aws")]
use super::{local_hashes, sdk};
use crate::functions::Runtime;

pub fn deploy(args: DeployArgs, project: &Project) -> crate::Result {
    let aws = &args.aws;
    if !aws.template.is_file() {
        return Err(AwsError::NoTemplate(aws.template.clone()).into());
    }
    // A stack deployed before the key set took its secret from ECHO_JWT_SECRET: it moves into
    // the key set, so that tokens signed with it keep verifying.
    let secret = std::env::var(crate::secrets::JWT_SECRET_ENV)
        .ok()
        .filter(|s| !s.is_empty());
    if let Some(s) = &secret
        && s.len() < echo_core::auth::MIN_SECRET_LEN
    {
        return Err(echo_core::auth::WeakSecret(s.len()).into());
    }
    // Read first, so that a bad file stops the deploy before anything runs.
    let associations = match &args.associations {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let parsed = Associations::parse(&text, &|_| true)
                .map_err(|e| format!("{}: {e}", file.display()))?;
            Some((file, parsed))
        }
        None => None,
    };
    // Lambdas deployed elsewhere that the associations name by ARN: the handler may invoke them.
    let elsewhere: Vec<String> = associations
        .iter()
        .flat_map(|(_, parsed)| parsed.function_names())
        .filter(|name| is_lambda_arn(name))
        .collect();
    let sam = aws.sam();
    let functions_stack = Project::stack_name(&aws.stack_name);
    let has_functions = !project.functions.is_empty();
    let mut steps = Vec::new();
    if has_functions {
        let template = project.write_template()?;
        println!(
            "wrote the template of the project's functions, {}, to {}",
            project.describe(),
            template.display()
        );
        let build_dir = project.work_dir().join("functions-build");
        steps.push(Planned::Run(Box::new(Step::new(
            "building the project's functions for arm64 (sam build)",
            &sam,
            &sam_build(&template, &build_dir),
            None,
        ))));
    }
    let build_dir = aws.template_dir().join(".aws-sam/build");
    steps.push(Planned::Run(Box::new(Step::new(
        "building every Lambda of Echo's stack for arm64 (sam build; several minutes the first time)",
        &sam,
        &sam_build(&aws.template, &build_dir),
        None,
    ))));
    if has_functions {
        let build_dir = project.work_dir().join("functions-build");
        let mut deploy = sam_deploy(&build_dir, &functions_stack, aws);
        deploy.push(format!("EchoStackName={}", aws.stack_name));
        deploy.push(format!(
            "SourceHash={}",
            template_hash(&project.template_path())?
        ));
        steps.push(Planned::Run(Box::new(Step::new(
            &format!(
                "deploying the project's functions: {} (sam deploy)",
                project.describe()
            ),
            &sam,
            &deploy,
            None,
        ))));
        steps.push(Planned::ReadArns);
    }
    let mut deploy = sam_deploy(&build_dir, &aws.stack_name, aws);
    deploy.push(format!("SourceHash={}", template_hash(&aws.template)?));
    let granted = |outputs: Option<&str>| {
        outputs
            .map(str::to_owned)
            .into_iter()
            .chain(elsewhere.iter().cloned())
            .collect::<Vec<_>>()
            .join(",")
    };
    if has_functions || !elsewhere.is_empty() {
        let outputs = format!("<the FunctionArns output of {functions_stack}>");
        deploy.push(format!(
            "ProjectFunctionArns={}",
            granted(has_functions.then_some(outputs.as_str()))
        ));
    }
    steps.push(Planned::EchoDeploy(deploy));
    let total =
        steps.len() + 1 + usize::from(args.associations.is_some()) + usize::from(secret.is_some());
    if args.dry_run {
        println!("echoctl deploy would run:");
        for s in &steps {
            match s {
                Planned::Run(step) => println!("  {}", step.shown),
                Planned::ReadArns => println!(
                    "  then read the FunctionArns output of {functions_stack} (sam list stack-outputs)"
                ),
                Planned::EchoDeploy(args) => {
                    println!("  {}", Step::new("", &sam, args, None).shown)
                }
            }
        }
        println!("  then tag each function with {SOURCE_HASH_TAG} (its local code hash)");
        if secret.is_some() {
            println!(
                "  then make ECHO_JWT_SECRET the instance secret of the stack's key set (its KeysSecretArn output)"
            );
        }
        if let Some(file) = &args.associations {
            println!(
                "  then store {} in the stack's connections table",
                file.display()
            );
        }
        // What the real deploy would stop at, said now.
        if let Err(e) = check_sam(&sam) {
            eprintln!("warning: {e}");
        }
        if !has_credentials() {
            eprintln!("warning: no AWS credentials found: deploying needs them");
        }
        return Ok(());
    }
    if !has_credentials() {
        return Err(AwsError::NoCredentials(
            "echoctl deploy builds and deploys the stack to your AWS account",
        )
        .into());
    }
    check_sam(&sam)?;
    let has = |runtime| project.functions.iter().any(|(_, r)| *r == runtime);
    check_builders(true, has(Runtime::Node), has(Runtime::Python))?;
    let mut arns = None;
    for (i, step) in steps.into_iter().enumerate() {
        match step {
            Planned::Run(step) => step.run(i + 1, total)?,
            Planned::ReadArns => {
                eprintln!("==> [{}/{total}] reading the functions' ARNs", i + 1);
                arns = Some(function_arns(aws, &functions_stack)?);
            }
            Planned::EchoDeploy(mut args) => {
                if let (Some(arns), Some(last)) = (&arns, args.last_mut()) {
                    *last = format!("ProjectFunctionArns={}", granted(Some(arns)));
                }
                let step = Step::new("deploying Echo's stack (sam deploy)", &sam, &args, None);
                step.run(i + 1, total).map_err(|e| {
                    if has_functions {
                        format!(
                            "{e}; the project's functions are deployed in {functions_stack}, but Echo's stack does not invoke them yet: run echoctl deploy again"
                        )
                        .into()
                    } else {
                        Box::<dyn std::error::Error>::from(e)
                    }
                })?;
            }
        }
    }
    let mut n = total - usize::from(args.associations.is_some()) - usize::from(secret.is_some());
    eprintln!("==> [{n}/{total}] recording the code hash of each function");
    record_hashes(aws)?;
    if let Some(secret) = &secret {
        n += 1;
        eprintln!("==> [{n}/{total}] making ECHO_JWT_SECRET the stack's instance secret");
        if super::adopt_instance_secret(aws, secret)? {
            eprintln!(
                "    moved into the key set: tokens signed with it verify (within KeysCacheSeconds); \
                 ECHO_JWT_SECRET is no longer needed for deploying"
            );
        }
    }
    if has_functions {
        let mut stack = aws.clone();
        stack.stack_name = functions_stack.clone();
        record_project_hashes(&stack, project)?;
    }
    if let Some((file, parsed)) = &associations {
        eprintln!("==> [{total}/{total}] storing {}", file.display());
        push_associations(aws, file, parsed, false)?;
    }
    print_outputs(aws)
}

/// A step of a deploy; Echo's own `sam deploy` takes the functions' ARNs read before it.
enum Planned {
    Run(Box<Step>),
    ReadArns,
    EchoDeploy(Vec<String>),
}

fn sam_build(template: &Path, build_dir: &Path) -> Vec<String> {
    vec![
        "build".to_owned(),
        "--template".to_owned(),
        template.display().to_string(),
        "--build-dir".to_owned(),
        build_dir.display().to_string(),
    ]
}

/// `sam deploy` of what `build_dir` holds as `stack`, up to `--parameter-overrides`, whose values
/// the caller adds.
fn sam_deploy(build_dir: &Path, stack: &str, aws: &AwsArgs) -> Vec<String> {
    let mut args: Vec<String> = [
        "deploy",
        "--template-file",
        &build_dir.join("template.yaml").display().to_string(),
        "--stack-name",
        stack,
        "--capabilities",
        "CAPABILITY_IAM",
        "--resolve-s3",
        "--no-confirm-changeset",
        "--no-fail-on-empty-changeset",
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(aws.region_args());
    args.push("--parameter-overrides".to_owned());
    args
}

/// The FunctionArns output of the functions stack.
fn function_arns(aws: &AwsArgs, functions_stack: &str) -> Result<String, AwsError> {
    let mut stack = aws.clone();
    stack.stack_name = functions_stack.to_owned();
    stack_outputs(&stack)?
        .into_iter()
        .find(|(key, _)| key == "FunctionArns")
        .map(|(_, value)| value)
        .ok_or_else(|| AwsError::Outputs(format!("{functions_stack} has no FunctionArns output")))
}

#[cfg(feature = "aws")]
fn record_hashes(aws: &AwsArgs) -> crate::Result {
    let local = local_hashes(aws)?;
    sdk::runtime()?.block_on(sdk::record_hashes(aws, &local))
}

#[cfg(feature = "aws")]
fn record_project_hashes(stack: &AwsArgs, project: &Project) -> crate::Result {
    sdk::runtime()?.block_on(sdk::record_hashes(stack, &project.hashes()?))
}

#[cfg(not(feature = "aws"))]
fn record_project_hashes(_stack: &AwsArgs, _project: &Project) -> crate::Result {
    Ok(())
}

#[cfg(not(feature = "aws"))]
fn record_hashes(_aws: &AwsArgs) -> crate::Result {
    eprintln!(
        "    skipped: this echoctl was built without the `aws` feature, so `echoctl status` \
         cannot compare code"
    );
    Ok(())
}
