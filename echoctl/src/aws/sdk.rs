//! What the SAM CLI cannot tell or do, through the AWS SDK: code hashes on each function, and
//! associations in the stack's table.

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

/// The source hash the Lambda `name` was tagged with by `deploy` or `update`: `None` when there
/// is no such Lambda, `Some(None)` when it has no tag.
pub async fn deployed_hash(aws: &AwsArgs, name: &str) -> crate::Result<Option<Option<String>>> {
    let lambda = aws_sdk_lambda::Client::new(&config(aws).await);
    match lambda.get_function().function_name(name).send().await {
        Ok(got) => Ok(Some(
            got.tags().and_then(|t| t.get(SOURCE_HASH_TAG)).cloned(),
        )),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(sdk_error("GetFunction", name, &e).into()),
    }
}

/// Replaces the code of the Lambda `name` with the package `zip`, waits until Lambda has applied
/// it, and tags the function with `hash` and the new package's `CodeSha256`.
pub async fn update_code(aws: &AwsArgs, name: &str, zip: Vec<u8>, hash: &str) -> crate::Result {
    use aws_sdk_lambda::client::Waiters;
    let lambda = aws_sdk_lambda::Client::new(&config(aws).await);
    let updated = lambda
        .update_function_code()
        .function_name(name)
        .zip_file(aws_sdk_lambda::primitives::Blob::new(zip))
        .send()
        .await
        .map_err(|e| sdk_error("UpdateFunctionCode", name, &e))?;
    lambda
        .wait_until_function_updated_v2()
        .function_name(name)
        .wait(std::time::Duration::from_secs(300))
        .await
        .map_err(|e| sdk_error("waiting for the update of", name, &e))?;
    lambda
        .tag_resource()
        .resource(updated.function_arn().unwrap_or(name))
        .tags(SOURCE_HASH_TAG, hash)
        .tags(CODE_SHA_TAG, updated.code_sha256().unwrap_or_default())
        .send()
        .await
        .map_err(|e| sdk_error("TagResource", name, &e))?;
    Ok(())
}

pub async fn record_hashes(aws: &AwsArgs, local: &[(TemplateFunction, String)]) -> crate::Result {
    let sdk = config(aws).await;
    let names = super::sam::physical_names(aws)?;
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
    let names = super::sam::physical_names(aws)?;
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
        println!("\n{differ} function(s) do not match the local code: echoctl deploy updates them");
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

/// The string value of the secret `arn`.
pub async fn get_secret(aws: &AwsArgs, arn: &str) -> crate::Result<String> {
    let client = aws_sdk_secretsmanager::Client::new(&config(aws).await);
    let value = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| sdk_error("GetSecretValue", arn, &e))?;
    Ok(value.secret_string().unwrap_or("{}").to_owned())
}

/// Replaces the value of the secret `arn`.
pub async fn put_secret(aws: &AwsArgs, arn: &str, value: &str) -> crate::Result {
    let client = aws_sdk_secretsmanager::Client::new(&config(aws).await);
    client
        .put_secret_value()
        .secret_id(arn)
        .secret_string(value)
        .send()
        .await
        .map_err(|e| sdk_error("PutSecretValue", arn, &e))?;
    Ok(())
}
