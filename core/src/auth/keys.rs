//! The key set: each app's signing keys and the OIDC issuers it trusts, as one JSON document
//! (the edge's `keys.json`, the secret the Lambdas read on AWS).
//!
//! ```json
//! {"keys": [{"kid": "chat-2026-12", "app": "chat", "alg": "HS256", "secret": "…", "created": 1796600000},
//!           {"kid": "chat-rs", "app": "chat", "alg": "RS256", "publicKey": "-----BEGIN PUBLIC KEY-----…"}],
//!  "issuers": [{"app": "chat", "issuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc",
//!               "audience": ["4f1c…"], "claims": {"permissions": "custom:channels"}}]}
//! ```
//!
//! A key's `alg` is pinned: a token verifies with it only when its header names that algorithm.
//! A revoked key (`revoked`: when, seconds since the epoch) stays listed so that its tokens are
//! refused by name.

use serde::{Deserialize, Serialize};

use super::claims::Permissions;
use super::error::{KeysError, MIN_SECRET_LEN};
use crate::channel::AppId;

/// Most keys one app may have, revoked ones included.
pub const MAX_KEYS_PER_APP: usize = 20;
/// Most OIDC issuers one app may trust.
pub const MAX_ISSUERS_PER_APP: usize = 5;
/// Longest key id, in bytes.
pub const MAX_KID_LEN: usize = 128;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeySet {
    /// The instance secret, where the set is all the keys there are (the AWS secret): it
    /// verifies tokens without a `kid` of apps with no keys of their own. Locally it is
    /// `ECHO_JWT_SECRET` or the dev secret instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<AppKey>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issuers: Vec<TrustedIssuer>,
}

/// The algorithms Echo verifies. Each key is pinned to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyAlg {
    /// HMAC with SHA-256: a shared secret; Echo can sign with it too.
    HS256,
    /// RSA PKCS#1 v1.5 with SHA-256: Echo holds the public key only.
    RS256,
    /// ECDSA P-256 with SHA-256: Echo holds the public key only.
    ES256,
}

impl KeyAlg {
    pub fn algorithm(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::HS256 => jsonwebtoken::Algorithm::HS256,
            Self::RS256 => jsonwebtoken::Algorithm::RS256,
            Self::ES256 => jsonwebtoken::Algorithm::ES256,
        }
    }

    pub fn is_public(self) -> bool {
        self != Self::HS256
    }
}

impl std::fmt::Display for KeyAlg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::str::FromStr for KeyAlg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_uppercase().as_str() {
            "HS256" => Ok(Self::HS256),
            "RS256" => Ok(Self::RS256),
            "ES256" => Ok(Self::ES256),
            _ => Err(format!("unknown algorithm {s:?}: HS256, RS256 or ES256")),
        }
    }
}

/// One signing key of one app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppKey {
    /// Carried as the token's `kid` header: how a token names the key it was signed with.
    pub kid: String,
    pub app: AppId,
    pub alg: KeyAlg,
    /// HS256 only: the shared secret (its UTF-8 bytes are the HMAC key), at least 32 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// RS256 and ES256 only: the public key, PEM (`-----BEGIN PUBLIC KEY-----`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// When it was added, seconds since the epoch.
    #[serde(default)]
    pub created: u64,
    /// When it was revoked, seconds since the epoch; a revoked key verifies nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<u64>,
}

/// An OIDC issuer whose tokens connect to one app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrustedIssuer {
    pub app: AppId,
    /// Compared exactly with the token's `iss`; its discovery document is at
    /// `{issuer}/.well-known/openid-configuration` unless `jwksUri` is given.
    pub issuer: String,
    /// Accepted audiences: one must be in the token's `aud`, or (tokens without `aud`, as
    /// Cognito's access tokens) equal its `client_id`.
    pub audience: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// The algorithms the issuer's keys may use (default RS256); never HS256.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<KeyAlg>,
    #[serde(default)]
    pub claims: ClaimMapping,
}

fn default_algorithms() -> Vec<KeyAlg> {
    vec![KeyAlg::RS256]
}

/// Where an issuer's token keeps what Echo's claims say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClaimMapping {
    /// The user id (default `sub`).
    #[serde(default = "default_sub")]
    pub sub: ClaimPath,
    /// The channel permissions, in the shape of an Echo token's `channels` (an object, or a
    /// string holding its JSON, as Cognito's custom attributes are). When it is set and the
    /// token lacks it, `defaultPermissions` apply, or the token is refused if there are none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<ClaimPath>,
    /// The permissions of tokens that carry none; without it, such a token has no channel
    /// limits (as an Echo token without `channels`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_permissions: Option<Permissions>,
    /// The token is an admin's when this claim is, or (a list) contains, `value`; for example
    /// `{"claim": "cognito:groups", "value": "echo-admins"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<AdminRule>,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        Self {
            sub: default_sub(),
            permissions: None,
            default_permissions: None,
            admin: None,
        }
    }
}

fn default_sub() -> ClaimPath {
    ClaimPath::Name("sub".into())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminRule {
    pub claim: ClaimPath,
    pub value: String,
}

/// A claim: its name at the top level (`"custom:channels"`, `"https://example.com/echo"`), or a
/// path of names into nested objects (`["https://example.com/echo", "channels"]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ClaimPath {
    Name(String),
    Path(Vec<String>),
}

impl ClaimPath {
    pub fn find<'a>(&self, claims: &'a serde_json::Value) -> Option<&'a serde_json::Value> {
        match self {
            Self::Name(name) => claims.get(name),
            Self::Path(path) => path.iter().try_fold(claims, |v, name| v.get(name)),
        }
    }
}

impl std::fmt::Display for ClaimPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Name(name) => write!(f, "{name:?}"),
            Self::Path(path) => write!(f, "{path:?}"),
        }
    }
}

impl KeySet {
    pub fn parse(json: &[u8]) -> Result<Self, KeysError> {
        let set: Self = serde_json::from_slice(json)?;
        set.check()?;
        Ok(set)
    }

    /// The app's keys that verify tokens.
    pub fn active(&self, app: &AppId) -> impl Iterator<Item = &AppKey> {
        self.keys
            .iter()
            .filter(move |k| &k.app == app && k.revoked.is_none())
    }

    /// Whether the app has keys or issuers of its own (then the instance secret does not
    /// admit its tokens).
    pub fn owns(&self, app: &AppId) -> bool {
        self.keys.iter().any(|k| &k.app == app) || self.issuers.iter().any(|i| &i.app == app)
    }

    /// The app's newest HS256 key that is not revoked: the one Echo signs with.
    pub fn signing_key(&self, app: &AppId) -> Option<&AppKey> {
        self.active(app)
            .filter(|k| k.alg == KeyAlg::HS256)
            .max_by_key(|k| k.created)
    }

    /// Everything wrong with the set that can be found without parsing the keys themselves
    /// ([`super::keyring::Keyring::compile`] parses them).
    pub fn check(&self) -> Result<(), KeysError> {
        if let Some(secret) = &self.instance_secret
            && secret.len() < MIN_SECRET_LEN
        {
            return Err(KeysError::invalid(
                "instanceSecret",
                format!(
                    "must be at least {MIN_SECRET_LEN} bytes, got {}",
                    secret.len()
                ),
            ));
        }
        let mut kids = std::collections::HashSet::new();
        let mut per_app = std::collections::HashMap::<&AppId, usize>::new();
        for key in &self.keys {
            let place = format!("key {:?}", key.kid);
            check_kid(&key.kid).map_err(|r| KeysError::invalid(&place, r))?;
            if !kids.insert(key.kid.as_str()) {
                return Err(KeysError::invalid(place, "another key has this kid"));
            }
            let count = per_app.entry(&key.app).or_default();
            *count += 1;
            if *count > MAX_KEYS_PER_APP {
                return Err(KeysError::invalid(
                    place,
                    format!("app {} has more than {MAX_KEYS_PER_APP} keys", key.app),
                ));
            }
            match (key.alg, &key.secret, &key.public_key) {
                (KeyAlg::HS256, Some(secret), None) if secret.len() >= MIN_SECRET_LEN => {}
                (KeyAlg::HS256, Some(secret), None) => {
                    return Err(KeysError::invalid(
                        place,
                        format!(
                            "an HS256 secret must be at least {MIN_SECRET_LEN} bytes, got {}",
                            secret.len()
                        ),
                    ));
                }
                (KeyAlg::HS256, _, _) => {
                    return Err(KeysError::invalid(
                        place,
                        "an HS256 key has a secret and no publicKey",
                    ));
                }
                (_, None, Some(_)) => {}
                (alg, _, _) => {
                    return Err(KeysError::invalid(
                        place,
                        format!("an {alg} key has a publicKey (PEM) and no secret"),
                    ));
                }
            }
        }
        let mut issuers = std::collections::HashMap::<&AppId, usize>::new();
        for issuer in &self.issuers {
            let place = format!("issuer {:?}", issuer.issuer);
            check_url(&issuer.issuer).map_err(|r| KeysError::invalid(&place, r))?;
            if let Some(uri) = &issuer.jwks_uri {
                check_url(uri).map_err(|r| KeysError::invalid(&place, format!("jwksUri: {r}")))?;
            }
            if issuer.audience.is_empty() || issuer.audience.iter().any(String::is_empty) {
                return Err(KeysError::invalid(
                    place,
                    "audience must list the client ids whose tokens are accepted",
                ));
            }
            if issuer.algorithms.is_empty() || issuer.algorithms.contains(&KeyAlg::HS256) {
                return Err(KeysError::invalid(
                    place,
                    "algorithms must be RS256 and/or ES256: an issuer's keys are public keys",
                ));
            }
            let count = issuers.entry(&issuer.app).or_default();
            *count += 1;
            if *count > MAX_ISSUERS_PER_APP {
                return Err(KeysError::invalid(
                    place,
                    format!(
                        "app {} trusts more than {MAX_ISSUERS_PER_APP} issuers",
                        issuer.app
                    ),
                ));
            }
            let same = self
                .issuers
                .iter()
                .filter(|other| {
                    other.issuer == issuer.issuer
                        && other.audience.iter().any(|a| issuer.audience.contains(a))
                })
                .count();
            if same > 1 {
                return Err(KeysError::invalid(
                    place,
                    "two entries share this issuer and an audience: a token would not say which app it is for",
                ));
            }
        }
        Ok(())
    }
}

/// Whether `kid` may name a key: 1 to 128 bytes of letters, digits, `.`, `_` and `-`.
pub fn check_kid(kid: &str) -> Result<(), String> {
    if kid.is_empty()
        || kid.len() > MAX_KID_LEN
        || !kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(format!(
            "a kid is 1 to {MAX_KID_LEN} letters, digits, '.', '_' or '-'"
        ));
    }
    Ok(())
}

/// Issuers and key sets are fetched over HTTPS; plain HTTP only from this machine.
fn check_url(url: &str) -> Result<(), String> {
    if url.starts_with("https://") && url.len() > "https://".len() {
        return Ok(());
    }
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"];
    if loopback.iter().any(|l| {
        url.strip_prefix(l)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
    }) {
        return Ok(());
    }
    Err(format!(
        "{url:?} is not an https:// URL (plain http is for 127.0.0.1 and localhost only)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(json: &str) -> Result<KeySet, KeysError> {
        KeySet::parse(json.as_bytes())
    }

    #[test]
    fn refuses_what_cannot_verify_safely() {
        let secret = "s".repeat(32);
        assert!(
            set(&format!(
                r#"{{"keys":[{{"kid":"a","app":"chat","alg":"HS256","secret":"{secret}"}}]}}"#
            ))
            .is_ok()
        );
        for (json, says) in [
            (
                r#"{"keys":[{"kid":"a","app":"chat","alg":"HS256","secret":"short"}]}"#,
                "at least 32",
            ),
            (
                r#"{"keys":[{"kid":"a b","app":"chat","alg":"HS256","secret":"x"}]}"#,
                "a kid is",
            ),
            (
                r#"{"keys":[{"kid":"a","app":"chat","alg":"RS256","secret":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}]}"#,
                "publicKey",
            ),
            (
                r#"{"keys":[{"kid":"a","app":"chat","alg":"none"}]}"#,
                "documented shape",
            ),
            (
                r#"{"issuers":[{"app":"chat","issuer":"http://example.com","audience":["x"]}]}"#,
                "not an https",
            ),
            (
                r#"{"issuers":[{"app":"chat","issuer":"https://id.example.com","audience":[]}]}"#,
                "audience",
            ),
            (
                r#"{"issuers":[{"app":"chat","issuer":"https://id.example.com","audience":["x"],"algorithms":["HS256"]}]}"#,
                "public keys",
            ),
            (
                r#"{"issuers":[{"app":"a","issuer":"https://id.example.com","audience":["x"]},{"app":"b","issuer":"https://id.example.com","audience":["x"]}]}"#,
                "which app",
            ),
        ] {
            let err = set(json).unwrap_err().to_string();
            assert!(err.contains(says), "{json}: {err}");
        }
        let dup = format!(
            r#"{{"keys":[{{"kid":"a","app":"chat","alg":"HS256","secret":"{secret}"}},{{"kid":"a","app":"other","alg":"HS256","secret":"{secret}"}}]}}"#
        );
        assert!(set(&dup).unwrap_err().to_string().contains("another key"));
        assert!(
            set(r#"{"issuers":[{"app":"chat","issuer":"http://127.0.0.1:9000/id","audience":["x"]}]}"#)
                .is_ok()
        );
    }

    #[test]
    fn claim_paths() {
        let claims = serde_json::json!({"sub": "u", "https://e.com/echo": {"channels": 1}});
        let name: ClaimPath = serde_json::from_str(r#""sub""#).unwrap();
        let path: ClaimPath = serde_json::from_str(r#"["https://e.com/echo","channels"]"#).unwrap();
        assert_eq!(name.find(&claims), Some(&serde_json::json!("u")));
        assert_eq!(path.find(&claims), Some(&serde_json::json!(1)));
    }
}
