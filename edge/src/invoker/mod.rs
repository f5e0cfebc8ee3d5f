//! Running Echo functions: in-process, or over the Lambda Invoke API.

pub mod http;
pub mod in_process;

use std::collections::HashMap;

use async_trait::async_trait;
use echo_core::function::reference::lambda_arn_name;
use echo_core::function::{FunctionInput, FunctionInvoker, FunctionOutput, InvokeError};
use serde_json::Value;

pub use http::LambdaInvokeApi;
pub use in_process::InProcess;

/// A Lambda ARN in an association stands for the function of its name part. Functions with an
/// endpoint of their own first (a project's JavaScript functions, which
/// echoctl serves), then in-process functions; any other name goes to the Lambda Invoke API when
/// an endpoint is configured (what `cargo lambda watch` serves), and is unknown otherwise.
pub struct Invoker {
    pub routes: HashMap<String, LambdaInvokeApi>,
    pub local: InProcess,
    pub remote: Option<LambdaInvokeApi>,
}

#[async_trait]
impl FunctionInvoker for Invoker {
    async fn invoke(
        &self,
        name: &str,
        input: &FunctionInput,
    ) -> Result<FunctionOutput, InvokeError> {
        // A Lambda ARN runs, here, the function of its name.
        let name = lambda_arn_name(name).unwrap_or(name);
        if let Some(route) = self.routes.get(name) {
            return route.invoke(name, input).await;
        }
        if self.local.knows(name) {
            return self.local.invoke(name, input).await;
        }
        match &self.remote {
            Some(remote) => remote.invoke(name, input).await,
            None => Err(InvokeError::Unknown(name.to_owned())),
        }
    }

    async fn notify(&self, name: &str, input: &FunctionInput) -> Result<(), InvokeError> {
        let name = lambda_arn_name(name).unwrap_or(name);
        if let Some(route) = self.routes.get(name) {
            return route.notify(name, input).await;
        }
        if self.local.knows(name) {
            return self.local.notify(name, input).await;
        }
        match &self.remote {
            Some(remote) => remote.notify(name, input).await,
            None => Err(InvokeError::Unknown(name.to_owned())),
        }
    }

    async fn call(&self, name: &str, input: &Value) -> Result<Value, InvokeError> {
        let name = lambda_arn_name(name).unwrap_or(name);
        if let Some(route) = self.routes.get(name) {
            return route.call(name, input).await;
        }
        if self.local.knows(name) {
            return self.local.call(name, input).await;
        }
        match &self.remote {
            Some(remote) => remote.call(name, input).await,
            None => Err(InvokeError::Unknown(name.to_owned())),
        }
    }

    fn knows(&self, name: &str) -> bool {
        let name = lambda_arn_name(name).unwrap_or(name);
        self.routes.contains_key(name) || self.local.knows(name) || self.remote.is_some()
    }
}
