//! The stack's key set: the Secrets Manager secret its `KeysSecretArn` output names, read and
//! written for `echoctl keys --target aws`, `echoctl jwt --target aws` and `deploy`'s move of
//! `ECHO_JWT_SECRET` into it.

use echo_core::auth::KeySet;

use super::{AwsArgs, AwsError};
#[cfg(feature = "aws")]
use super::{has_credentials, sam::stack_outputs, sdk};

/// The stack's key set secret (its ARN) and what it holds.
#[cfg(feature = "aws")]
pub fn read_key_set(aws: &AwsArgs) -> crate::Result<(String, KeySet)> {
    if !has_credentials() {
        return Err(AwsError::NoCredentials(
            "the key set lives in a Secrets Manager secret of the stack in your AWS account",
        )
        .into());
    }
    let arn = stack_outputs(aws)?
        .into_iter()
        .find(|(k, _)| k == "KeysSecretArn")
        .map(|(_, v)| v)
        .ok_or_else(|| {
            AwsError::Outputs(format!(
                "stack {} has no KeysSecretArn output: deploy it with this version of Echo",
                aws.stack_name
            ))
        })?;
    let json = sdk::runtime()?.block_on(sdk::get_secret(aws, &arn))?;
    let set = KeySet::parse(json.as_bytes()).map_err(|e| format!("{arn}: {e}"))?;
    Ok((arn, set))
}

/// Replaces the key set in the secret `arn`.
#[cfg(feature = "aws")]
pub fn write_key_set(aws: &AwsArgs, arn: &str, set: &KeySet) -> crate::Result {
    let json = serde_json::to_string(set)?;
    sdk::runtime()?.block_on(sdk::put_secret(aws, arn, &json))
}

/// Makes `secret` the stack's instance secret, unless it already is; whether it changed.
#[cfg(feature = "aws")]
pub fn adopt_instance_secret(aws: &AwsArgs, secret: &str) -> crate::Result<bool> {
    let (arn, mut set) = read_key_set(aws)?;
    if set.instance_secret.as_deref() == Some(secret) {
        return Ok(false);
    }
    set.instance_secret = Some(secret.to_owned());
    echo_core::auth::Keyring::compile(&set, None)?;
    write_key_set(aws, &arn, &set)?;
    Ok(true)
}

#[cfg(not(feature = "aws"))]
pub fn read_key_set(_: &AwsArgs) -> crate::Result<(String, KeySet)> {
    Err(AwsError::NoSdk("reading the stack's key set").into())
}

#[cfg(not(feature = "aws"))]
pub fn write_key_set(_: &AwsArgs, _: &str, _: &KeySet) -> crate::Result {
    Err(AwsError::NoSdk("writing the stack's key set").into())
}

#[cfg(not(feature = "aws"))]
pub fn adopt_instance_secret(_: &AwsArgs, _: &str) -> crate::Result<bool> {
    Err(AwsError::NoSdk("moving ECHO_JWT_SECRET into the stack's key set").into())
}
