//! Echo functions as Lambdas, called with Lambda Invoke (request-response).

use async_trait::async_trait;
use aws_sdk_lambda::Client;
use aws_sdk_lambda::primitives::Blob;
use echo_core::function::{
    FunctionInput, FunctionInvoker, FunctionOutput, InvokeError, parse_output,
};

/// Invokes `{prefix}{name}` for the function `name` of an associations document.
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

#[async_trait]
impl FunctionInvoker for LambdaInvoker {
    async fn invoke(
        &self,
        name: &str,
        input: &FunctionInput,
    ) -> Result<FunctionOutput, InvokeError> {
        let payload = serde_json::to_vec(input).map_err(|e| InvokeError::Transport(Box::new(e)))?;
        let out = self
            .client
            .invoke()
            .function_name(format!("{}{name}", self.prefix))
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception())
                {
                    InvokeError::Unknown(name.to_owned())
                } else {
                    InvokeError::Transport(Box::new(e))
                }
            })?;
        let body = out.payload().map(|b| b.as_ref()).unwrap_or_default();
        if let Some(kind) = out.function_error() {
            return Err(InvokeError::Failed(format!(
                "{kind}: {}",
                String::from_utf8_lossy(body)
                    .chars()
                    .take(500)
                    .collect::<String>()
            )));
        }
        parse_output(body)
    }

    /// Deployed functions are not listed up front; an unknown one fails at invocation.
    fn knows(&self, _name: &str) -> bool {
        true
    }
}
