//! Echo's AWS adapters: the core's ports implemented with the AWS SDK.
//!
//! - [`store`]: connections, subscriptions, history and associations in DynamoDB.
//! - [`gateway`]: posting to and closing connections through API Gateway's management API.
//! - [`invoker`]: running Echo functions with Lambda Invoke.
//! - [`keys`]: the apps' keys and trusted issuers, from Secrets Manager.
//! - [`jwks_fetch`]: fetching trusted issuers' published keys.
//! - [`dispatcher`]: handing committed messages to the fan-out Lambda.
//! - [`associations`]: associations read from DynamoDB, cached briefly per Lambda container.
//! - [`config`]: the typed configuration the Lambdas read from their environment.
//! - [`lambda`]: the set-up every Echo Lambda shares.
//! - [`metrics`]: CloudWatch Embedded Metric Format.
//! - [`signed`], [`sigv4`]: the management API's posts, signed and sent without the SDK's
//!   general pipeline.

pub mod associations;
pub mod config;
pub mod dispatcher;
pub mod gateway;
pub mod invoker;
pub mod jwks_fetch;
pub mod keys;
pub mod lambda;
pub mod metrics;
pub mod relay;
pub mod signed;
pub mod sigv4;
pub mod store;

pub use aws_sdk_dynamodb::Client as DynamoClient;
pub use aws_sdk_lambda::Client as LambdaClient;
