//! `echoctl associations push --target aws`: associations stored in the stack's connections
//! table.

use std::path::Path;

use echo_core::associations::Associations;

use super::{AwsArgs, AwsError};
#[cfg(feature = "aws")]
use super::{has_credentials, sam::stack_outputs, sdk};

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
        return Err(AwsError::NoCredentials("echoctl associations push --target aws stores associations in a stack in your AWS account").into());
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
