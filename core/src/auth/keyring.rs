//! The key set compiled for verification: keys parsed once, found by `kid`.
//!
//! Which key checks a token:
//! - its `iss` names a trusted issuer: that issuer's published keys ([`super::oidc`]);
//! - else its `kid` names one of the apps' keys: that key, with its pinned algorithm, and only
//!   for the app that owns it;
//! - else (no `kid`) the instance secret, for apps with no keys or issuers of their own.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::claims::{Claims, LEEWAY_SECS, check_sub};
use super::error::{AuthError, KeysError, MIN_SECRET_LEN, WeakSecret};
use super::keys::{KeySet, TrustedIssuer};
use crate::channel::AppId;

pub struct Keyring {
    /// Verifies tokens without a `kid`, for apps that own no keys: how a single-app set-up (and
    /// dev mode) works without a key set.
    instance: Option<DecodingKey>,
    keys: HashMap<String, Key>,
    /// Apps with keys or issuers of their own: the instance secret does not speak for them.
    owned: HashSet<AppId>,
    issuers: HashMap<String, Vec<Arc<TrustedIssuer>>>,
}

struct Key {
    app: AppId,
    alg: Algorithm,
    key: DecodingKey,
    revoked: bool,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("instance", &self.instance.is_some())
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .field("issuers", &self.issuers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Which way a token is checked.
pub(crate) enum Route<'a> {
    Issuer {
        issuers: &'a [Arc<TrustedIssuer>],
        kid: Option<String>,
        alg: Algorithm,
    },
    Checked(Claims),
}

#[derive(Deserialize)]
struct Peek {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    app: Option<serde_json::Value>,
}

impl Keyring {
    /// A keyring of the instance secret alone.
    pub fn instance(secret: &[u8]) -> Result<Self, WeakSecret> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(WeakSecret(secret.len()));
        }
        Ok(Self {
            instance: Some(DecodingKey::from_secret(secret)),
            keys: HashMap::new(),
            owned: HashSet::new(),
            issuers: HashMap::new(),
        })
    }

    /// Parses every key of `set` (a key that does not parse refuses the whole set, naming it).
    /// `instance`, when given, is the instance secret, else the set's own `instanceSecret`.
    pub fn compile(set: &KeySet, instance: Option<&[u8]>) -> Result<Self, KeysError> {
        set.check()?;
        let instance = instance.or(set.instance_secret.as_deref().map(str::as_bytes));
        if let Some(secret) = instance
            && secret.len() < MIN_SECRET_LEN
        {
            return Err(KeysError::invalid(
                "the instance secret",
                WeakSecret(secret.len()).to_string(),
            ));
        }
        let mut keys = HashMap::new();
        for k in &set.keys {
            let place = || format!("key {:?}", k.kid);
            let key = match (&k.secret, &k.public_key) {
                (Some(secret), _) => DecodingKey::from_secret(secret.as_bytes()),
                (None, Some(pem)) => match k.alg {
                    super::keys::KeyAlg::ES256 => DecodingKey::from_ec_pem(pem.as_bytes()),
                    _ => DecodingKey::from_rsa_pem(pem.as_bytes()),
                }
                .map_err(|e| {
                    KeysError::invalid(place(), format!("publicKey is not an {} PEM: {e}", k.alg))
                })?,
                (None, None) => return Err(KeysError::invalid(place(), "no key material")),
            };
            keys.insert(
                k.kid.clone(),
                Key {
                    app: k.app.clone(),
                    alg: k.alg.algorithm(),
                    key,
                    revoked: k.revoked.is_some(),
                },
            );
        }
        let mut issuers: HashMap<String, Vec<Arc<TrustedIssuer>>> = HashMap::new();
        for issuer in &set.issuers {
            issuers
                .entry(issuer.issuer.clone())
                .or_default()
                .push(Arc::new(issuer.clone()));
        }
        Ok(Self {
            instance: instance.map(DecodingKey::from_secret),
            keys,
            owned: set
                .keys
                .iter()
                .map(|k| k.app.clone())
                .chain(set.issuers.iter().map(|i| i.app.clone()))
                .collect(),
            issuers,
        })
    }

    /// Whether any issuer is trusted (then verifying may need their published keys).
    pub fn has_issuers(&self) -> bool {
        !self.issuers.is_empty()
    }

    /// Verifies a token signed with an Echo key, at `now_secs`; a trusted issuer's token is
    /// refused here (it needs the issuer's published keys: [`super::TokenVerifier`]).
    pub fn verify(&self, token: &str, now_secs: u64) -> Result<Claims, AuthError> {
        match self.route(token, now_secs)? {
            Route::Checked(claims) => Ok(claims),
            Route::Issuer { issuers, .. } => Err(AuthError::Unavailable(format!(
                "tokens of {} need its published keys",
                issuers[0].issuer
            ))),
        }
    }

    pub(crate) fn route(&self, token: &str, now_secs: u64) -> Result<Route<'_>, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        let peek = jsonwebtoken::dangerous::insecure_decode::<Peek>(token).map_err(|e| match e
            .kind()
        {
            jsonwebtoken::errors::ErrorKind::Json(_) => AuthError::BadClaims(e.to_string()),
            _ => AuthError::Invalid(e),
        })?;
        let header = peek.header;
        if let Some(issuers) = peek
            .claims
            .iss
            .as_ref()
            .and_then(|iss| self.issuers.get(iss))
        {
            return Ok(Route::Issuer {
                issuers,
                kid: header.kid,
                alg: header.alg,
            });
        }
        let app = peek
            .claims
            .app
            .as_ref()
            .and_then(|a| a.as_str())
            .unwrap_or("");
        let (key, alg) = match &header.kid {
            Some(kid) => {
                let key = self
                    .keys
                    .get(kid)
                    .ok_or_else(|| AuthError::UnknownKey(kid.clone()))?;
                if key.revoked {
                    return Err(AuthError::Revoked(kid.clone()));
                }
                if key.app.as_str() != app {
                    return Err(AuthError::WrongApp {
                        kid: kid.clone(),
                        owner: key.app.clone(),
                        app: app.to_owned(),
                    });
                }
                (&key.key, key.alg)
            }
            None => {
                if let Some(owner) = self.owned.iter().find(|a| a.as_str() == app) {
                    return Err(AuthError::KidRequired(owner.clone()));
                }
                let key = self.instance.as_ref().ok_or(AuthError::NoInstanceKey)?;
                (key, Algorithm::HS256)
            }
        };
        let claims = decode::<Claims>(token, key, alg)?;
        check_times(claims.exp, claims.nbf, now_secs)?;
        check_sub(&claims.sub).map_err(AuthError::BadClaims)?;
        Ok(Route::Checked(claims))
    }
}

/// Decodes a token whose signature must verify with `key` under `alg` alone (a header naming
/// another algorithm is refused); times are checked by the caller against Echo's clock.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    token: &str,
    key: &DecodingKey,
    alg: Algorithm,
) -> Result<T, AuthError> {
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.required_spec_claims.clear();
    validation.validate_aud = false;
    jsonwebtoken::decode::<T>(token, key, &validation)
        .map(|data| data.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::Json(_) => AuthError::BadClaims(e.to_string()),
            _ => AuthError::Invalid(e),
        })
}

/// `exp` (required) and `nbf`, with [`LEEWAY_SECS`] of tolerance for clock skew.
pub(crate) fn check_times(exp: u64, nbf: Option<u64>, now_secs: u64) -> Result<(), AuthError> {
    if exp + LEEWAY_SECS <= now_secs {
        return Err(AuthError::Expired);
    }
    if let Some(nbf) = nbf
        && nbf > now_secs + LEEWAY_SECS
    {
        return Err(AuthError::NotYetValid);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::TokenIssuer;
    use crate::auth::keys::{AppKey, KeyAlg};

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const APP_SECRET: &str = "app-secret-app-secret-app-secret-app";

    fn claims(app: &str, exp: u64) -> Claims {
        Claims::new(AppId::new(app).unwrap(), "alice", exp)
    }

    fn keyring() -> Keyring {
        let set = KeySet {
            instance_secret: None,
            keys: vec![AppKey {
                kid: "k".into(),
                app: AppId::new("owned").unwrap(),
                alg: KeyAlg::HS256,
                secret: Some(APP_SECRET.into()),
                public_key: None,
                created: 0,
                revoked: None,
            }],
            issuers: vec![],
        };
        Keyring::compile(&set, Some(SECRET)).unwrap()
    }

    #[test]
    fn round_trip_and_expiry() {
        let keyring = keyring();
        let token = TokenIssuer::new(SECRET)
            .unwrap()
            .issue(&claims("chat", 1000))
            .unwrap();
        assert_eq!(keyring.verify(&token, 900).unwrap(), claims("chat", 1000));
        assert!(matches!(
            keyring.verify(&token, 1006),
            Err(AuthError::Expired)
        ));
        let owned = TokenIssuer::with_kid(APP_SECRET.as_bytes(), "k")
            .unwrap()
            .issue(&claims("owned", 1000))
            .unwrap();
        assert_eq!(keyring.verify(&owned, 900).unwrap().app.as_str(), "owned");
    }

    #[test]
    fn refuses_other_secrets_algorithms_and_garbage() {
        let keyring = keyring();
        let other = TokenIssuer::new(&[7u8; 32]).unwrap();
        let token = other.issue(&claims("chat", 1000)).unwrap();
        assert!(matches!(
            keyring.verify(&token, 0),
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(
            keyring.verify("garbage", 0),
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(keyring.verify("", 0), Err(AuthError::Missing)));
        let none = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS256),
            &claims("chat", 99_999_999_999),
            &jsonwebtoken::EncodingKey::from_secret(SECRET),
        )
        .unwrap()
        .split('.')
        .skip(1)
        .take(1)
        .map(|payload| format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}."))
        .collect::<String>();
        assert!(keyring.verify(&none, 0).is_err(), "alg: none");
        // The instance secret does not speak for an app with keys; a key not for another app.
        let instance = TokenIssuer::new(SECRET).unwrap();
        assert!(matches!(
            keyring.verify(&instance.issue(&claims("owned", 1000)).unwrap(), 0),
            Err(AuthError::KidRequired(_))
        ));
        let app_key = TokenIssuer::with_kid(APP_SECRET.as_bytes(), "k").unwrap();
        assert!(matches!(
            keyring.verify(&app_key.issue(&claims("chat", 1000)).unwrap(), 0),
            Err(AuthError::WrongApp { .. })
        ));
        assert!(Keyring::instance(b"short").is_err());
        let sub = Claims {
            sub: "$echo".into(),
            ..claims("chat", 1000)
        };
        assert!(matches!(
            keyring.verify(&instance.issue(&sub).unwrap(), 0),
            Err(AuthError::BadClaims(_))
        ));
    }
}
