//! `echoctl teardown`: `sam delete` of Echo's stack, then of the project's functions stack.

use super::project::Project;
use super::sam::{Step, check_sam};
use super::{AwsArgs, AwsError, TeardownArgs, has_credentials};

pub fn teardown(args: TeardownArgs, project: &Project) -> crate::Result {
    let aws = &args.aws;
    let mut steps = vec![delete(
        aws,
        &aws.stack_name,
        "deleting Echo's stack, its tables and their data (sam delete)",
    )];
    let functions_stack = Project::stack_name(&aws.stack_name);
    if !project.functions.is_empty() {
        steps.push(delete(
            aws,
            &functions_stack,
            &format!(
                "deleting the project's functions: {} (sam delete)",
                project.describe()
            ),
        ));
    }
    if args.dry_run {
        println!("echoctl teardown would run:");
        for step in &steps {
            println!("  {}", step.shown);
        }
        return Ok(());
    }
    if !has_credentials() {
        return Err(AwsError::NoCredentials(
            "echoctl teardown deletes a stack from your AWS account",
        )
        .into());
    }
    check_sam(&aws.sam())?;
    let total = steps.len();
    for (i, step) in steps.into_iter().enumerate() {
        step.run(i + 1, total)?;
    }
    println!("removed the stack {}", aws.stack_name);
    if !project.functions.is_empty() {
        println!(
            "removed the stack {functions_stack}: {}",
            project.describe()
        );
    }
    Ok(())
}

fn delete(aws: &AwsArgs, stack: &str, title: &str) -> Step {
    let mut args = vec![
        "delete".to_owned(),
        "--stack-name".to_owned(),
        stack.to_owned(),
        "--no-prompts".to_owned(),
    ];
    args.extend(aws.region_args());
    Step::new(title, &aws.sam(), &args, None)
}
