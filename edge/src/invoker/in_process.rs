//! Functions compiled into the edge. Each invocation runs as its own task, so a function that
//! panics fails only that invocation, and one that overruns its timeout is aborted.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use echo_core::function::{
    FunctionError, FunctionInput, FunctionInvoker, FunctionOutput, InvokeError,
};
use serde_json::Value;
use tokio_util::task::AbortOnDropHandle;

type BoxFuture = Pin<Box<dyn Future<Output = Result<FunctionOutput, FunctionError>> + Send>>;
type Function = Arc<dyn Fn(FunctionInput) -> BoxFuture + Send + Sync>;
type HookFuture = Pin<Box<dyn Future<Output = Result<Value, FunctionError>> + Send>>;
type Hook = Arc<dyn Fn(Value) -> HookFuture + Send + Sync>;

/// A registry of in-process functions: message functions, and hook functions (any JSON in and
/// out, see [`echo_core::hook`]).
#[derive(Default, Clone)]
pub struct InProcess {
    functions: HashMap<String, Function>,
    hooks: HashMap<String, Hook>,
}

impl InProcess {
    pub fn register_sync(
        &mut self,
        name: &str,
        f: fn(FunctionInput) -> Result<FunctionOutput, FunctionError>,
    ) {
        self.register(name, move |input| async move { f(input) });
    }

    pub fn register<F, Fut>(&mut self, name: &str, f: F)
    where
        F: Fn(FunctionInput) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<FunctionOutput, FunctionError>> + Send + 'static,
    {
        self.functions
            .insert(name.to_owned(), Arc::new(move |input| Box::pin(f(input))));
    }

    /// Registers a hook function.
    pub fn register_hook<F, Fut>(&mut self, name: &str, f: F)
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, FunctionError>> + Send + 'static,
    {
        self.hooks
            .insert(name.to_owned(), Arc::new(move |input| Box::pin(f(input))));
    }

    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .functions
            .keys()
            .chain(self.hooks.keys())
            .cloned()
            .collect();
        names.sort();
        names
    }
}

#[async_trait]
impl FunctionInvoker for InProcess {
    async fn invoke(
        &self,
        name: &str,
        input: &FunctionInput,
    ) -> Result<FunctionOutput, InvokeError> {
        let Some(f) = self.functions.get(name) else {
            return Err(InvokeError::Unknown(name.to_owned()));
        };
        own_task(f(input.clone())).await
    }

    async fn call(&self, name: &str, input: &Value) -> Result<Value, InvokeError> {
        let Some(f) = self.hooks.get(name) else {
            return Err(InvokeError::Unknown(name.to_owned()));
        };
        own_task(f(input.clone())).await
    }

    fn knows(&self, name: &str) -> bool {
        self.functions.contains_key(name) || self.hooks.contains_key(name)
    }
}

/// Runs a function's invocation as a task of its own: a panic fails only it, and it is aborted
/// when its caller stops waiting (a timeout).
async fn own_task<T: Send + 'static>(
    run: Pin<Box<dyn Future<Output = Result<T, FunctionError>> + Send>>,
) -> Result<T, InvokeError> {
    match AbortOnDropHandle::new(tokio::spawn(run)).await {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(e)) => Err(InvokeError::Failed(e.0)),
        Err(e) if e.is_panic() => Err(InvokeError::Failed("function panicked".to_owned())),
        Err(e) => Err(InvokeError::Failed(e.to_string())),
    }
}
