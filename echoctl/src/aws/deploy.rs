//! `echoctl deploy`: `sam build` and `sam deploy`, then each function tagged with the hash of
//! the code it was built from.

use echo_core::associations::Associations;

use super::associations::push_associations;
use super::sam::{Step, check_sam, print_outputs};
use super::{AwsArgs, AwsError, DeployArgs, SOURCE_HASH_TAG, has_credentials};
#[cfg(feature = "aws")]
use super::{local_hashes, sdk};

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
