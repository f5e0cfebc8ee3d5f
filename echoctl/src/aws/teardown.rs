//! `echoctl teardown`: `sam delete` of the stack.

use super::sam::{Step, check_sam};
use super::{AwsError, TeardownArgs, has_credentials};

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
