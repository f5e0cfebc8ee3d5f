//! `echoctl update [FN]`: a project's functions whose code changed since they were deployed, and
//! only those. Each is built alone (`sam build <LogicalId>`, so unchanged crates are not built),
//! its package replaces the Lambda's code (UpdateFunctionCode), and its hash tags are renewed.
//! A new function, or a change to the stacks themselves, needs `echoctl deploy`.

use std::path::Path;

use clap::Args;

use super::project::{Project, logical_id};
use super::sam::{Step, check_builders, check_sam};
use super::{AwsArgs, AwsError, has_credentials};
use crate::functions::Runtime;

#[derive(Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Only this function (default: every function of the project whose code changed).
    function: Option<String>,
    /// Print what would be compared and run, without calling AWS.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error(
        "no functions of a project here ({0}): update deploys a project's own functions; `echoctl deploy` deploys Echo's stack"
    )]
    NoProject(String),
    #[error("no function {name:?} in {dir} (the project's functions: {known})")]
    Unknown {
        name: String,
        dir: String,
        known: String,
    },
    #[error("{0} is not deployed: `echoctl deploy` creates new functions")]
    NotDeployed(String),
    #[error("cannot package {path}: {source}")]
    Package {
        path: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

pub fn update(args: UpdateArgs, project: &Project) -> crate::Result {
    let aws = &args.aws;
    if project.functions.is_empty() {
        return Err(UpdateError::NoProject(project.dir.display().to_string()).into());
    }
    if let Some(name) = &args.function
        && !project.functions.iter().any(|(n, _)| n == name)
    {
        return Err(UpdateError::Unknown {
            name: name.clone(),
            dir: project.dir.display().to_string(),
            known: project.describe(),
        }
        .into());
    }
    let local: Vec<_> = project
        .hashes()?
        .into_iter()
        .filter(|(f, _)| args.function.as_ref().is_none_or(|n| *n == f.binary))
        .collect();
    let template = project.template_path();
    let build_dir = project.work_dir().join("functions-build");
    let build = |id: &str| {
        Step::new(
            &format!("building {id} alone (sam build)"),
            &aws.sam(),
            &[
                "build".to_owned(),
                id.to_owned(),
                "--template".to_owned(),
                template.display().to_string(),
                "--build-dir".to_owned(),
                build_dir.display().to_string(),
            ],
            None,
        )
    };
    if args.dry_run {
        println!(
            "echoctl update would compare the {} tag of each function with its local hash, and for each that differs run:",
            super::SOURCE_HASH_TAG
        );
        for (f, hash) in &local {
            let lambda = Project::lambda_name(&aws.stack_name, &f.binary);
            println!("  {} (local {})", f.binary, &hash[..12]);
            println!("    {}", build(&f.logical_id).shown);
            println!(
                "    then upload {} as the code of {lambda} (UpdateFunctionCode) and tag it",
                build_dir.join(&f.logical_id).display()
            );
        }
        return Ok(());
    }
    if !has_credentials() {
        return Err(AwsError::NoCredentials(
            "echoctl update replaces the code of deployed functions in your AWS account",
        )
        .into());
    }
    check_sam(&aws.sam())?;
    let runtime_of = |name: &str| {
        project
            .functions
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, r)| *r)
    };
    let runtimes: Vec<_> = local
        .iter()
        .filter_map(|(f, _)| runtime_of(&f.binary))
        .collect();
    check_builders(
        runtimes.contains(&Runtime::Rust),
        runtimes.contains(&Runtime::Node),
        runtimes.contains(&Runtime::Python),
    )?;
    project.write_template()?;
    let mut updated = Vec::new();
    for (f, hash) in &local {
        let lambda = Project::lambda_name(&aws.stack_name, &f.binary);
        match deployed_hash(aws, &lambda)? {
            None => return Err(UpdateError::NotDeployed(lambda).into()),
            Some(Some(deployed)) if deployed == *hash => {
                println!("{:<24} unchanged ({})", f.binary, &hash[..12]);
                continue;
            }
            Some(deployed) => {
                let was = deployed.map_or("untagged".to_owned(), |d| {
                    d.chars().take(12).collect::<String>()
                });
                build(&logical_id(&f.binary)).run(1, 2)?;
                eprintln!("==> [2/2] uploading the code of {lambda}");
                let zip = package(&build_dir.join(&f.logical_id))?;
                upload(aws, &lambda, zip, hash)?;
                println!("{:<24} updated {was} -> {}", f.binary, &hash[..12]);
                updated.push(f.binary.clone());
            }
        }
    }
    match updated.len() {
        0 => println!("nothing to update: every function runs the local code"),
        n => println!("updated {n} function(s): {}", updated.join(", ")),
    }
    Ok(())
}

/// A zip of everything under `dir`, with each file's permissions (a Rust `bootstrap` must stay
/// executable).
fn package(dir: &Path) -> Result<Vec<u8>, UpdateError> {
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;
    let failed = |source: Box<dyn std::error::Error + Send + Sync>| UpdateError::Package {
        path: dir.display().to_string(),
        source,
    };
    let mut files = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).map_err(|e| failed(e.into()))? {
            let entry = entry.map_err(|e| failed(e.into()))?;
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for path in files {
        let name = path.strip_prefix(dir).unwrap_or(&path).to_string_lossy();
        let mode = std::fs::metadata(&path)
            .map_err(|e| failed(e.into()))?
            .permissions()
            .mode();
        let options = zip::write::SimpleFileOptions::default().unix_permissions(mode & 0o777);
        zip.start_file(name, options)
            .map_err(|e| failed(e.into()))?;
        let bytes = std::fs::read(&path).map_err(|e| failed(e.into()))?;
        zip.write_all(&bytes).map_err(|e| failed(e.into()))?;
    }
    let cursor = zip.finish().map_err(|e| failed(e.into()))?;
    Ok(cursor.into_inner())
}

#[cfg(feature = "aws")]
fn deployed_hash(aws: &AwsArgs, lambda: &str) -> crate::Result<Option<Option<String>>> {
    super::sdk::runtime()?.block_on(super::sdk::deployed_hash(aws, lambda))
}

#[cfg(feature = "aws")]
fn upload(aws: &AwsArgs, lambda: &str, zip: Vec<u8>, hash: &str) -> crate::Result {
    super::sdk::runtime()?.block_on(super::sdk::update_code(aws, lambda, zip, hash))
}

#[cfg(not(feature = "aws"))]
fn deployed_hash(_aws: &AwsArgs, _lambda: &str) -> crate::Result<Option<Option<String>>> {
    Err(AwsError::NoSdk("update").into())
}

#[cfg(not(feature = "aws"))]
fn upload(_aws: &AwsArgs, _lambda: &str, _zip: Vec<u8>, _hash: &str) -> crate::Result {
    Err(AwsError::NoSdk("update").into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn packages_keep_paths_and_modes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bootstrap"), b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            dir.path().join("bootstrap"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("lib")).unwrap();
        std::fs::write(dir.path().join("lib/util.mjs"), b"export {}\n").unwrap();
        let bytes = package(dir.path()).unwrap();
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(zip.len(), 2);
        let boot = zip.by_name("bootstrap").unwrap();
        assert_eq!(boot.unix_mode().map(|m| m & 0o777), Some(0o755));
        drop(boot);
        let mut text = String::new();
        zip.by_name("lib/util.mjs")
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "export {}\n");
    }
}
