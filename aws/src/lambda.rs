//! What every Echo Lambda does before serving: JSON logs, typed config, AWS clients, the store.

use std::sync::Arc;

use echo_core::auth::{TokenVerifier, WeakSecret};

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

    /// Verifies tokens with the key set in `ECHO_KEYS_SECRET` (and `ECHO_JWT_SECRET`, when
    /// set), or with `ECHO_JWT_SECRET` alone; trusted issuers' keys are fetched over HTTPS.
    pub fn verifier(&self) -> Result<TokenVerifier, WeakSecret> {
        let instance = (!self.config.jwt_secret.is_empty())
            .then(|| self.config.jwt_secret.clone().into_bytes());
        if self.config.keys_secret.is_empty() {
            return TokenVerifier::new(instance.as_deref().unwrap_or_default());
        }
        if let Some(secret) = &instance
            && secret.len() < echo_core::auth::MIN_SECRET_LEN
        {
            return Err(WeakSecret(secret.len()));
        }
        let keys = crate::keys::SecretKeys::new(
            aws_sdk_secretsmanager::Client::new(&self.sdk),
            self.config.keys_secret.clone(),
            instance,
            self.config.keys_cache,
        );
        Ok(TokenVerifier::of(
            Arc::new(keys),
            Arc::new(crate::jwks_fetch::HttpsFetch::new()),
        ))
    }
}
