//! Echo functions as Lambdas, called with Lambda Invoke (request-response).

use async_trait::async_trait;
use aws_sdk_lambda::Client;
use aws_sdk_lambda::primitives::Blob;
use echo_core::function::reference::is_lambda_arn;
use echo_core::function::{
    FunctionInput, FunctionInvoker, FunctionOutput, InvokeError, parse_output,
};

/// Invokes `{prefix}{name}` for the function `name` of an associations document, and a Lambda
/// ARN as it is.
#[derive(Debug, Clone)]
pub struct LambdaInvoker {
    client: Client,
    prefix: String,
}

impl LambdaInvoker {
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        Self {
            client,
            prefix: prefix.into(),
        }
    }
}

/// An unknown function, or a failure to reach Lambda.
fn invoke_error(
    name: &str,
    e: aws_sdk_lambda::error::SdkError<aws_sdk_lambda::operation::invoke::InvokeError>,
) -> InvokeError {
    if e.as_service_error()
        .is_some_and(|s| s.is_resource_not_found_exception())
    {
        return InvokeError::Unknown(name.to_owned());
    }
    // An answer that is not Lambda's (an emulator's, which some answer a function's error with
    // a 500 and its payload): what it says, rather than "service error".
    if let Some(raw) = e.raw_response()
        && raw.status().is_server_error()
        && let Some(body) = raw.body().bytes().filter(|b| !b.is_empty())
    {
        return InvokeError::Failed(format!(
            "{}: {}",
            raw.status().as_u16(),
            String::from_utf8_lossy(body)
                .chars()
                .take(500)
                .collect::<String>()
        ));
    }
    InvokeError::Transport(Box::new(e))
}

/// A function's own error, as Lambda reports it: its kind and (the start of) its payload.
fn failed(kind: &str, body: &[u8]) -> InvokeError {
    InvokeError::Failed(format!(
        "{kind}: {}",
        String::from_utf8_lossy(body)
            .chars()
            .take(500)
            .collect::<String>()
    ))
}

impl LambdaInvoker {
    /// The Lambda that runs `function`.
    fn lambda(&self, function: &str) -> String {
        if is_lambda_arn(function) {
            function.to_owned()
        } else {
            format!("{}{function}", self.prefix)
        }
    }
}

impl LambdaInvoker {
    /// Invokes `name` with `input` and waits for its answer's payload; a function error is a
    /// failure.
    async fn request(
        &self,
        name: &str,
        input: &impl serde::Serialize,
    ) -> Result<Vec<u8>, InvokeError> {
        let payload = serde_json::to_vec(input).map_err(|e| InvokeError::Transport(Box::new(e)))?;
        let out = self
            .client
            .invoke()
            .function_name(self.lambda(name))
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|e| invoke_error(name, e))?;
        let body = out.payload().map(|b| b.as_ref()).unwrap_or_default();
        if let Some(kind) = out.function_error() {
            return Err(failed(kind, body));
        }
        Ok(body.to_vec())
    }

    /// An asynchronous invocation (`Event`): it returns once Lambda has queued it. Lambda retries
    /// a failed one (twice by default), so the function may see its input more than once.
    async fn event(&self, name: &str, input: &impl serde::Serialize) -> Result<(), InvokeError> {
        let payload = serde_json::to_vec(input).map_err(|e| InvokeError::Transport(Box::new(e)))?;
        self.client
            .invoke()
            .function_name(self.lambda(name))
            .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|e| invoke_error(name, e))?;
        Ok(())
    }
}

#[async_trait]
impl FunctionInvoker for LambdaInvoker {
    async fn invoke(
        &self,
        name: &str,
        input: &FunctionInput,
    ) -> Result<FunctionOutput, InvokeError> {
        parse_output(&self.request(name, input).await?)
    }

    /// An asynchronous invocation (`Event`).
    async fn notify(&self, name: &str, input: &FunctionInput) -> Result<(), InvokeError> {
        self.event(name, input).await
    }

    async fn call(
        &self,
        name: &str,
        input: &serde_json::Value,
    ) -> Result<serde_json::Value, InvokeError> {
        let body = self.request(name, input).await?;
        serde_json::from_slice(&body).map_err(|e| InvokeError::InvalidOutput(e.to_string()))
    }

    /// An asynchronous invocation (`Event`), as [`notify`](FunctionInvoker::notify).
    async fn notify_call(&self, name: &str, input: &serde_json::Value) -> Result<(), InvokeError> {
        self.event(name, input).await
    }

    /// Deployed functions are not listed up front; an unknown one fails at invocation.
    fn knows(&self, _name: &str) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_take_the_stack_prefix_and_arns_stay_as_they_are() {
        let config = aws_sdk_lambda::Config::builder()
            .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
            .build();
        let invoker = LambdaInvoker::new(Client::from_conf(config), "echo-");
        assert_eq!(invoker.lambda("angry"), "echo-angry");
        let arn = "arn:aws:lambda:eu-west-1:123456789012:function:geo:live";
        assert_eq!(invoker.lambda(arn), arn);
    }
}
