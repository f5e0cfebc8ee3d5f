//! The end-to-end encrypted envelope: the shape `data` has on an encrypted channel.
//!
//! ```json
//! {"e2e": "v1", "kid": "3f1c0a9e4b7d2c65", "iv": "<base64, 12 bytes>", "ct": "<base64>"}
//! ```
//!
//! Clients encrypt the JSON text of the data they publish with AES-256-GCM under a fresh random
//! 96-bit nonce (`iv`), the UTF-8 of `echo-e2e-v1:` and the channel name as additional data, and
//! send the ciphertext with its 16-byte tag appended (`ct`); `kid` names the key. Echo never holds
//! a key: on a channel the associations mark `encrypted`, it only checks that `data` has this
//! shape, so that a client that forgot its key cannot publish plaintext where everyone expects
//! ciphertext. `docs/security.md` has the whole scheme.

use serde_json::Value;

/// The envelope's version tag.
pub const VERSION: &str = "v1";
/// Longest key id, in bytes.
pub const MAX_KID_LEN: usize = 64;
/// The nonce, base64: 12 bytes are 16 characters.
const IV_B64_LEN: usize = 16;
/// The smallest ciphertext, base64: the 16-byte tag alone (an empty plaintext) is 24 characters.
const MIN_CT_B64_LEN: usize = 24;

/// Why `data` is not an envelope, or `None` when it is one.
pub fn check(data: &Value) -> Option<String> {
    let Value::Object(fields) = data else {
        return Some("data must be an encrypted envelope object".into());
    };
    let text = |name: &str| fields.get(name).and_then(Value::as_str);
    if fields.len() != 4 {
        return Some("an envelope has exactly the fields e2e, kid, iv and ct".into());
    }
    if text("e2e") != Some(VERSION) {
        return Some(format!("envelope field e2e must be {VERSION:?}"));
    }
    match text("kid") {
        Some(kid) if !kid.is_empty() && kid.len() <= MAX_KID_LEN => {}
        _ => {
            return Some(format!(
                "envelope field kid must be 1 to {MAX_KID_LEN} bytes"
            ));
        }
    }
    match text("iv") {
        Some(iv) if iv.len() == IV_B64_LEN && base64_text(iv) => {}
        _ => return Some("envelope field iv must be 12 bytes in base64".into()),
    }
    match text("ct") {
        Some(ct) if ct.len() >= MIN_CT_B64_LEN && ct.len() % 4 == 0 && base64_text(ct) => None,
        _ => Some("envelope field ct must be the ciphertext and its tag in base64".into()),
    }
}

/// Whether `s` is made of standard base64's characters (padding at the end only).
fn base64_text(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    s.len() - body.len() <= 2
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_the_envelope_shape_passes() {
        let good = json!({"e2e": "v1", "kid": "k1", "iv": "AAECAwQFBgcICQoL", "ct": "q83vEjRWeJCrze8SNFZ4kA=="});
        assert_eq!(check(&good), None);
        for bad in [
            json!({"text": "hello"}),
            json!("hello"),
            json!({"e2e": "v2", "kid": "k1", "iv": "AAECAwQFBgcICQoL", "ct": "q83vEjRWeJCrze8SNFZ4kA=="}),
            json!({"e2e": "v1", "kid": "", "iv": "AAECAwQFBgcICQoL", "ct": "q83vEjRWeJCrze8SNFZ4kA=="}),
            json!({"e2e": "v1", "kid": "k1", "iv": "short", "ct": "q83vEjRWeJCrze8SNFZ4kA=="}),
            json!({"e2e": "v1", "kid": "k1", "iv": "AAECAwQFBgcICQoL", "ct": "not base64 at all!!!!!!!"}),
            json!({"e2e": "v1", "kid": "k1", "iv": "AAECAwQFBgcICQoL", "ct": "q83v"}),
            json!({"e2e": "v1", "kid": "k1", "iv": "AAECAwQFBgcICQoL", "ct": "q83vEjRWeJCrze8SNFZ4kA==", "text": "leak"}),
        ] {
            assert!(check(&bad).is_some(), "{bad}");
        }
    }
}
