//! The key set in AWS Secrets Manager: one secret holding the JSON the edge keeps in
//! `keys.json` (plus `instanceSecret`), read by the handlers and cached per container.
//!
//! A container re-reads the secret when its copy is older than `ECHO_KEYS_CACHE_SECS`
//! (default 10): a key added or revoked with `echoctl keys --target aws` is in force everywhere
//! within that time. If a read fails, the last good set stays in force (logged); with none,
//! tokens are not judged (HTTP 503 at connect) rather than refused.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use echo_core::auth::{KeySet, KeySource, Keyring, KeysError};
use tokio::time::Instant;

pub struct SecretKeys {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
    /// `ECHO_JWT_SECRET`, when a stack still sets it: the instance secret, over the secret's.
    instance: Option<Vec<u8>>,
    ttl: Duration,
    cached: tokio::sync::Mutex<Option<(Instant, Arc<Keyring>)>>,
}

impl std::fmt::Debug for SecretKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretKeys")
            .field("secret_id", &self.secret_id)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl SecretKeys {
    pub fn new(
        client: aws_sdk_secretsmanager::Client,
        secret_id: String,
        instance: Option<Vec<u8>>,
        ttl: Duration,
    ) -> Self {
        Self {
            client,
            secret_id,
            instance,
            ttl,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    async fn read(&self) -> Result<Keyring, KeysError> {
        let value = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| KeysError::Read(Box::new(e)))?;
        let json = value.secret_string().unwrap_or("{}");
        Keyring::compile(&KeySet::parse(json.as_bytes())?, self.instance.as_deref())
    }
}

#[async_trait]
impl KeySource for SecretKeys {
    async fn keyring(&self) -> Result<Arc<Keyring>, KeysError> {
        let mut cached = self.cached.lock().await;
        if let Some((at, keyring)) = cached.as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(keyring.clone());
        }
        match self.read().await {
            Ok(keyring) => {
                let keyring = Arc::new(keyring);
                *cached = Some((Instant::now(), keyring.clone()));
                Ok(keyring)
            }
            Err(e) => match cached.as_mut() {
                Some((at, keyring)) => {
                    tracing::error!(secret = %self.secret_id, error = %e, "could not read the key set; the last good one stays in force");
                    // Try again after another full period, not at every token.
                    *at = Instant::now();
                    Ok(keyring.clone())
                }
                None => Err(e),
            },
        }
    }
}
