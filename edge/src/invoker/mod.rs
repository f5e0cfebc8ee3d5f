//! Running Echo functions: in-process, or over the Lambda Invoke API.

pub mod http;
pub mod in_process;

use async_trait::async_trait;
use echo_core::function::{FunctionInput, FunctionInvoker, FunctionOutput, InvokeError};

pub use http::LambdaInvokeApi;
pub use in_process::InProcess;

/// In-process functions first; any other name goes to the Lambda Invoke API when an endpoint is
/// configured (what `cargo lambda watch` serves), and is unknown otherwise.
pub struct Invoker {
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
        if self.local.knows(name) {
            return self.local.invoke(name, input).await;
        }
        match &self.remote {
            Some(remote) => remote.invoke(name, input).await,
            None => Err(InvokeError::Unknown(name.to_owned())),
        }
    }

    fn knows(&self, name: &str) -> bool {
        self.local.knows(name) || self.remote.is_some()
    }
}
