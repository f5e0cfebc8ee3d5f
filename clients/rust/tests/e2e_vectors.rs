//! The committed test vectors (`tests/fixtures/e2e-vectors.json`) that both clients' tests read:
//! keys from passphrases, envelopes with a fixed nonce, and the data they hold. The JavaScript
//! client's tests check the same file, so the two clients read each other's envelopes.
//! `ECHO_WRITE_E2E_VECTORS=1` writes the file afresh from this client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use echo_client::e2e::{Key, decrypt};
use serde_json::{Value, json};

const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/e2e-vectors.json"
);

fn cases() -> Vec<Value> {
    vec![
        json!({
            "name": "a raw key and its default id",
            "key": B64.encode([7u8; 32]),
            "channel": "room-1",
            "nonce": B64.encode([1u8; 12]),
            "data": {"text": "hello, world", "n": 42},
        }),
        json!({
            "name": "a key from a passphrase, under an id of the app's choosing",
            "passphrase": "correct horse battery staple",
            "salt": "chat-demo:secret",
            "kid": "2026-12",
            "channel": "secret",
            "nonce": B64.encode([0xa5u8; 12]),
            "data": {"text": "grüße aus Köln 🙂", "name": "alice"},
        }),
        json!({
            "name": "any JSON value: a string",
            "key": B64.encode((0u8..32).collect::<Vec<_>>()),
            "channel": "a:b@c=d.e_f",
            "nonce": B64.encode([0u8; 12]),
            "data": "just text",
        }),
    ]
}

fn key_of(case: &Value) -> Key {
    let key = match case.get("passphrase") {
        Some(p) => Key::from_passphrase(p.as_str().unwrap(), case["salt"].as_str().unwrap()),
        None => {
            let bytes: [u8; 32] = B64
                .decode(case["key"].as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap();
            Key::from_bytes(bytes)
        }
    };
    match case.get("kid").and_then(Value::as_str) {
        Some(kid) => key.with_id(kid).unwrap(),
        None => key,
    }
}

fn nonce_of(case: &Value) -> [u8; 12] {
    B64.decode(case["nonce"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

#[test]
fn the_committed_vectors_hold() {
    if std::env::var_os("ECHO_WRITE_E2E_VECTORS").is_some() {
        let vectors: Vec<Value> = cases()
            .into_iter()
            .map(|mut case| {
                let key = key_of(&case);
                let channel = case["channel"].as_str().unwrap().to_owned();
                case["derivedKey"] = json!(B64.encode(key.bytes()));
                case["kid"] = json!(key.id());
                case["envelope"] = key.encrypt_with_nonce(&channel, &case["data"], nonce_of(&case));
                case
            })
            .collect();
        let doc = json!({
            "about": "AES-256-GCM envelopes of Echo's end-to-end encryption (docs/security.md), written by clients/rust/tests/e2e_vectors.rs and read by both clients' tests",
            "vectors": vectors,
        });
        std::fs::write(PATH, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
    }
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(PATH).unwrap()).unwrap();
    let vectors = doc["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), cases().len());
    for v in vectors {
        let key = key_of(v);
        let channel = v["channel"].as_str().unwrap();
        assert_eq!(B64.encode(key.bytes()), v["derivedKey"], "{}", v["name"]);
        assert_eq!(key.id(), v["kid"], "{}", v["name"]);
        assert_eq!(
            key.encrypt_with_nonce(channel, &v["data"], nonce_of(v)),
            v["envelope"],
            "{}",
            v["name"]
        );
        assert_eq!(
            decrypt(std::slice::from_ref(&key), channel, &v["envelope"]),
            Ok(v["data"].clone())
        );
    }
}
