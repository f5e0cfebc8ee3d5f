//! The connect handler's [`Relay`] on AWS: what `onConnect` functions publish, handed to the
//! message handler Lambda as an asynchronous invocation (`{"relay":{...}}`), so `$connect` never
//! waits on the target channels' functions. Lambda delivers it at least once.

use async_trait::async_trait;
use aws_sdk_lambda::Client;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use echo_core::function::relay::{Relay, Relayed};
use serde::Serialize;

/// Invokes the message handler Lambda with `InvocationType::Event`.
#[derive(Debug, Clone)]
pub struct LambdaRelay {
    client: Client,
    function: String,
}

impl LambdaRelay {
    pub fn new(client: Client, function: impl Into<String>) -> Self {
        Self {
            client,
            function: function.into(),
        }
    }
}

#[derive(Serialize)]
struct RelayEvent<'a> {
    relay: &'a Relayed,
}

#[async_trait]
impl Relay for LambdaRelay {
    async fn relay(&self, relayed: Relayed) {
        let payload = match serde_json::to_vec(&RelayEvent { relay: &relayed }) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(app = %relayed.app, error = %e, "could not encode what onConnect functions published");
                return;
            }
        };
        let sent = self
            .client
            .invoke()
            .function_name(&self.function)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(payload))
            .send()
            .await;
        if let Err(e) = sent {
            tracing::error!(
                app = %relayed.app,
                connection_id = %relayed.origin,
                messages = relayed.publish.len(),
                error = %aws_sdk_lambda::error::DisplayErrorContext(&e),
                "could not hand what onConnect functions published to the message handler"
            );
        }
    }
}
