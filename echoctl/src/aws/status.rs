//! `echoctl status`: the stack's outputs, and whether each deployed function runs the local code.

use crate::hash::TemplateFunction;

use super::sam::print_outputs;
#[cfg(feature = "aws")]
use super::sdk;
use super::{AwsArgs, AwsError, SOURCE_HASH_TAG, StatusArgs, has_credentials, local_hashes};

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

#[cfg(feature = "aws")]
fn compare_functions(aws: &AwsArgs, local: &[(TemplateFunction, String)]) -> crate::Result {
    sdk::runtime()?.block_on(sdk::compare(aws, local))
}

#[cfg(not(feature = "aws"))]
fn compare_functions(_aws: &AwsArgs, _local: &[(TemplateFunction, String)]) -> crate::Result {
    Err(AwsError::NoSdk("comparing deployed code").into())
}
