//! End-to-end encryption: channels whose `data` only the clients holding a key can read.
//!
//! The envelope, the same from the JavaScript client (`docs/security.md` has the whole scheme):
//!
//! ```json
//! {"e2e": "v1", "kid": "3f1c0a9e4b7d2c65", "iv": "<base64, 12 bytes>", "ct": "<base64>"}
//! ```
//!
//! - AES-256-GCM over the JSON text of the data, under a fresh random 96-bit nonce (`iv`) per
//!   message, with the UTF-8 of `echo-e2e-v1:` and the channel name as additional data (a message
//!   moved to another channel does not decrypt); `ct` is the ciphertext with its 16-byte tag.
//! - `kid` names the key, so that a channel's key can rotate: a client holds several keys for a
//!   channel, encrypts with the first and decrypts with whichever the envelope names. By default
//!   a key's id is the first 8 bytes of the SHA-256 of the key, in hex.
//! - A key is 32 bytes, or derived from a passphrase with PBKDF2-HMAC-SHA256, 600,000 rounds, the
//!   salt being the UTF-8 of `echo-e2e-v1:` and a salt the application chooses (the app and
//!   channel, say).

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// PBKDF2-HMAC-SHA256 rounds for a key from a passphrase.
pub const PBKDF2_ROUNDS: u32 = 600_000;
/// What the additional data and the passphrase salt start with.
const CONTEXT: &str = "echo-e2e-v1:";
/// Longest key id, in bytes.
const MAX_KID_LEN: usize = 64;

/// A channel key: 32 bytes and their id. Its `Debug` shows the id alone.
#[derive(Clone)]
pub struct Key {
    id: String,
    cipher: Aes256Gcm,
    bytes: [u8; 32],
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Key {
    /// A key of 32 random-looking bytes (from a key server, a key exchange, a secret store).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let digest = Sha256::digest(bytes);
        let id = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Self {
            id,
            cipher: Aes256Gcm::new(&bytes.into()),
            bytes,
        }
    }

    /// The key a passphrase and a salt derive: PBKDF2-HMAC-SHA256, [`PBKDF2_ROUNDS`] rounds,
    /// over the salt `echo-e2e-v1:{salt}`. Clients with the same passphrase and salt get the same
    /// key; about a quarter of a second of CPU.
    pub fn from_passphrase(passphrase: &str, salt: &str) -> Self {
        let mut bytes = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(
            passphrase.as_bytes(),
            format!("{CONTEXT}{salt}").as_bytes(),
            PBKDF2_ROUNDS,
            &mut bytes,
        );
        Self::from_bytes(bytes)
    }

    /// The key under another id (1 to 64 bytes).
    pub fn with_id(mut self, id: impl Into<String>) -> Result<Self, crate::Error> {
        let id = id.into();
        if id.is_empty() || id.len() > MAX_KID_LEN {
            return Err(crate::Error::Encode(format!(
                "a key id must be 1 to {MAX_KID_LEN} bytes"
            )));
        }
        self.id = id;
        Ok(self)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key's 32 bytes.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// `data` as an envelope for `channel`, under a fresh random nonce.
    pub fn encrypt(&self, channel: &str, data: &Value) -> Value {
        self.encrypt_with_nonce(channel, data, rand::random())
    }

    /// `data` as an envelope for `channel` under `nonce`: for test vectors only, since a nonce
    /// used twice with one key gives the key away.
    #[doc(hidden)]
    pub fn encrypt_with_nonce(&self, channel: &str, data: &Value, nonce: [u8; 12]) -> Value {
        let plaintext = data.to_string();
        let aad = format!("{CONTEXT}{channel}");
        // AES-GCM encryption fails only for plaintexts over 64 GiB.
        let ct = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .unwrap_or_default();
        json!({"e2e": "v1", "kid": self.id, "iv": B64.encode(nonce), "ct": B64.encode(ct)})
    }
}

/// Why an encrypted message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    /// The data is not an envelope (on a channel this client encrypts).
    #[error("the data is not an encrypted envelope")]
    NotEnvelope,
    /// None of the channel's keys has the envelope's id.
    #[error("no key with id {0:?} for this channel")]
    UnknownKey(String),
    /// The ciphertext does not decrypt under the key: a wrong key with the same id, or a
    /// tampered or truncated message.
    #[error("the message does not decrypt: wrong key, or tampered with")]
    Failed,
    /// It decrypted, but not to JSON.
    #[error("the decrypted data is not JSON")]
    NotJson,
}

/// The keys of each encrypted channel, shared by the client's handles and its connection task.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ciphers(
    std::sync::Arc<std::sync::RwLock<std::collections::HashMap<String, std::sync::Arc<[Key]>>>>,
);

impl Ciphers {
    pub(crate) fn set(&self, channel: &str, keys: Vec<Key>) {
        let mut map = self.0.write().unwrap_or_else(|p| p.into_inner());
        if keys.is_empty() {
            map.remove(channel);
        } else {
            map.insert(channel.to_owned(), keys.into());
        }
    }

    pub(crate) fn get(&self, channel: &str) -> Option<std::sync::Arc<[Key]>> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(channel)
            .cloned()
    }
}

/// The data `envelope` holds, with whichever of `keys` its `kid` names.
pub fn decrypt(keys: &[Key], channel: &str, envelope: &Value) -> Result<Value, DecryptError> {
    let field = |name: &str| envelope.get(name).and_then(Value::as_str);
    if field("e2e") != Some("v1") {
        return Err(DecryptError::NotEnvelope);
    }
    let (Some(kid), Some(iv), Some(ct)) = (field("kid"), field("iv"), field("ct")) else {
        return Err(DecryptError::NotEnvelope);
    };
    let key = keys
        .iter()
        .find(|k| k.id == kid)
        .ok_or_else(|| DecryptError::UnknownKey(kid.to_owned()))?;
    let nonce: [u8; 12] = B64
        .decode(iv)
        .ok()
        .and_then(|n| n.try_into().ok())
        .ok_or(DecryptError::NotEnvelope)?;
    let ct = B64.decode(ct).map_err(|_| DecryptError::NotEnvelope)?;
    let aad = format!("{CONTEXT}{channel}");
    let plaintext = key
        .cipher
        .decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: &ct,
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| DecryptError::Failed)?;
    serde_json::from_slice(&plaintext).map_err(|_| DecryptError::NotJson)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> Key {
        Key::from_bytes([n; 32])
    }

    #[test]
    fn round_trip_rotation_and_refusals() {
        let data = json!({"text": "meet at noon", "n": [1, 2]});
        let (old, new) = (key(1), key(2));
        let sealed = new.encrypt("room", &data);
        assert_ne!(
            sealed,
            new.encrypt("room", &data),
            "a fresh nonce each time"
        );
        assert!(!sealed.to_string().contains("noon"));
        assert_eq!(
            decrypt(&[old.clone(), new.clone()], "room", &sealed),
            Ok(data.clone())
        );
        assert_eq!(
            decrypt(std::slice::from_ref(&old), "room", &sealed),
            Err(DecryptError::UnknownKey(new.id().to_owned()))
        );
        let impostor = key(3).with_id(new.id()).unwrap();
        assert_eq!(
            decrypt(&[impostor], "room", &sealed),
            Err(DecryptError::Failed)
        );
        assert_eq!(
            decrypt(std::slice::from_ref(&new), "other-room", &sealed),
            Err(DecryptError::Failed),
            "bound to its channel"
        );
        let mut tampered = sealed.clone();
        let ct = B64.decode(tampered["ct"].as_str().unwrap()).unwrap();
        let mut flipped = ct.clone();
        flipped[0] ^= 1;
        tampered["ct"] = json!(B64.encode(&flipped));
        assert_eq!(
            decrypt(std::slice::from_ref(&new), "room", &tampered),
            Err(DecryptError::Failed)
        );
        tampered["ct"] = json!(B64.encode(&ct[..ct.len() - 1]));
        assert_eq!(
            decrypt(std::slice::from_ref(&new), "room", &tampered),
            Err(DecryptError::Failed)
        );
        assert_eq!(
            decrypt(
                std::slice::from_ref(&new),
                "room",
                &json!({"text": "plain"})
            ),
            Err(DecryptError::NotEnvelope)
        );
        assert!(format!("{new:?}").contains(new.id()) && !format!("{new:?}").contains("bytes"));
    }
}
