//! Why a connect was refused, for clients that cannot read the refusal. API Gateway and the
//! edge refuse a connect before the upgrade (401 for a bad token, 403 when `onConnect` denies,
//! 503 when the app is full), with the reason in the body, but a browser's WebSocket reports
//! any refused upgrade as a bare failure. So a client may name its attempt in the connect URL
//! (`&attempt=ID`); a refused connect that names one keeps the refusal for [`REFUSAL_TTL_MS`],
//! and the HTTP API's `GET /v1/connect-attempts/{ID}` hands it back. The id is the client's
//! secret: 22 to 64 characters of `A-Z a-z 0-9 _ -`, at least 128 random bits.

use serde::{Deserialize, Serialize};

/// How long a refusal is kept.
pub const REFUSAL_TTL_MS: u64 = 60_000;

/// A client's name for one connect attempt.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttemptId(String);

impl AttemptId {
    /// The id, if `s` is one.
    pub fn parse(s: &str) -> Option<Self> {
        let valid = (22..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        valid.then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A refused connect: its HTTP status, and the code and message of its body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub status: u16,
    pub code: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempt_ids_are_long_plain_tokens() {
        assert!(AttemptId::parse("aB3_-aB3_-aB3_-aB3_-aB").is_some());
        assert!(AttemptId::parse(&"a".repeat(64)).is_some());
        for bad in [
            "short",
            &"a".repeat(65),
            "aB3_-aB3_-aB3_-aB3_-a/",
            "aB3_-aB3_-aB3_-aB3_-a=",
        ] {
            assert!(AttemptId::parse(bad).is_none(), "{bad}");
        }
    }
}
