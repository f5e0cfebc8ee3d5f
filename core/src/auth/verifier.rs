//! Checks a token against the keys in force: the apps' keys, the instance secret and trusted
//! issuers' published keys.

use std::sync::Arc;

use async_trait::async_trait;

use super::claims::Claims;
use super::error::{AuthError, KeysError, WeakSecret};
use super::jwks::{Fetch, Jwks, NoFetch};
use super::keyring::{Keyring, Route};

/// Where the keys in force come from: a file the edge watches, a secret on AWS. Each call
/// returns what is in force now (implementations cache), so that a revoked key stops verifying
/// as soon as the source says so.
#[async_trait]
pub trait KeySource: Send + Sync {
    async fn keyring(&self) -> Result<Arc<Keyring>, KeysError>;
}

/// Keys that never change.
#[derive(Debug, Clone)]
pub struct StaticKeys(pub Arc<Keyring>);

#[async_trait]
impl KeySource for StaticKeys {
    async fn keyring(&self) -> Result<Arc<Keyring>, KeysError> {
        Ok(self.0.clone())
    }
}

#[derive(Clone)]
pub struct TokenVerifier {
    keys: Arc<dyn KeySource>,
    jwks: Arc<Jwks>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenVerifier { .. }")
    }
}

impl TokenVerifier {
    /// A verifier of the instance secret alone.
    pub fn new(secret: &[u8]) -> Result<Self, WeakSecret> {
        Ok(Self::with_keys(
            Arc::new(StaticKeys(Arc::new(Keyring::instance(secret)?))),
            Arc::new(Jwks::new(Arc::new(NoFetch))),
        ))
    }

    pub fn with_keys(keys: Arc<dyn KeySource>, jwks: Arc<Jwks>) -> Self {
        Self { keys, jwks }
    }

    /// A verifier of `keys`, fetching issuers' keys through `fetch`.
    pub fn of(keys: Arc<dyn KeySource>, fetch: Arc<dyn Fetch>) -> Self {
        Self::with_keys(keys, Arc::new(Jwks::new(fetch)))
    }

    /// Verifies signature, algorithm, key, expiry and claims at `now_secs`.
    pub async fn verify(&self, token: &str, now_secs: u64) -> Result<Claims, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        let keyring = self
            .keys
            .keyring()
            .await
            .map_err(|e| AuthError::Unavailable(e.to_string()))?;
        match keyring.route(token, now_secs)? {
            Route::Checked(claims) => Ok(claims),
            Route::Issuer { issuers, kid, alg } => {
                super::oidc::verify(&self.jwks, issuers, kid.as_deref(), alg, token, now_secs).await
            }
        }
    }
}
