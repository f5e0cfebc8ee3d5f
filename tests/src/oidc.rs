//! An OIDC issuer served by the tests on 127.0.0.1: its discovery document and its key set
//! (JWKS), counting how often the key set is fetched, and tokens it signs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use echo_core::clock::{Clock, SystemClock};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// A key pair of `tests/fixtures/keys`, PEM.
pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/fixtures/keys/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The keys an issuer publishes, and how often they were fetched.
type Published = (Arc<Mutex<Vec<Value>>>, Arc<AtomicUsize>);

/// An OIDC issuer on 127.0.0.1: its discovery document and key set, counting fetches.
pub struct Issuer {
    pub url: String,
    keys: Arc<Mutex<Vec<Value>>>,
    pub fetches: Arc<AtomicUsize>,
}

impl Issuer {
    pub async fn start(path: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}{path}", listener.local_addr().unwrap());
        let keys = Arc::new(Mutex::new(Vec::new()));
        let fetches = Arc::new(AtomicUsize::new(0));
        let discovery = json!({"issuer": url, "jwks_uri": format!("{url}/jwks.json")});
        let app = Router::new()
            .route(
                &format!("{path}/.well-known/openid-configuration"),
                get(move || async move { Json(discovery) }),
            )
            .route(
                &format!("{path}/jwks.json"),
                get(|State((keys, fetches)): State<Published>| async move {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    Json(json!({"keys": *keys.lock().unwrap()}))
                }),
            )
            .with_state((keys.clone(), fetches.clone()));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, keys, fetches }
    }

    /// Publishes `pem`'s public key as `kid` (replacing what was published).
    pub fn publish(&self, kid: &str, pem: &str) {
        let mut jwk = Jwk::from_encoding_key(
            &EncodingKey::from_rsa_pem(fixture(pem).as_bytes()).unwrap(),
            Algorithm::RS256,
        )
        .unwrap();
        jwk.common.key_id = Some(kid.into());
        *self.keys.lock().unwrap() = vec![serde_json::to_value(jwk).unwrap()];
    }

    pub fn token(&self, kid: &str, pem: &str, claims: Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.into());
        let mut claims = claims;
        claims["iss"] = self.url.clone().into();
        claims["exp"] = (SystemClock.now_secs() + 600).into();
        jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_rsa_pem(fixture(pem).as_bytes()).unwrap(),
        )
        .unwrap()
    }
}

impl Issuer {
    /// How often its key set was fetched.
    pub fn fetched(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}
