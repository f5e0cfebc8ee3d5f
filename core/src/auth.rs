//! Tokens: JWT HS256 with Echo's claims, and what they allow.
//!
//! A token carries the app it belongs to (`app`), the user (`sub`), a [`Role`], an expiry (`exp`,
//! required) and optionally `nbf` and channel [`Permissions`]. Only HS256 is accepted: a token
//! signed with any other algorithm, or with `alg: none`, is refused.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::channel::{AppId, ChannelName, ChannelPattern};

/// Shortest secret accepted for signing tokens, in bytes (256 bits, as RFC 7518 asks for HS256).
pub const MIN_SECRET_LEN: usize = 32;
/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[default]
    User,
    /// May subscribe to `$status` and to any channel of its app regardless of permissions.
    Admin,
}

/// Channel patterns a token may subscribe or publish to. A missing list allows every
/// non-reserved channel; an empty list allows none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Permissions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribe: Option<Vec<ChannelPattern>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish: Option<Vec<ChannelPattern>>,
}

/// The claims of an Echo token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub app: AppId,
    pub sub: String,
    #[serde(default)]
    pub role: Role,
    /// Expiry, seconds since the Unix epoch. Required: Echo does not accept tokens that never expire.
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<Permissions>,
}

/// Why a token was refused. Every variant means HTTP 401 at connect.
#[derive(Debug, Error)]
pub enum AuthError {
    #[error("no token: connect with ?token=JWT")]
    Missing,
    #[error("token is not a valid Echo token: {0}")]
    Invalid(#[source] jsonwebtoken::errors::Error),
    #[error("token expired")]
    Expired,
    #[error("token not valid yet")]
    NotYetValid,
    #[error("token claims are invalid: {0}")]
    BadClaims(String),
}

/// Why a secret was refused.
#[derive(Debug, Error)]
#[error("the JWT secret must be at least {MIN_SECRET_LEN} bytes, got {0}")]
pub struct WeakSecret(pub usize);

/// Checks tokens against one HS256 secret.
#[derive(Clone)]
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenVerifier { .. }")
    }
}

impl TokenVerifier {
    pub fn new(secret: &[u8]) -> Result<Self, WeakSecret> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(WeakSecret(secret.len()));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked against Echo's clock below, not the library's.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.required_spec_claims.clear();
        validation.validate_aud = false;
        Ok(Self {
            key: DecodingKey::from_secret(secret),
            validation,
        })
    }

    /// Verifies signature, algorithm, expiry and claims at `now_secs`.
    pub fn verify(&self, token: &str, now_secs: u64) -> Result<Claims, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(
            |e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::Json(_) => AuthError::BadClaims(e.to_string()),
                _ => AuthError::Invalid(e),
            },
        )?;
        let claims = data.claims;
        if claims.expired_at(now_secs) {
            return Err(AuthError::Expired);
        }
        if let Some(nbf) = claims.nbf
            && nbf > now_secs + LEEWAY_SECS
        {
            return Err(AuthError::NotYetValid);
        }
        check_sub(&claims.sub).map_err(AuthError::BadClaims)?;
        Ok(claims)
    }
}

/// User ids starting with this are Echo's own: [`SYSTEM_SENDER`](crate::message::SYSTEM_SENDER)
/// (`$echo`) is the sender of system events, and no token may speak as it.
pub const RESERVED_SUB_PREFIX: char = '$';

/// Whether `sub` may be a token's user id: 1 to 256 bytes, not starting with
/// [`RESERVED_SUB_PREFIX`]. The error says what is wrong.
pub fn check_sub(sub: &str) -> Result<(), String> {
    if sub.is_empty() || sub.len() > 256 {
        return Err("sub must be 1 to 256 bytes".into());
    }
    if sub.starts_with(RESERVED_SUB_PREFIX) {
        return Err(format!(
            "sub {sub:?} is reserved: user ids starting with {RESERVED_SUB_PREFIX} are Echo's own"
        ));
    }
    Ok(())
}

/// Signs tokens with one HS256 secret (for `echoctl jwt` and the dev-token endpoint).
#[derive(Clone)]
pub struct TokenIssuer {
    key: EncodingKey,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenIssuer { .. }")
    }
}

impl TokenIssuer {
    pub fn new(secret: &[u8]) -> Result<Self, WeakSecret> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(WeakSecret(secret.len()));
        }
        Ok(Self {
            key: EncodingKey::from_secret(secret),
        })
    }

    pub fn issue(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.key)
    }
}

impl Claims {
    /// Whether the token has expired at `now_secs`, with the same tolerance for clock skew as
    /// at connect.
    pub fn expired_at(&self, now_secs: u64) -> bool {
        self.exp + LEEWAY_SECS <= now_secs
    }

    /// A user token's claims for `sub` in `app`, valid until `exp`, with no channel limits.
    pub fn new(app: AppId, sub: impl Into<String>, exp: u64) -> Self {
        Self {
            app,
            sub: sub.into(),
            role: Role::User,
            exp,
            nbf: None,
            iat: None,
            channels: None,
        }
    }

    pub fn with_role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }

    pub fn issued_at(mut self, iat: u64) -> Self {
        self.iat = Some(iat);
        self
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether this token may subscribe to `channel` of its own app.
    pub fn authorize_subscribe(&self, channel: &ChannelName) -> Result<(), Forbidden> {
        if channel.is_reserved() {
            return if self.is_admin() {
                Ok(())
            } else {
                Err(forbidden(format!(
                    "only admin tokens may subscribe to {channel}"
                )))
            };
        }
        self.allowed(
            channel,
            self.channels.as_ref().and_then(|p| p.subscribe.as_ref()),
            "subscribe",
        )
    }

    /// Whether this token may publish to `channel` of its own app. Nobody publishes to reserved
    /// channels.
    pub fn authorize_publish(&self, channel: &ChannelName) -> Result<(), Forbidden> {
        if channel.is_reserved() {
            return Err(forbidden(format!(
                "{channel} is reserved: Echo publishes there, clients do not"
            )));
        }
        self.allowed(
            channel,
            self.channels.as_ref().and_then(|p| p.publish.as_ref()),
            "publish",
        )
    }

    fn allowed(
        &self,
        channel: &ChannelName,
        patterns: Option<&Vec<ChannelPattern>>,
        what: &str,
    ) -> Result<(), Forbidden> {
        match patterns {
            Some(patterns) if !self.is_admin() && !patterns.iter().any(|p| p.matches(channel)) => {
                Err(forbidden(format!(
                    "this token may not {what} to channel {channel}"
                )))
            }
            _ => Ok(()),
        }
    }
}

/// What a token does not allow, and why; a client hears it as a `forbidden` error.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct Forbidden(pub String);

fn forbidden(message: String) -> Forbidden {
    Forbidden(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn claims(exp: u64) -> Claims {
        Claims {
            app: AppId::new("chat").unwrap(),
            sub: "alice".into(),
            role: Role::User,
            exp,
            nbf: None,
            iat: None,
            channels: None,
        }
    }

    #[test]
    fn round_trip_and_expiry() {
        let issuer = TokenIssuer::new(SECRET).unwrap();
        let verifier = TokenVerifier::new(SECRET).unwrap();
        let token = issuer.issue(&claims(1000)).unwrap();
        assert_eq!(verifier.verify(&token, 900).unwrap(), claims(1000));
        assert!(matches!(
            verifier.verify(&token, 1006),
            Err(AuthError::Expired)
        ));
    }

    #[test]
    fn refuses_other_secrets_algorithms_and_garbage() {
        let verifier = TokenVerifier::new(SECRET).unwrap();
        let other = TokenIssuer::new(&[7u8; 32]).unwrap();
        let token = other.issue(&claims(1000)).unwrap();
        assert!(matches!(
            verifier.verify(&token, 0),
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(
            verifier.verify("garbage", 0),
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(verifier.verify("", 0), Err(AuthError::Missing)));
        // alg: none, with the claims intact.
        let none = format!(
            "{}.{}.",
            b64(r#"{"alg":"none","typ":"JWT"}"#),
            b64(r#"{"app":"chat","sub":"a","exp":99999999999}"#)
        );
        assert!(verifier.verify(&none, 0).is_err());
        assert!(TokenVerifier::new(b"short").is_err());
    }

    #[test]
    fn reserved_and_oversize_user_ids_are_refused() {
        let issuer = TokenIssuer::new(SECRET).unwrap();
        let verifier = TokenVerifier::new(SECRET).unwrap();
        for sub in ["$echo", "$anything", "", &"x".repeat(257)] {
            let token = issuer
                .issue(&Claims {
                    sub: sub.to_owned(),
                    ..claims(1000)
                })
                .unwrap();
            assert!(
                matches!(verifier.verify(&token, 0), Err(AuthError::BadClaims(_))),
                "{sub:?}"
            );
        }
        assert_eq!(check_sub("a$b"), Ok(()), "only a leading $ is reserved");
        assert!(check_sub(crate::message::SYSTEM_SENDER).is_err());
    }

    fn b64(s: &str) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for c in s.as_bytes().chunks(3) {
            let n = (u32::from(c[0]) << 16)
                | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                | u32::from(*c.get(2).unwrap_or(&0));
            for i in 0..=c.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }

    #[test]
    fn permissions() {
        let mut c = claims(1);
        let room = ChannelName::new("room-1").unwrap();
        let lobby = ChannelName::new("lobby").unwrap();
        let status = ChannelName::status();
        assert!(c.authorize_subscribe(&room).is_ok());
        assert_eq!(
            crate::protocol::ProtocolError::from(c.authorize_subscribe(&status).unwrap_err()).code,
            crate::protocol::ErrorCode::Forbidden
        );
        c.channels = Some(Permissions {
            subscribe: Some(vec![ChannelPattern::new("room-*").unwrap()]),
            publish: Some(vec![]),
        });
        assert!(c.authorize_subscribe(&room).is_ok());
        assert!(c.authorize_subscribe(&lobby).is_err());
        assert!(c.authorize_publish(&room).is_err());
        c.role = Role::Admin;
        assert!(c.authorize_subscribe(&status).is_ok());
        assert!(c.authorize_publish(&status).is_err());
    }
}
