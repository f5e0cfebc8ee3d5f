//! Handing committed messages to the fan-out Lambda, asynchronously.

use async_trait::async_trait;
use aws_sdk_lambda::Client;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use echo_core::channel::ChannelKey;
use echo_core::message::StoredMessage;
use echo_core::publish::{DispatchError, Dispatcher};
use serde::{Deserialize, Serialize};

/// The fan-out Lambda's payload: one message for one channel. Without `connections`, the
/// invocation reads the channel's subscribers and splits them into batches, handing every batch
/// but the first to further invocations; with `connections`, it delivers to exactly those.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FanoutEvent {
    /// `app/channel`.
    pub channel: String,
    pub message: StoredMessage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<Vec<echo_core::ids::ConnectionId>>,
}

/// Invokes the fan-out Lambda with `InvocationType::Event`. Lambda may deliver an event more than
/// once; subscribers de-duplicate by `seq`.
#[derive(Debug, Clone)]
pub struct LambdaFanout {
    client: Client,
    function: String,
}

impl LambdaFanout {
    pub fn new(client: Client, function: impl Into<String>) -> Self {
        Self {
            client,
            function: function.into(),
        }
    }

    pub async fn send(&self, event: &FanoutEvent) -> Result<(), DispatchError> {
        let payload = serde_json::to_vec(event).map_err(|e| DispatchError(Box::new(e)))?;
        self.client
            .invoke()
            .function_name(&self.function)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|e| DispatchError(Box::new(e)))?;
        Ok(())
    }
}

#[async_trait]
impl Dispatcher for LambdaFanout {
    async fn dispatch(
        &self,
        key: &ChannelKey,
        message: &StoredMessage,
    ) -> Result<(), DispatchError> {
        self.send(&FanoutEvent {
            channel: key.encode(),
            message: message.clone(),
            connections: None,
        })
        .await
    }
}
