//! Trusted issuers' published keys (JWKS), fetched once and kept.
//!
//! - The first token of an issuer fetches its keys (through its discovery document unless the
//!   issuer names `jwksUri`); after that, verifying needs no request.
//! - A token naming a `kid` the cached set lacks refetches it (the issuer rotated), but at most
//!   once per [`Jwks::min_refetch`] per issuer, and concurrent misses share one fetch: tokens with
//!   made-up `kid`s cannot make Echo hammer the issuer.
//! - A set older than [`MAX_AGE`] is refetched on its next use (so a key the issuer withdrew
//!   stops verifying); if that fails, the old set stays in use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use jsonwebtoken::jwk::{Jwk, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use tokio::time::Instant;

use super::error::AuthError;
use super::keys::TrustedIssuer;

/// How long a fetched key set is used before it is fetched again.
pub const MAX_AGE: Duration = Duration::from_secs(3600);
/// The fewest seconds between two fetches of one issuer's keys, by default.
pub const MIN_REFETCH: Duration = Duration::from_secs(30);
/// Largest discovery document or key set read, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// GETs a document over HTTP(S): the one port key fetching needs.
#[async_trait]
pub trait Fetch: Send + Sync {
    /// The body of a 200 answer (at most [`MAX_DOCUMENT_BYTES`]); anything else is an error.
    async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError>;
}

#[derive(Debug, thiserror::Error)]
#[error("GET {url}: {source}")]
pub struct FetchError {
    pub url: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// A fetcher for set-ups that trust no issuer: every fetch fails, saying so.
#[derive(Debug, Default)]
pub struct NoFetch;

#[async_trait]
impl Fetch for NoFetch {
    async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        Err(FetchError {
            url: url.to_owned(),
            source: "this process fetches no issuer keys".into(),
        })
    }
}

/// One verification key of an issuer.
#[derive(Clone)]
pub struct PublishedKey {
    pub key: DecodingKey,
    /// The algorithm the issuer declared for it, if any.
    pub alg: Option<Algorithm>,
}

/// An issuer's keys by `kid`.
type KeyMap = Arc<HashMap<String, PublishedKey>>;

#[derive(Default)]
struct IssuerKeys {
    /// The last set fetched, and when.
    keys: RwLock<Option<(Instant, KeyMap)>>,
    /// Held while fetching; the time of the last attempt.
    fetching: tokio::sync::Mutex<Option<Instant>>,
}

pub struct Jwks {
    fetch: Arc<dyn Fetch>,
    min_refetch: Duration,
    issuers: Mutex<HashMap<String, Arc<IssuerKeys>>>,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwks")
            .field("min_refetch", &self.min_refetch)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

#[derive(Deserialize)]
struct KeySetDocument {
    keys: Vec<serde_json::Value>,
}

impl Jwks {
    pub fn new(fetch: Arc<dyn Fetch>) -> Self {
        Self::with_min_refetch(fetch, MIN_REFETCH)
    }

    pub fn with_min_refetch(fetch: Arc<dyn Fetch>, min_refetch: Duration) -> Self {
        Self {
            fetch,
            min_refetch,
            issuers: Mutex::new(HashMap::new()),
        }
    }

    pub fn min_refetch(&self) -> Duration {
        self.min_refetch
    }

    fn entry(&self, issuer: &str) -> Arc<IssuerKeys> {
        let mut issuers = self
            .issuers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        issuers.entry(issuer.to_owned()).or_default().clone()
    }

    /// The issuer's key named `kid` (or its only key, when the token names none).
    pub async fn key(
        &self,
        issuer: &TrustedIssuer,
        kid: Option<&str>,
    ) -> Result<PublishedKey, AuthError> {
        let entry = self.entry(&issuer.issuer);
        let cached = |entry: &IssuerKeys| {
            let keys = entry
                .keys
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            keys.as_ref().map(|(at, keys)| (*at, keys.clone()))
        };
        if let Some((at, keys)) = cached(&entry)
            && at.elapsed() < MAX_AGE
            && let Some(key) = pick(&keys, kid)
        {
            return Ok(key);
        }
        let mut last = entry.fetching.lock().await;
        // Another verification may have fetched while this one waited.
        let now = Instant::now();
        let recent = last.is_some_and(|at| now.duration_since(at) < self.min_refetch);
        if recent {
            return match cached(&entry) {
                Some((_, keys)) => pick(&keys, kid).ok_or_else(|| unknown(issuer, kid)),
                None => Err(AuthError::Unavailable(format!(
                    "the keys of {} could not be fetched; retrying in at most {:?}",
                    issuer.issuer, self.min_refetch
                ))),
            };
        }
        *last = Some(now);
        match self.fetch_keys(issuer).await {
            Ok(keys) => {
                let keys = Arc::new(keys);
                *entry
                    .keys
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((now, keys.clone()));
                pick(&keys, kid).ok_or_else(|| unknown(issuer, kid))
            }
            Err(e) => {
                tracing::warn!(issuer = %issuer.issuer, error = %e, "could not fetch the issuer's keys");
                match cached(&entry).and_then(|(_, keys)| pick(&keys, kid)) {
                    Some(key) => Ok(key),
                    None => Err(AuthError::Unavailable(e)),
                }
            }
        }
    }

    async fn fetch_keys(
        &self,
        issuer: &TrustedIssuer,
    ) -> Result<HashMap<String, PublishedKey>, String> {
        let uri = match &issuer.jwks_uri {
            Some(uri) => uri.clone(),
            None => {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    issuer.issuer.trim_end_matches('/')
                );
                let body = self.fetch.get(&url).await.map_err(|e| e.to_string())?;
                let discovery: Discovery = serde_json::from_slice(&body)
                    .map_err(|e| format!("{url} is not a discovery document: {e}"))?;
                if discovery.issuer != issuer.issuer {
                    return Err(format!(
                        "{url} names issuer {:?}, not {:?}",
                        discovery.issuer, issuer.issuer
                    ));
                }
                discovery.jwks_uri
            }
        };
        let body = self.fetch.get(&uri).await.map_err(|e| e.to_string())?;
        let document: KeySetDocument = serde_json::from_slice(&body)
            .map_err(|e| format!("{uri} is not a JSON Web Key Set: {e}"))?;
        let mut keys = HashMap::new();
        for value in document.keys {
            // Keys Echo cannot use (encryption keys, other types) are skipped, not fatal.
            let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
                continue;
            };
            if jwk
                .common
                .public_key_use
                .as_ref()
                .is_some_and(|u| *u != jsonwebtoken::jwk::PublicKeyUse::Signature)
            {
                continue;
            }
            if matches!(
                jwk.algorithm,
                jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_)
            ) {
                continue;
            }
            let Ok(key) = DecodingKey::from_jwk(&jwk) else {
                continue;
            };
            let alg = jwk.common.key_algorithm.and_then(algorithm);
            let kid = jwk.common.key_id.clone().unwrap_or_default();
            keys.insert(kid, PublishedKey { key, alg });
        }
        Ok(keys)
    }
}

fn pick(keys: &HashMap<String, PublishedKey>, kid: Option<&str>) -> Option<PublishedKey> {
    match kid {
        Some(kid) => keys.get(kid).cloned(),
        None if keys.len() == 1 => keys.values().next().cloned(),
        None => None,
    }
}

fn unknown(issuer: &TrustedIssuer, kid: Option<&str>) -> AuthError {
    AuthError::Issuer {
        issuer: issuer.issuer.clone(),
        reason: match kid {
            Some(kid) => format!("it publishes no key {kid:?}"),
            None => "the token names no kid and the issuer publishes several keys".into(),
        },
    }
}

fn algorithm(alg: KeyAlgorithm) -> Option<Algorithm> {
    match alg {
        KeyAlgorithm::RS256 => Some(Algorithm::RS256),
        KeyAlgorithm::RS384 => Some(Algorithm::RS384),
        KeyAlgorithm::RS512 => Some(Algorithm::RS512),
        KeyAlgorithm::ES256 => Some(Algorithm::ES256),
        KeyAlgorithm::ES384 => Some(Algorithm::ES384),
        KeyAlgorithm::PS256 => Some(Algorithm::PS256),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::auth::keys::{ClaimMapping, KeyAlg};

    /// Serves a key set with one RSA key, `kid` "k1", counting requests.
    struct Counting(AtomicUsize);

    const N: &str = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";

    #[async_trait]
    impl Fetch for Counting {
        async fn get(&self, _url: &str) -> Result<Vec<u8>, FetchError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(serde_json::to_vec(&serde_json::json!({"keys": [
                {"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig", "n": N, "e": "AQAB"},
                {"kty": "RSA", "kid": "enc", "use": "enc", "n": N, "e": "AQAB"},
                {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            ]}))
            .unwrap_or_default())
        }
    }

    fn issuer() -> TrustedIssuer {
        TrustedIssuer {
            app: crate::channel::AppId::new("chat").unwrap(),
            issuer: "https://id.example.com".into(),
            audience: vec!["web".into()],
            jwks_uri: Some("https://id.example.com/jwks".into()),
            algorithms: vec![KeyAlg::RS256],
            claims: ClaimMapping::default(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn unknown_kids_refetch_at_most_once_per_interval() {
        let fetch = Arc::new(Counting(AtomicUsize::new(0)));
        let jwks = Arc::new(Jwks::new(fetch.clone()));
        let issuer = issuer();
        assert!(jwks.key(&issuer, Some("k1")).await.is_ok());
        assert_eq!(fetch.0.load(Ordering::SeqCst), 1);
        assert!(jwks.key(&issuer, Some("k1")).await.is_ok(), "cached");
        assert!(
            jwks.key(&issuer, None).await.is_ok(),
            "its only signing key"
        );
        assert_eq!(fetch.0.load(Ordering::SeqCst), 1);
        // Encryption and HMAC keys are never used to verify.
        assert!(jwks.key(&issuer, Some("enc")).await.is_err());
        assert!(jwks.key(&issuer, Some("hmac")).await.is_err());
        // Many made-up kids at once, within the interval: no fetch at all.
        let misses = (0..50).map(|i| {
            let (jwks, issuer) = (jwks.clone(), issuer.clone());
            tokio::spawn(async move { jwks.key(&issuer, Some(&format!("junk-{i}"))).await })
        });
        for miss in misses {
            assert!(miss.await.unwrap().is_err());
        }
        assert_eq!(fetch.0.load(Ordering::SeqCst), 1);
        // Past it, concurrent misses share one fetch.
        tokio::time::advance(MIN_REFETCH).await;
        let misses: Vec<_> = (0..50)
            .map(|i| {
                let (jwks, issuer) = (jwks.clone(), issuer.clone());
                tokio::spawn(async move { jwks.key(&issuer, Some(&format!("junk-{i}"))).await })
            })
            .collect();
        for miss in misses {
            assert!(miss.await.unwrap().is_err());
        }
        assert_eq!(fetch.0.load(Ordering::SeqCst), 2);
        // An old set is refetched on its next use.
        tokio::time::advance(MAX_AGE).await;
        assert!(jwks.key(&issuer, Some("k1")).await.is_ok());
        assert_eq!(fetch.0.load(Ordering::SeqCst), 3);
    }
}
