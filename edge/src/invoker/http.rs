//! Functions behind the Lambda Invoke API (`POST /2015-03-31/functions/{name}/invocations`), as
//! served by `cargo lambda watch` while a function is being developed.

use async_trait::async_trait;
use echo_core::function::{
    FunctionInput, FunctionInvoker, FunctionOutput, InvokeError, parse_output,
};
use serde_json::Value;

/// A Lambda Invoke API endpoint, such as `http://127.0.0.1:9000`.
#[derive(Debug, Clone)]
pub struct LambdaInvokeApi {
    endpoint: String,
    client: reqwest::Client,
}

impl LambdaInvokeApi {
    pub fn new(endpoint: &str) -> Self {
        Self {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            client: reqwest::Client::new(),
        }
    }
}

impl LambdaInvokeApi {
    /// Invokes `name` and returns its answer's body; a function error, an unknown function or
    /// a failed request is an error.
    async fn post(
        &self,
        name: &str,
        input: &impl serde::Serialize,
    ) -> Result<bytes::Bytes, InvokeError> {
        let url = format!("{}/2015-03-31/functions/{name}/invocations", self.endpoint);
        let response = self
            .client
            .post(&url)
            .json(input)
            .send()
            .await
            .map_err(|e| InvokeError::Transport(Box::new(e)))?;
        let status = response.status();
        let function_error = response.headers().contains_key("x-amz-function-error");
        let body = response
            .bytes()
            .await
            .map_err(|e| InvokeError::Transport(Box::new(e)))?;
        if function_error {
            return Err(InvokeError::Failed(
                String::from_utf8_lossy(&body).chars().take(500).collect(),
            ));
        }
        if status.as_u16() == 404 {
            return Err(InvokeError::Unknown(name.to_owned()));
        }
        if !status.is_success() {
            return Err(InvokeError::Failed(format!(
                "{url} answered {status}: {}",
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(300)
                    .collect::<String>()
            )));
        }
        Ok(body)
    }
}

#[async_trait]
impl FunctionInvoker for LambdaInvokeApi {
    async fn invoke(
        &self,
        name: &str,
        input: &FunctionInput,
    ) -> Result<FunctionOutput, InvokeError> {
        parse_output(&self.post(name, input).await?)
    }

    /// The invocation, its answer ignored but for a function error.
    async fn notify(&self, name: &str, input: &FunctionInput) -> Result<(), InvokeError> {
        self.post(name, input).await.map(|_| ())
    }

    async fn call(&self, name: &str, input: &Value) -> Result<Value, InvokeError> {
        let body = self.post(name, input).await?;
        serde_json::from_slice(&body).map_err(|e| InvokeError::InvalidOutput(e.to_string()))
    }

    fn knows(&self, _name: &str) -> bool {
        true
    }
}
