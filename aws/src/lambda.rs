//! What every Echo Lambda does before serving: JSON logs, typed config, AWS clients, the store.

use std::sync::Arc;

use crate::config::{Config, ConfigError};
use crate::store::dynamodb::DynamoStore;

/// A Lambda's shared resources, built once per container.
pub struct Resources {
    pub config: Config,
    pub sdk: aws_config::SdkConfig,
    pub store: Arc<DynamoStore>,
}

impl Resources {
    /// Sets up logging, reads the configuration (failing on a missing or bad variable, or on any
    /// of `required` being unset) and builds the clients.
    pub async fn load(required: &[&'static str]) -> Result<Self, ConfigError> {
        tracing_subscriber::fmt()
            .json()
            .with_target(false)
            .without_time()
            .init();
        let config = Config::from_env()?;
        config.require(required)?;
        let sdk = Config::sdk().await;
        let store = Arc::new(DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            config.tables(),
        ));
        Ok(Self { config, sdk, store })
    }

    pub fn lambda(&self) -> aws_sdk_lambda::Client {
        aws_sdk_lambda::Client::new(&self.sdk)
    }
}
