//! Signs Echo tokens with an HS256 key (for `echoctl jwt` and the dev-token endpoint).

use jsonwebtoken::{Algorithm, EncodingKey, Header};

use super::claims::Claims;
use super::error::{MIN_SECRET_LEN, WeakSecret};

#[derive(Clone)]
pub struct TokenIssuer {
    key: EncodingKey,
    header: Header,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("kid", &self.header.kid)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// An issuer of tokens without a `kid`, checked with the instance secret.
    pub fn new(secret: &[u8]) -> Result<Self, WeakSecret> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(WeakSecret(secret.len()));
        }
        Ok(Self {
            key: EncodingKey::from_secret(secret),
            header: Header::new(Algorithm::HS256),
        })
    }

    /// An issuer of tokens signed with an app's HS256 key `kid`.
    pub fn with_kid(secret: &[u8], kid: &str) -> Result<Self, WeakSecret> {
        let mut issuer = Self::new(secret)?;
        issuer.header.kid = Some(kid.to_owned());
        Ok(issuer)
    }

    /// An issuer signing with an RS256 or ES256 private key (PEM, PKCS#8): what an app server
    /// holding such a key does.
    pub fn with_private_key(
        alg: super::keys::KeyAlg,
        pem: &[u8],
        kid: &str,
    ) -> Result<Self, jsonwebtoken::errors::Error> {
        let key = match alg {
            super::keys::KeyAlg::ES256 => EncodingKey::from_ec_pem(pem)?,
            super::keys::KeyAlg::RS256 => EncodingKey::from_rsa_pem(pem)?,
            super::keys::KeyAlg::HS256 => EncodingKey::from_secret(pem),
        };
        let mut header = Header::new(alg.algorithm());
        header.kid = Some(kid.to_owned());
        Ok(Self { key, header })
    }

    pub fn issue(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(&self.header, claims, &self.key)
    }
}
