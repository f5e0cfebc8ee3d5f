//! `echoctl status`: the stack's outputs, and whether each deployed function runs the local code:
//! Echo's own, and a project's functions in their stack beside it.

use crate::hash::TemplateFunction;

use super::project::Project;
use super::sam::{print_outputs, stack_outputs};
#[cfg(feature = "aws")]
use super::sdk;
use super::{
    AwsArgs, AwsError, SOURCE_HASH_TAG, StatusArgs, has_credentials, local_hashes, template_hash,
};

pub fn status(args: StatusArgs, project: &Project) -> crate::Result {
    let aws = &args.aws;
    if !args.dry_run && !has_credentials() {
        return Err(AwsError::NoCredentials(
            "echoctl status reads a deployed stack in your AWS account",
        )
        .into());
    }
    let local = local_hashes(aws)?;
    let functions = project.hashes()?;
    let functions_stack = project_stack(aws, project);
    if args.dry_run {
        println!(
            "echoctl status would read the outputs of stack {} and, for each function, its \
             {SOURCE_HASH_TAG} tag, and compare it with the local code:",
            aws.stack_name
        );
        for (f, hash) in local.iter().chain(&functions) {
            println!("  {:<24} {:<20} local {hash}", f.logical_id, f.binary);
        }
        if !functions.is_empty() {
            println!(
                "the project's functions ({}) in stack {}",
                project.describe(),
                functions_stack.stack_name
            );
        }
        return Ok(());
    }
    print_outputs(aws)?;
    println!();
    stack_state(aws)?;
    compare_functions(aws, &local)?;
    if !functions.is_empty() {
        project.write_template()?;
        println!(
            "\nthe project's functions, stack {}:",
            functions_stack.stack_name
        );
        stack_state(&functions_stack)?;
        compare_functions(&functions_stack, &functions)?;
        no_longer_in_project(&functions_stack, &functions)?;
    }
    Ok(())
}

/// Whether the stack was deployed from the local template: its `SourceHash` output, which deploy
/// sets, against the template's hash now.
fn stack_state(stack: &AwsArgs) -> crate::Result {
    let local = template_hash(&stack.template)?;
    let deployed = stack_outputs(stack)?
        .into_iter()
        .find(|(key, _)| key == "SourceHash")
        .map(|(_, value)| value);
    let state = match deployed {
        Some(d) if d == local => "deployed from the local template".to_owned(),
        Some(d) => format!(
            "deployed from another template ({}; local {}): echoctl deploy updates it",
            d.chars().take(12).collect::<String>(),
            &local[..12]
        ),
        None => {
            "deployed without echoctl (no SourceHash output): echoctl deploy updates it".to_owned()
        }
    };
    println!("stack {}: {state}", stack.stack_name);
    Ok(())
}

/// The settings of the stack that holds the project's functions, and its template.
fn project_stack(aws: &AwsArgs, project: &Project) -> AwsArgs {
    let mut stack = aws.clone();
    stack.stack_name = Project::stack_name(&aws.stack_name);
    stack.template = project.template_path();
    stack
}

#[cfg(feature = "aws")]
fn compare_functions(aws: &AwsArgs, local: &[(TemplateFunction, String)]) -> crate::Result {
    sdk::runtime()?.block_on(sdk::compare(aws, local))
}

#[cfg(not(feature = "aws"))]
fn compare_functions(_aws: &AwsArgs, _local: &[(TemplateFunction, String)]) -> crate::Result {
    Err(AwsError::NoSdk("comparing deployed code").into())
}

/// Functions the stack holds that the project no longer has.
#[cfg(feature = "aws")]
fn no_longer_in_project(stack: &AwsArgs, local: &[(TemplateFunction, String)]) -> crate::Result {
    let deployed = super::sam::physical_names(stack)?;
    let mut gone: Vec<&String> = deployed
        .keys()
        .filter(|id| id.ends_with("Function") && !local.iter().any(|(f, _)| f.logical_id == **id))
        .collect();
    gone.sort();
    for id in &gone {
        println!("{id:<24} {:<20} deployed, no longer in the project", "-");
    }
    if !gone.is_empty() {
        println!(
            "\n{} deployed function(s) are no longer in the project: echoctl deploy removes them",
            gone.len()
        );
    }
    Ok(())
}

#[cfg(not(feature = "aws"))]
fn no_longer_in_project(_stack: &AwsArgs, _local: &[(TemplateFunction, String)]) -> crate::Result {
    Ok(())
}
