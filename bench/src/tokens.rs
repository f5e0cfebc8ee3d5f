//! What verifying a token costs, per kind of key: the instance secret (HS256), an app's HS256,
//! RS256 and ES256 keys, and an OIDC issuer's published RS256 key (its key set fetched once, from
//! an issuer served here). Two measures:
//!
//! - verifications: `--verifications` tokens of each kind checked one after another on one core,
//!   in microseconds each;
//! - connects: an edge started in this process with that key set, and `--connects` WebSockets
//!   (`--in-flight` at a time) opened with tokens of each kind, in runs alternated between the
//!   kinds; connects per second, and each kind's rate beside HS256's.
//!
//! Tokens are signed before the clock starts: signing is the app server's cost, not Echo's.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::{Json, Router};
use clap::Args;
use echo_core::auth::jwks::{Fetch, FetchError, Jwks};
use echo_core::auth::keys::{ClaimMapping, KeyAlg};
use echo_core::auth::{
    AppKey, Claims, KeySet, Keyring, StaticKeys, TokenIssuer, TokenVerifier, TrustedIssuer,
};
use echo_core::channel::AppId;
use echo_core::clock::{Clock, SystemClock};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde_json::json;
use tokio::sync::{Semaphore, mpsc};

const INSTANCE: &str = "bench-instance-secret-bench-instance-secret";
const APP_SECRET: &str = "bench-app-secret-bench-app-secret-bench";

#[derive(Args)]
pub struct TokensArgs {
    /// Tokens of each kind verified in the loop.
    #[arg(long, default_value_t = 5000)]
    verifications: usize,
    /// Connections opened per run (0: no connect runs).
    #[arg(long, default_value_t = 2000)]
    connects: usize,
    /// Connections opening at once.
    #[arg(long, default_value_t = 64)]
    in_flight: usize,
    /// Connect runs per kind.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// The key pairs (PEM) the RS256, ES256 and issuer tokens are signed with.
    #[arg(long, default_value = "tests/fixtures/keys")]
    keys: std::path::PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
enum Kind {
    Instance,
    Hs256,
    Rs256,
    Es256,
    Oidc,
}

const KINDS: [Kind; 5] = [
    Kind::Instance,
    Kind::Hs256,
    Kind::Rs256,
    Kind::Es256,
    Kind::Oidc,
];

#[derive(Debug, Serialize)]
struct Outcome {
    kind: Kind,
    verify_us: f64,
    connects_per_sec: Vec<f64>,
    /// Median connects per second over the instance secret's (HS256).
    connects_vs_hs256: Option<f64>,
}

/// Signs each kind's tokens.
struct Signers {
    pems: std::path::PathBuf,
    issuer: String,
}

impl Signers {
    fn pem(&self, name: &str) -> crate::Result<Vec<u8>> {
        Ok(std::fs::read(self.pems.join(name))?)
    }

    fn token(&self, kind: Kind, sub: &str) -> crate::Result<String> {
        let exp = SystemClock.now_secs() + 3600;
        let claims = Claims::new(AppId::new("bench")?, sub, exp);
        let instance = Claims::new(AppId::new("plain")?, sub, exp);
        Ok(match kind {
            Kind::Instance => TokenIssuer::new(INSTANCE.as_bytes())?.issue(&instance)?,
            Kind::Hs256 => TokenIssuer::with_kid(APP_SECRET.as_bytes(), "hs")?.issue(&claims)?,
            Kind::Rs256 => {
                TokenIssuer::with_private_key(KeyAlg::RS256, &self.pem("rsa-private.pem")?, "rs")?
                    .issue(&claims)?
            }
            Kind::Es256 => {
                TokenIssuer::with_private_key(KeyAlg::ES256, &self.pem("ec-private.pem")?, "es")?
                    .issue(&claims)?
            }
            Kind::Oidc => {
                let mut header = Header::new(Algorithm::RS256);
                header.kid = Some("idp".into());
                let body = json!({"iss": self.issuer, "aud": "bench", "sub": sub, "exp": exp});
                jsonwebtoken::encode(
                    &header,
                    &body,
                    &EncodingKey::from_rsa_pem(&self.pem("rsa2-private.pem")?)?,
                )?
            }
        })
    }
}

/// Serves the issuer's discovery document and key set on 127.0.0.1; counts key set fetches.
async fn serve_issuer(pems: &std::path::Path) -> crate::Result<(String, Arc<AtomicUsize>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let mut jwk = Jwk::from_encoding_key(
        &EncodingKey::from_rsa_pem(&std::fs::read(pems.join("rsa2-private.pem"))?)?,
        Algorithm::RS256,
    )?;
    jwk.common.key_id = Some("idp".into());
    let keys = json!({"keys": [jwk]});
    let discovery = json!({"issuer": url, "jwks_uri": format!("{url}/jwks.json")});
    let fetches = Arc::new(AtomicUsize::new(0));
    let counted = fetches.clone();
    let app = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || async move { Json(discovery) }),
        )
        .route(
            "/jwks.json",
            get(move || {
                counted.fetch_add(1, Ordering::Relaxed);
                async move { Json(keys) }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, fetches))
}

fn key_set(pems: &std::path::Path, issuer: &str) -> crate::Result<KeySet> {
    let app = AppId::new("bench")?;
    let key = |kid: &str, alg: KeyAlg, secret: Option<&str>, pem: Option<&str>| {
        Ok::<_, Box<dyn std::error::Error>>(AppKey {
            kid: kid.into(),
            app: app.clone(),
            alg,
            secret: secret.map(str::to_owned),
            public_key: pem
                .map(|p| std::fs::read_to_string(pems.join(p)))
                .transpose()?,
            created: 0,
            revoked: None,
        })
    };
    Ok(KeySet {
        instance_secret: None,
        keys: vec![
            key("hs", KeyAlg::HS256, Some(APP_SECRET), None)?,
            key("rs", KeyAlg::RS256, None, Some("rsa-public.pem"))?,
            key("es", KeyAlg::ES256, None, Some("ec-public.pem"))?,
        ],
        issuers: vec![TrustedIssuer {
            app: AppId::new("sso")?,
            issuer: issuer.to_owned(),
            audience: vec!["bench".into()],
            jwks_uri: None,
            algorithms: vec![KeyAlg::RS256],
            claims: ClaimMapping::default(),
        }],
    })
}

/// The edge's HTTP fetch stands for any: the issuer is on this machine.
struct Reqwest(reqwest::Client);

#[async_trait::async_trait]
impl Fetch for Reqwest {
    async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let fail = |e: reqwest::Error| FetchError {
            url: url.to_owned(),
            source: Box::new(e),
        };
        let body = self.0.get(url).send().await.map_err(fail)?;
        Ok(body.bytes().await.map_err(fail)?.to_vec())
    }
}

pub async fn run(args: TokensArgs) -> crate::Result {
    let (issuer, fetches) = serve_issuer(&args.keys).await?;
    let set = key_set(&args.keys, &issuer)?;
    let signers = Signers {
        pems: args.keys.clone(),
        issuer: issuer.clone(),
    };
    let keyring = Arc::new(Keyring::compile(&set, Some(INSTANCE.as_bytes()))?);
    let verifier = TokenVerifier::with_keys(
        Arc::new(StaticKeys(keyring)),
        Arc::new(Jwks::new(Arc::new(Reqwest(reqwest::Client::new())))),
    );
    let mut outcomes = Vec::new();
    for kind in KINDS {
        let tokens: Vec<String> = (0..args.verifications.max(1))
            .map(|i| signers.token(kind, &format!("u{i}")))
            .collect::<crate::Result<_>>()?;
        // The first verification of an issuer's token fetches its keys: not timed.
        let now = SystemClock.now_secs();
        verifier.verify(&tokens[0], now).await?;
        let started = Instant::now();
        for token in &tokens {
            verifier.verify(token, now).await?;
        }
        let verify_us = started.elapsed().as_secs_f64() * 1e6 / tokens.len() as f64;
        eprintln!("{kind:?}: {verify_us:.1} µs a verification");
        outcomes.push(Outcome {
            kind,
            verify_us,
            connects_per_sec: Vec::new(),
            connects_vs_hs256: None,
        });
    }
    if args.connects > 0 {
        connect_runs(&args, &set, &signers, &mut outcomes).await?;
    }
    eprintln!(
        "the issuer's key set was fetched {} time(s)",
        fetches.load(Ordering::Relaxed)
    );
    for o in &outcomes {
        println!(
            "{:<9} verify {:>7.1} µs   connects/s {:>7.0} ({})",
            format!("{:?}", o.kind),
            o.verify_us,
            median(&o.connects_per_sec),
            o.connects_vs_hs256
                .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}x HS256"))
        );
    }
    println!("{}", serde_json::to_string(&outcomes)?);
    Ok(())
}

async fn connect_runs(
    args: &TokensArgs,
    set: &KeySet,
    signers: &Signers,
    outcomes: &mut [Outcome],
) -> crate::Result {
    let dir = std::env::temp_dir().join(format!("echo-bench-tokens-{}", std::process::id()));
    echo_edge::data_dir::create_private(&dir)?;
    echo_edge::key_file::write(&dir.join(echo_edge::key_file::KEYS_FILE), set)?;
    let mut config = echo_edge::EdgeConfig::new(
        dir.clone(),
        INSTANCE.as_bytes().to_vec(),
        "bench-manage-token".into(),
    );
    config.listen = "127.0.0.1:0".parse()?;
    config.manage_listen = "127.0.0.1:0".parse()?;
    config.publish_rate = 0;
    let edge = echo_edge::start(config).await?;
    let url = format!("ws://{}/", edge.addr);
    for run in 0..args.runs {
        for (k, kind) in KINDS.iter().enumerate() {
            let tokens: Vec<String> = (0..args.connects)
                .map(|i| signers.token(*kind, &format!("r{run}-u{i}")))
                .collect::<crate::Result<_>>()?;
            let rate = connects(&url, tokens, args.in_flight).await?;
            outcomes[k].connects_per_sec.push(rate);
        }
    }
    edge.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    let base = median(&outcomes[0].connects_per_sec);
    for o in outcomes.iter_mut() {
        o.connects_vs_hs256 = Some(median(&o.connects_per_sec) / base);
    }
    Ok(())
}

/// Opens a WebSocket per token, `in_flight` at a time; all stay open until the last is in.
async fn connects(url: &str, tokens: Vec<String>, in_flight: usize) -> crate::Result<f64> {
    let gate = Arc::new(Semaphore::new(in_flight.max(1)));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let count = tokens.len();
    let started = Instant::now();
    for token in tokens {
        let permit = gate.clone().acquire_owned().await;
        let (url, done_tx) = (format!("{url}?token={token}"), done_tx.clone());
        tokio::spawn(async move {
            let result = crate::target::connect(url).await;
            drop(permit);
            let _ = done_tx.send(result);
        });
    }
    drop(done_tx);
    let mut open = Vec::with_capacity(count);
    while let Some(result) = done_rx.recv().await {
        open.push(result?);
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    drop(open);
    // Let the edge see the closes before the next run.
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(rate)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}
