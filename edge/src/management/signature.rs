//! AWS Signature Version 4 on management API requests, checked as API Gateway checks it, so that
//! a client that signs wrongly fails here as it would on AWS. The management token is both the
//! access key id and the secret key.
//!
//! The expected signature is computed with `aws-sigv4`, AWS's own signer, over the request as it
//! arrived: its method, path and query, the headers it lists as signed, and its body.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use axum::http::request::Parts;

/// How far a request's `X-Amz-Date` may be from the edge's clock: API Gateway's 15 minutes.
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// Why a signed request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The access key id is not the management token (API Gateway: 403 `ForbiddenException`).
    #[error("the access key id is not the management token")]
    UnknownKey,
    /// The `Authorization` header or `X-Amz-Date` is not what SigV4 sends.
    #[error("{0}")]
    Malformed(String),
    /// Signed more than [`MAX_SKEW`] away from now.
    #[error(
        "Signature expired: {signed} is now earlier or later than {now} by more than 15 minutes"
    )]
    Expired { signed: String, now: String },
    /// The signature is not the one the request and the secret make.
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."
    )]
    Mismatch,
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
struct Authorization<'a> {
    key: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

/// The SigV4 `Authorization` header's parts, if `value` is one.
fn authorization(value: &str) -> Result<Authorization<'_>, SignatureError> {
    let malformed = |what: &str| SignatureError::Malformed(format!("Authorization header: {what}"));
    let rest = value
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or_else(|| malformed("not AWS4-HMAC-SHA256"))?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',').map(str::trim) {
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let credential = credential.ok_or_else(|| malformed("no Credential"))?;
    let mut scope = credential.split('/');
    let (Some(key), Some(_date), Some(region), Some(service), Some("aws4_request"), None) = (
        scope.next(),
        scope.next(),
        scope.next(),
        scope.next(),
        scope.next(),
        scope.next(),
    ) else {
        return Err(malformed(
            "Credential is not KEY/DATE/REGION/SERVICE/aws4_request",
        ));
    };
    Ok(Authorization {
        key,
        region,
        service,
        signed_headers: signed
            .ok_or_else(|| malformed("no SignedHeaders"))?
            .split(';')
            .collect(),
        signature: signature.ok_or_else(|| malformed("no Signature"))?,
    })
}

/// `X-Amz-Date`'s basic ISO 8601 (`20261206T213600Z`) as a time.
fn amz_date(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let extended = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &text[0..4],
        &text[4..6],
        &text[6..8],
        &text[9..11],
        &text[11..13],
        &text[13..15]
    );
    let t = aws_smithy_types::DateTime::from_str(
        &extended,
        aws_smithy_types::date_time::Format::DateTime,
    )
    .ok()?;
    SystemTime::try_from(t).ok()
}

/// Checks the request `parts` with `body`, signed in `authorization`, against `token` (the key id
/// and the secret) at `now`.
pub fn verify(
    parts: &Parts,
    body: &[u8],
    authorization_header: &str,
    token: &str,
    now: SystemTime,
) -> Result<(), SignatureError> {
    let auth = authorization(authorization_header)?;
    if !super::constant_time_eq(auth.key.as_bytes(), token.as_bytes()) {
        return Err(SignatureError::UnknownKey);
    }
    let date = parts
        .headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| SignatureError::Malformed("no X-Amz-Date header".into()))?;
    let signed_at = amz_date(date)
        .ok_or_else(|| SignatureError::Malformed(format!("X-Amz-Date {date:?} is not a date")))?;
    let skew = now
        .duration_since(signed_at)
        .unwrap_or_else(|e| e.duration());
    if skew > MAX_SKEW {
        return Err(SignatureError::Expired {
            signed: date.to_owned(),
            now: aws_smithy_types::DateTime::from(now)
                .fmt(aws_smithy_types::date_time::Format::DateTime)
                .unwrap_or_default(),
        });
    }
    // Exactly the headers the client signed, each as it arrived.
    let mut headers = Vec::with_capacity(auth.signed_headers.len());
    for name in &auth.signed_headers {
        let values: Vec<&str> = parts
            .headers
            .get_all(*name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if values.is_empty() {
            return Err(SignatureError::Malformed(format!(
                "signed header {name} is not in the request"
            )));
        }
        for v in values {
            headers.push((*name, v));
        }
    }
    let identity = Identity::from(Credentials::new(
        token,
        token,
        None,
        None,
        "management-token",
    ));
    let mut settings = SigningSettings::default();
    // Sign what the client signed, nothing left out.
    settings.excluded_headers = Some(Vec::new());
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(auth.region)
        .name(auth.service)
        .time(signed_at)
        .settings(settings)
        .build()
        .map_err(|e| SignatureError::Malformed(e.to_string()))?
        .into();
    let uri = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let signable = SignableRequest::new(
        parts.method.as_str(),
        uri,
        headers.into_iter(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| SignatureError::Malformed(e.to_string()))?;
    let expected = sign(signable, &params)
        .map_err(|e| SignatureError::Malformed(e.to_string()))?
        .signature()
        .to_owned();
    if super::constant_time_eq(expected.as_bytes(), auth.signature.as_bytes()) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "the-management-token";

    /// A request as an SDK signs it: `aws-sigv4` over method, URI, host and body.
    fn signed(key: &str, secret: &str, body: &[u8], at: SystemTime) -> Parts {
        let uri = "http://127.0.0.1:8081/dev/@connections/AbC-_12345678901";
        let headers = [
            ("host", "127.0.0.1:8081"),
            ("content-type", "application/json"),
        ];
        let identity = Identity::from(Credentials::new(key, secret, None, None, "test"));
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("execute-api")
            .time(at)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let signable =
            SignableRequest::new("POST", uri, headers.into_iter(), SignableBody::Bytes(body))
                .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        let mut request = axum::http::Request::post(uri);
        for (k, v) in headers {
            request = request.header(k, v);
        }
        let mut request = request.body(()).unwrap();
        instructions.apply_to_request_http1x(&mut request);
        request.into_parts().0
    }

    fn check(parts: &Parts, body: &[u8], now: SystemTime) -> Result<(), SignatureError> {
        let auth = parts.headers["authorization"].to_str().unwrap();
        verify(parts, body, auth, TOKEN, now)
    }

    #[test]
    fn a_request_signed_with_the_token_verifies_and_nothing_else_does() {
        let now = SystemTime::now();
        let body = br#"{"hello":1}"#;
        let parts = signed(TOKEN, TOKEN, body, now);
        assert_eq!(check(&parts, body, now), Ok(()));
        // Another body, another secret, another key id.
        assert_eq!(
            check(&parts, br#"{"hello":2}"#, now),
            Err(SignatureError::Mismatch)
        );
        let other_secret = signed(TOKEN, "another-secret", body, now);
        assert_eq!(
            check(&other_secret, body, now),
            Err(SignatureError::Mismatch)
        );
        let other_key = signed("someone-else", TOKEN, body, now);
        assert_eq!(
            check(&other_key, body, now),
            Err(SignatureError::UnknownKey)
        );
    }

    #[test]
    fn a_signature_older_or_newer_than_fifteen_minutes_has_expired() {
        let now = SystemTime::now();
        let body = b"x";
        for at in [
            now - MAX_SKEW - Duration::from_secs(5),
            now + MAX_SKEW + Duration::from_secs(5),
        ] {
            let parts = signed(TOKEN, TOKEN, body, at);
            assert!(
                matches!(
                    check(&parts, body, now),
                    Err(SignatureError::Expired { .. })
                ),
                "{at:?}"
            );
        }
        let parts = signed(TOKEN, TOKEN, body, now - Duration::from_secs(60));
        assert_eq!(check(&parts, body, now), Ok(()));
    }

    #[test]
    fn a_header_that_is_not_sigv4_is_malformed() {
        let parts = signed(TOKEN, TOKEN, b"", SystemTime::now());
        for bad in [
            "AWS4-HMAC-SHA256 Signature=abc",
            "AWS4-HMAC-SHA256 Credential=key/date/region, SignedHeaders=host, Signature=abc",
            "Basic abc",
        ] {
            assert!(
                matches!(
                    verify(&parts, b"", bad, TOKEN, SystemTime::now()),
                    Err(SignatureError::Malformed(_))
                ),
                "{bad}"
            );
        }
    }
}
