//! SigV4 for the management API's posts: the signature `aws-sigv4` gives a post, computed for
//! that one request shape.
//!
//! Fan-out signs one post per subscriber. The general signer
//! (`aws_sigv4::http_request::sign`) canonicalises any request: it copies every header into a
//! map of lower-cased names, normalises the path, sorts the query, and derives the signing key
//! (four HMACs) for every request. That was half of a post's CPU. A post always has the same
//! method, the same headers and no query, so its canonical request is written straight into
//! one buffer, and the key is derived once per day and credentials. The settings are those the
//! SDK signs `execute-api` with: the path percent-encoded twice, the session token signed, no
//! payload-hash header. The key derivation and the final HMAC are `aws-sigv4`'s own functions,
//! and the tests hold the whole signature to the general signer's.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::sign::v4;
use aws_smithy_http::label::{EncodingStrategy, fmt_string};
use http::HeaderValue;
use sha2::{Digest, Sha256};

/// The service API Gateway's management API signs as.
const SERVICE: &str = "execute-api";

/// A post's body type, signed and sent.
pub const CONTENT_TYPE: &str = "application/octet-stream";

/// The headers a signature adds to a post.
#[derive(Debug)]
pub struct Signature {
    pub amz_date: HeaderValue,
    pub security_token: Option<HeaderValue>,
    pub authorization: HeaderValue,
}

/// Why a post could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The general signer would sign a normalised path other than the one sent.
    #[error("the path {0:?} has an empty or dot segment")]
    Path(String),
    #[error("a signed header value is not valid: {0}")]
    Header(#[from] http::header::InvalidHeaderValue),
}

/// Signs posts for one region, keeping the day's signing key.
#[derive(Debug)]
pub struct PostSigner {
    region: String,
    key: Mutex<Option<DayKey>>,
}

/// A signing key and what it was derived from.
struct DayKey {
    date: String,
    /// `{date}/{region}/execute-api/aws4_request`.
    scope: String,
    access_key_id: String,
    secret_access_key: String,
    key: Vec<u8>,
}

impl std::fmt::Debug for DayKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DayKey")
            .field("date", &self.date)
            .finish_non_exhaustive()
    }
}

impl PostSigner {
    pub fn new(region: impl Into<String>) -> Self {
        Self {
            region: region.into(),
            key: Mutex::new(None),
        }
    }

    /// Signs `POST {path}` to `host` with `body`, sent with `content-type` [`CONTENT_TYPE`] and
    /// its `content-length`. `path` is as sent (its segments already percent-encoded).
    pub fn sign(
        &self,
        credentials: &Credentials,
        time: SystemTime,
        host: &str,
        path: &str,
        body: &[u8],
    ) -> Result<Signature, SignError> {
        if normalised_away(path) {
            return Err(SignError::Path(path.to_owned()));
        }
        let t = time::OffsetDateTime::from(time);
        let amz_date = format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
        let date = &amz_date[..8];
        let token = credentials.session_token().map(header_value);
        let signed_headers = if token.is_some() {
            "content-length;content-type;host;x-amz-date;x-amz-security-token"
        } else {
            "content-length;content-type;host;x-amz-date"
        };

        let mut canonical = String::with_capacity(256 + token.as_ref().map_or(0, String::len));
        canonical.push_str("POST\n");
        canonical.push_str(&fmt_string(path, EncodingStrategy::Greedy));
        // No query.
        canonical.push_str("\n\ncontent-length:");
        let _ = write!(canonical, "{}", body.len());
        canonical.push_str("\ncontent-type:");
        canonical.push_str(CONTENT_TYPE);
        canonical.push_str("\nhost:");
        canonical.push_str(&header_value(host));
        canonical.push_str("\nx-amz-date:");
        canonical.push_str(&amz_date);
        if let Some(token) = &token {
            canonical.push_str("\nx-amz-security-token:");
            canonical.push_str(token);
        }
        canonical.push_str("\n\n");
        canonical.push_str(signed_headers);
        canonical.push('\n');
        canonical.push_str(&hex::encode(Sha256::digest(body)));
        let canonical_hash = hex::encode(Sha256::digest(canonical.as_bytes()));

        let mut cached = self.key.lock().unwrap_or_else(|p| p.into_inner());
        let key = match cached.as_ref() {
            Some(k)
                if k.date == date
                    && k.access_key_id == credentials.access_key_id()
                    && k.secret_access_key == credentials.secret_access_key() =>
            {
                k
            }
            _ => cached.insert(DayKey {
                key: v4::generate_signing_key(
                    credentials.secret_access_key(),
                    time,
                    &self.region,
                    SERVICE,
                )
                .as_ref()
                .to_vec(),
                date: date.to_owned(),
                scope: format!("{date}/{}/{SERVICE}/aws4_request", self.region),
                access_key_id: credentials.access_key_id().to_owned(),
                secret_access_key: credentials.secret_access_key().to_owned(),
            }),
        };
        let mut string_to_sign = String::with_capacity(160);
        string_to_sign.push_str("AWS4-HMAC-SHA256\n");
        string_to_sign.push_str(&amz_date);
        string_to_sign.push('\n');
        string_to_sign.push_str(&key.scope);
        string_to_sign.push('\n');
        string_to_sign.push_str(&canonical_hash);
        let signature = v4::calculate_signature(&key.key, string_to_sign.as_bytes());
        let mut authorization = String::with_capacity(256);
        authorization.push_str("AWS4-HMAC-SHA256 Credential=");
        authorization.push_str(&key.access_key_id);
        authorization.push('/');
        authorization.push_str(&key.scope);
        authorization.push_str(", SignedHeaders=");
        authorization.push_str(signed_headers);
        authorization.push_str(", Signature=");
        authorization.push_str(&signature);
        drop(cached);
        let mut security_token = token.map(|t| HeaderValue::from_str(&t)).transpose()?;
        if let Some(t) = &mut security_token {
            t.set_sensitive(true);
        }
        let mut authorization = HeaderValue::from_str(&authorization)?;
        authorization.set_sensitive(true);
        Ok(Signature {
            amz_date: HeaderValue::from_str(&amz_date)?,
            security_token,
            authorization,
        })
    }
}

/// Whether `path` lacks its leading `/` or has an empty or dot segment: the general signer
/// removes those before signing, so it would sign a path other than the one sent. A path
/// without any is signed as it is sent.
pub fn normalised_away(path: &str) -> bool {
    path.strip_prefix('/')
        .is_none_or(|p| p.split('/').any(|s| matches!(s, "" | "." | "..")))
}

/// A header value as SigV4 canonicalises it: spaces trimmed, runs of them made one.
fn header_value(value: &str) -> String {
    if value.contains(' ') {
        value
            .split(' ')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        value.to_owned()
    }
}

/// The general signer, as the SDK signs the management API's operations: the reference the
/// post signer is held to.
#[cfg(test)]
pub(crate) fn sign_generally<B>(
    request: &mut http::Request<B>,
    body: &[u8],
    credentials: &Credentials,
    region: &str,
    time: SystemTime,
) {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_smithy_runtime_api::client::identity::Identity;

    let identity = Identity::from(credentials.clone());
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SERVICE)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .expect("signing parameters")
        .into();
    let uri = request.uri().to_string();
    let headers = request
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)));
    let signable = SignableRequest::new(
        request.method().as_str(),
        uri,
        headers,
        SignableBody::Bytes(body),
    )
    .expect("a signable request");
    let (instructions, _) = sign(signable, &params).expect("signed").into_parts();
    instructions.apply_to_request_http1x(request);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use super::*;

    fn credentials(token: Option<&str>) -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            token.map(str::to_owned),
            None,
            "tests",
        )
    }

    /// The general signer's headers for the same post.
    fn general(
        credentials: &Credentials,
        time: SystemTime,
        host: &str,
        path: &str,
        body: &[u8],
    ) -> http::HeaderMap {
        let mut request = http::Request::builder()
            .method("POST")
            .uri(format!("https://{host}{path}"))
            .header("host", host)
            .header("content-type", CONTENT_TYPE)
            .header("content-length", body.len())
            .body(())
            .unwrap();
        sign_generally(&mut request, body, credentials, "eu-west-1", time);
        request.headers().clone()
    }

    #[test]
    fn signs_as_the_general_signer_does() {
        let signer = PostSigner::new("eu-west-1");
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000);
        let cases = [
            (
                "abc.execute-api.eu-west-1.amazonaws.com",
                "/prod/@connections/L0SM9cOFvHcCIhw%3D",
            ),
            ("127.0.0.1:7705", "/@connections/AbC%3DdEf%2F%2B%C3%A9"),
            ("h", "/a%20b/%40connections/x~y_z-1.2"),
        ];
        for (n, (host, path)) in cases.into_iter().enumerate() {
            for token in [None, Some("FwoGZXIvYXdzE//session+token=")] {
                // Across a day's end, so the cached key must be derived again.
                for time in [start, start + Duration::from_secs(86_400 * (n as u64 + 1))] {
                    let creds = credentials(token);
                    let body = format!("{{\"n\":{n}}}");
                    let ours = signer
                        .sign(&creds, time, host, path, body.as_bytes())
                        .unwrap();
                    let theirs = general(&creds, time, host, path, body.as_bytes());
                    assert_eq!(
                        ours.authorization, theirs["authorization"],
                        "{path} {token:?}"
                    );
                    assert_eq!(ours.amz_date, theirs["x-amz-date"]);
                    assert_eq!(
                        ours.security_token.as_ref(),
                        theirs.get("x-amz-security-token")
                    );
                }
            }
        }
        // New credentials on the same day get a key of their own.
        let other = Credentials::new("AKIDOTHER", "another-secret", None, None, "tests");
        let ours = signer
            .sign(&other, start, "h", "/@connections/x", b"{}")
            .unwrap();
        let theirs = general(&other, start, "h", "/@connections/x", b"{}");
        assert_eq!(ours.authorization, theirs["authorization"]);
    }

    #[test]
    fn refuses_a_path_the_general_signer_would_normalise() {
        let signer = PostSigner::new("eu-west-1");
        let creds = credentials(None);
        for path in [
            "/@connections/",
            "/@connections/..",
            "//@connections/x",
            "@connections/x",
        ] {
            let err = signer
                .sign(&creds, SystemTime::UNIX_EPOCH, "h", path, b"")
                .unwrap_err();
            assert!(matches!(err, SignError::Path(_)), "{path}: {err}");
        }
    }
}
