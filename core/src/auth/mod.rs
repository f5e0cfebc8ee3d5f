//! Tokens: who may sign them for which app, and what they allow.
//!
//! - [`claims`]: Echo's claims (app, user, role, channel permissions) and what they allow.
//! - [`keys`]: the key set: each app's signing keys (HS256, RS256, ES256, each with a `kid`) and
//!   the OIDC issuers it trusts.
//! - [`keyring`]: the key set parsed for verification, and which key checks a token.
//! - [`oidc`]: trusted issuers' tokens, checked and mapped to Echo's claims.
//! - [`jwks`]: issuers' published keys, fetched and cached (the [`jwks::Fetch`] port).
//! - [`verifier`]: [`TokenVerifier`], over a [`verifier::KeySource`] port.
//! - [`issuer`]: [`TokenIssuer`], signing Echo tokens.
//! - [`error`]: why a token or a key set was refused.

pub mod claims;
pub mod error;
pub mod issuer;
pub mod jwks;
pub mod keyring;
pub mod keys;
pub mod oidc;
pub mod verifier;

pub use claims::{
    Claims, Forbidden, LEEWAY_SECS, Permissions, RESERVED_SUB_PREFIX, Role, check_sub,
};
pub use error::{AuthError, KeysError, MIN_SECRET_LEN, WeakSecret};
pub use issuer::TokenIssuer;
pub use keyring::Keyring;
pub use keys::{AppKey, KeyAlg, KeySet, TrustedIssuer};
pub use verifier::{KeySource, StaticKeys, TokenVerifier};
