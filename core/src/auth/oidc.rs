//! Tokens of trusted OIDC issuers (Cognito user pools, Auth0, Okta…), checked and mapped to
//! Echo's claims.
//!
//! - The signature verifies with a key the issuer publishes, under an algorithm the issuer entry
//!   allows and the key declares (never HS256, never `none`).
//! - `iss` equals the issuer; `aud` contains one of its audiences (a token without `aud` must
//!   carry one as `client_id`, as Cognito access tokens do); `exp` is required; `nbf` is checked.
//! - The user id, permissions and role come from the claims the entry's [`ClaimMapping`] names.

use std::sync::Arc;

use jsonwebtoken::Algorithm;
use serde_json::Value;

use super::claims::{Claims, Permissions, Role, check_sub};
use super::error::AuthError;
use super::jwks::Jwks;
use super::keyring::{check_times, decode};
use super::keys::{ClaimMapping, TrustedIssuer};
use crate::channel::AppId;

/// Verifies `token` of one of `issuers` (entries sharing its `iss`) at `now_secs`.
pub(crate) async fn verify(
    jwks: &Jwks,
    issuers: &[Arc<TrustedIssuer>],
    kid: Option<&str>,
    alg: Algorithm,
    token: &str,
    now_secs: u64,
) -> Result<Claims, AuthError> {
    let first = &issuers[0];
    let refuse = |reason: String| AuthError::Issuer {
        issuer: first.issuer.clone(),
        reason,
    };
    if !issuers
        .iter()
        .any(|i| i.algorithms.iter().any(|a| a.algorithm() == alg))
    {
        return Err(refuse(format!("algorithm {alg:?} is not accepted")));
    }
    let published = jwks.key(first, kid).await?;
    if published.alg.is_some_and(|declared| declared != alg) {
        return Err(refuse(format!(
            "the key is declared for {:?}, the token says {alg:?}",
            published.alg
        )));
    }
    let raw: Value = decode(token, &published.key, alg)?;
    let exp = raw
        .get("exp")
        .and_then(Value::as_u64)
        .ok_or_else(|| refuse("it has no exp".into()))?;
    let nbf = raw.get("nbf").and_then(Value::as_u64);
    check_times(exp, nbf, now_secs)?;
    let audiences: Vec<&str> = match raw.get("aud") {
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => raw
            .get("client_id")
            .and_then(Value::as_str)
            .into_iter()
            .collect(),
    };
    let issuer = issuers
        .iter()
        .find(|i| {
            i.algorithms.iter().any(|a| a.algorithm() == alg)
                && i.audience.iter().any(|a| audiences.contains(&a.as_str()))
        })
        .ok_or_else(|| refuse(format!("audience {audiences:?} is not accepted")))?;
    map(&issuer.claims, &issuer.app, &raw, exp, nbf).map_err(refuse)
}

fn map(
    mapping: &ClaimMapping,
    app: &AppId,
    raw: &Value,
    exp: u64,
    nbf: Option<u64>,
) -> Result<Claims, String> {
    let sub = mapping
        .sub
        .find(raw)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("claim {} (the user id) is missing", mapping.sub))?;
    check_sub(sub)?;
    let channels = match &mapping.permissions {
        None => mapping.default_permissions.clone(),
        Some(path) => match path.find(raw) {
            Some(value) => Some(permissions(value).map_err(|e| {
                format!("claim {path} is not channel permissions ({{\"subscribe\":[…],\"publish\":[…]}}): {e}")
            })?),
            None => Some(mapping.default_permissions.clone().ok_or_else(|| {
                format!("claim {path} (the channel permissions) is missing")
            })?),
        },
    };
    let admin = mapping
        .admin
        .as_ref()
        .is_some_and(|rule| match rule.claim.find(raw) {
            Some(Value::String(s)) => *s == rule.value,
            Some(Value::Array(list)) => list.iter().any(|v| v.as_str() == Some(&rule.value)),
            _ => false,
        });
    Ok(Claims {
        app: app.clone(),
        sub: sub.to_owned(),
        role: if admin { Role::Admin } else { Role::User },
        exp,
        nbf,
        iat: raw.get("iat").and_then(Value::as_u64),
        channels,
    })
}

fn permissions(value: &Value) -> Result<Permissions, serde_json::Error> {
    match value {
        Value::String(json) => serde_json::from_str(json),
        other => serde_json::from_value(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::keys::{AdminRule, ClaimPath};

    #[test]
    fn claims_are_mapped_as_documented() {
        let app = AppId::new("chat").unwrap();
        let raw = serde_json::json!({
            "sub": "u-1", "exp": 100, "cognito:groups": ["echo-admins"],
            "custom:channels": "{\"subscribe\":[\"room-*\"],\"publish\":[]}"
        });
        let mapping = ClaimMapping {
            permissions: Some(ClaimPath::Name("custom:channels".into())),
            admin: Some(AdminRule {
                claim: ClaimPath::Name("cognito:groups".into()),
                value: "echo-admins".into(),
            }),
            ..ClaimMapping::default()
        };
        let claims = map(&mapping, &app, &raw, 100, None).unwrap();
        assert_eq!(claims.sub, "u-1");
        assert!(claims.is_admin());
        assert_eq!(
            claims.channels.unwrap().publish,
            Some(vec![]),
            "a JSON string claim is parsed"
        );
        let without = serde_json::json!({"sub": "u-1"});
        assert!(
            map(&mapping, &app, &without, 100, None)
                .unwrap_err()
                .contains("missing")
        );
        let defaulted = ClaimMapping {
            default_permissions: Some(Permissions::default()),
            ..mapping.clone()
        };
        assert!(map(&defaulted, &app, &without, 100, None).is_ok());
        let reserved = serde_json::json!({"sub": "$echo"});
        assert!(map(&ClaimMapping::default(), &app, &reserved, 100, None).is_err());
        let plain = map(&ClaimMapping::default(), &app, &without, 100, None).unwrap();
        assert_eq!(plain.channels, None, "no mapping, no limits");
        assert!(!plain.is_admin());
    }
}
