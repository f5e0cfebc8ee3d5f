//! Keys per app: isolation between apps, rotation, revocation, RS256/ES256 keys with their
//! algorithm pinned, and OIDC issuers served by the test itself on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::Ordering;
use std::time::Duration;

use echo_core::auth::keys::{ClaimMapping, ClaimPath, KeyAlg};
use echo_core::auth::{AppKey, Claims, KeySet, Permissions, TokenIssuer, TrustedIssuer};
use echo_core::clock::{Clock, SystemClock};
use echo_edge::key_file;
use echo_tests::TestEdge;
use echo_tests::oidc::{Issuer, fixture};
use serde_json::{Value, json};

const A_SECRET: &str = "app-a-secret-app-a-secret-app-a-secret";
const A2_SECRET: &str = "app-a-second-secret-app-a-second-secret";
const B_SECRET: &str = "app-b-secret-app-b-secret-app-b-secret";

fn hs(kid: &str, app: &str, secret: &str) -> AppKey {
    AppKey {
        kid: kid.into(),
        app: echo_core::channel::AppId::new(app).unwrap(),
        alg: KeyAlg::HS256,
        secret: Some(secret.into()),
        public_key: None,
        created: SystemClock.now_secs(),
        revoked: None,
    }
}

fn public(kid: &str, app: &str, alg: KeyAlg, pem: &str) -> AppKey {
    AppKey {
        alg,
        secret: None,
        public_key: Some(fixture(pem)),
        ..hs(kid, app, "")
    }
}

fn write_keys(edge: &TestEdge, set: &KeySet) {
    key_file::write(&edge.data_dir().join(key_file::KEYS_FILE), set).unwrap();
}

fn signed(secret: &str, kid: &str, claims: &Claims) -> String {
    TokenIssuer::with_kid(secret.as_bytes(), kid)
        .unwrap()
        .issue(claims)
        .unwrap()
}

/// The refusal's status and message.
async fn refusal(edge: &TestEdge, token: &str) -> (u16, String) {
    let (status, body) = edge.refusal(&edge.url(token)).await;
    (
        status,
        body["message"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_verifies_only_with_a_key_of_the_app_it_names() {
    let edge = TestEdge::start().await;
    write_keys(
        &edge,
        &KeySet {
            instance_secret: None,
            keys: vec![hs("a-1", "app-a", A_SECRET), hs("b-1", "app-b", B_SECRET)],
            issuers: vec![],
        },
    );
    let for_a = TestEdge::claims("app-a", "alice");
    // Whoever holds app B's key cannot speak for app A.
    let (status, why) = refusal(&edge, &signed(B_SECRET, "b-1", &for_a)).await;
    assert_eq!(status, 401);
    assert!(why.contains("of app app-b, not of app app-a"), "{why}");
    // Not with B's secret under A's kid either: the signature is A's key's to check.
    assert_eq!(
        refusal(&edge, &signed(B_SECRET, "a-1", &for_a)).await.0,
        401
    );
    // The instance secret no longer speaks for an app with keys of its own.
    let (status, why) = refusal(&edge, &edge.token("app-a", "alice")).await;
    assert_eq!(status, 401);
    assert!(why.contains("kid"), "{why}");
    let (status, why) = refusal(&edge, &signed(A_SECRET, "nobody", &for_a)).await;
    assert_eq!(status, 401);
    assert!(why.contains("does not know"), "{why}");

    let mut a = edge.connect(&signed(A_SECRET, "a-1", &for_a)).await;
    let mut b = edge
        .connect(&signed(B_SECRET, "b-1", &TestEdge::claims("app-b", "bob")))
        .await;
    // Apps without keys keep the instance secret (and dev mode's zero set-up).
    let mut demo = edge.connect(&edge.token("chat-demo", "carol")).await;
    for c in [&mut a, &mut b, &mut demo] {
        assert_eq!(c.subscribe("room").await["type"], "subscribed");
    }
    // Dev tokens of an app with an HS256 key are signed with it.
    let dev: Value = reqwest::get(format!(
        "http://{}/dev/token?app=app-a&sub=dan",
        edge.edge.addr
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let header = jsonwebtoken::decode_header(dev["token"].as_str().unwrap()).unwrap();
    assert_eq!(header.kid.as_deref(), Some("a-1"));
    edge.connect(dev["token"].as_str().unwrap())
        .await
        .close()
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_rotate_without_an_outage_and_a_revoked_key_stops_at_once() {
    let edge = TestEdge::start().await;
    let mut set = KeySet {
        instance_secret: None,
        keys: vec![hs("old", "app-a", A_SECRET), hs("new", "app-a", A2_SECRET)],
        issuers: vec![],
    };
    write_keys(&edge, &set);
    let alice = TestEdge::claims("app-a", "alice");
    // Both keys verify while the app servers move over.
    let mut on_old = edge.connect(&signed(A_SECRET, "old", &alice)).await;
    edge.connect(&signed(A2_SECRET, "new", &alice))
        .await
        .close()
        .await;
    // A connection admitted by the old key bridges to the new one with `refresh`.
    on_old
        .send(json!({"action": "refresh", "token": signed(A2_SECRET, "new", &alice)}))
        .await;
    assert_eq!(on_old.recv().await["type"], "refreshed");

    set.keys[0].revoked = Some(SystemClock.now_secs());
    write_keys(&edge, &set);
    let (status, why) = refusal(&edge, &signed(A_SECRET, "old", &alice)).await;
    assert_eq!(status, 401);
    assert!(why.contains("revoked"), "{why}");
    let mut on_new = edge.connect(&signed(A2_SECRET, "new", &alice)).await;
    on_new
        .send(json!({"action": "refresh", "token": signed(A_SECRET, "old", &alice)}))
        .await;
    let refused = on_new.recv().await;
    assert_eq!(refused["code"], "unauthorized", "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("revoked"));
    // Connections it admitted run on until their tokens expire (docs/security.md says why).
    assert_eq!(on_old.subscribe("room").await["type"], "subscribed");
    assert_eq!(on_new.subscribe("room").await["type"], "subscribed");
}

#[tokio::test(flavor = "multi_thread")]
async fn rs256_and_es256_keys_verify_with_their_algorithm_pinned() {
    let edge = TestEdge::start().await;
    write_keys(
        &edge,
        &KeySet {
            instance_secret: None,
            keys: vec![
                public("rs", "app-a", KeyAlg::RS256, "rsa-public.pem"),
                public("es", "app-a", KeyAlg::ES256, "ec-public.pem"),
            ],
            issuers: vec![],
        },
    );
    let alice = TestEdge::claims("app-a", "alice");
    let rs =
        TokenIssuer::with_private_key(KeyAlg::RS256, fixture("rsa-private.pem").as_bytes(), "rs")
            .unwrap();
    let es =
        TokenIssuer::with_private_key(KeyAlg::ES256, fixture("ec-private.pem").as_bytes(), "es")
            .unwrap();
    edge.connect(&rs.issue(&alice).unwrap()).await.close().await;
    edge.connect(&es.issue(&alice).unwrap()).await.close().await;
    // Alg confusion: an HS256 token "signed" with the RS key's public PEM as the HMAC secret.
    let confused = signed(&fixture("rsa-public.pem"), "rs", &alice);
    assert_eq!(refusal(&edge, &confused).await.0, 401);
    // The ES key's kid on an RS256 signature.
    let crossed =
        TokenIssuer::with_private_key(KeyAlg::RS256, fixture("rsa-private.pem").as_bytes(), "es")
            .unwrap();
    assert_eq!(refusal(&edge, &crossed.issue(&alice).unwrap()).await.0, 401);
    // Echo holds no private key of an app whose keys are all public: no dev tokens for it.
    let dev = reqwest::get(format!(
        "http://{}/dev/token?app=app-a&sub=dan",
        edge.edge.addr
    ))
    .await
    .unwrap();
    assert_eq!(dev.status(), 409);
    let why: Value = dev.json().await.unwrap();
    assert!(
        why["error"].as_str().unwrap().contains("no HS256 key"),
        "{why}"
    );
    // alg: none.
    let none = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT","kid":"rs"}"#),
        b64(&serde_json::to_string(&alice).unwrap())
    );
    assert_eq!(refusal(&edge, &none).await.0, 401);
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oidc_issuers_tokens_connect_and_its_rotation_is_picked_up() {
    let issuer = Issuer::start("/pool").await;
    issuer.publish("idp-1", "rsa-private.pem");
    let edge = TestEdge::start_with(
        |c| c.jwks_min_refetch = Duration::from_secs(2),
        echo_chat_demo::functions(),
    )
    .await;
    write_keys(
        &edge,
        &KeySet {
            instance_secret: None,
            keys: vec![],
            issuers: vec![TrustedIssuer {
                app: echo_core::channel::AppId::new("app-a").unwrap(),
                issuer: issuer.url.clone(),
                audience: vec!["web-client".into()],
                jwks_uri: None,
                algorithms: vec![KeyAlg::RS256],
                claims: ClaimMapping {
                    permissions: Some(ClaimPath::Name("custom:channels".into())),
                    // Tokens without the claim may neither subscribe nor publish.
                    default_permissions: Some(Permissions {
                        subscribe: Some(vec![]),
                        publish: Some(vec![]),
                    }),
                    ..ClaimMapping::default()
                },
            }],
        },
    );
    // An ID token (aud) and an access token (client_id, no aud), as Cognito issues them.
    let channels = r#"{"subscribe":["room-*"],"publish":["room-*"]}"#;
    let id_token = issuer.token(
        "idp-1",
        "rsa-private.pem",
        json!({"sub": "u-1", "aud": "web-client", "custom:channels": channels}),
    );
    let mut c = edge.connect(&id_token).await;
    assert_eq!(c.subscribe("room-1").await["type"], "subscribed");
    c.send(json!({"action": "subscribe", "channel": "lobby"}))
        .await;
    let denied = c.recv().await;
    assert_eq!(
        denied["code"], "forbidden",
        "the permissions claim applies: {denied}"
    );
    let access = issuer.token(
        "idp-1",
        "rsa-private.pem",
        json!({"sub": "u-1", "client_id": "web-client", "token_use": "access"}),
    );
    let mut c = edge.connect(&access).await;
    c.send(json!({"action": "subscribe", "channel": "room-1"}))
        .await;
    assert_eq!(
        c.recv().await["code"],
        "forbidden",
        "defaultPermissions apply without the claim"
    );

    let wrong_aud = issuer.token(
        "idp-1",
        "rsa-private.pem",
        json!({"sub": "u", "aud": "other"}),
    );
    let (status, why) = refusal(&edge, &wrong_aud).await;
    assert_eq!(status, 401);
    assert!(why.contains("audience"), "{why}");
    let stranger = Issuer::start("/elsewhere").await;
    stranger.publish("idp-1", "rsa-private.pem");
    let wrong_iss = stranger.token(
        "idp-1",
        "rsa-private.pem",
        json!({"sub": "u", "aud": "web-client"}),
    );
    assert_eq!(refusal(&edge, &wrong_iss).await.0, 401);
    assert_eq!(
        stranger.fetches.load(Ordering::SeqCst),
        0,
        "an unknown iss is never fetched"
    );
    let forged = issuer.token(
        "idp-1",
        "rsa2-private.pem",
        json!({"sub": "u", "aud": "web-client"}),
    );
    assert_eq!(refusal(&edge, &forged).await.0, 401);

    // Made-up kids cannot make Echo hammer the issuer.
    let fetched = issuer.fetches.load(Ordering::SeqCst);
    for i in 0..20 {
        let junk = issuer.token(
            &format!("junk-{i}"),
            "rsa-private.pem",
            json!({"sub": "u", "aud": "web-client"}),
        );
        assert_eq!(refusal(&edge, &junk).await.0, 401);
    }
    assert!(
        issuer.fetches.load(Ordering::SeqCst) <= fetched + 1,
        "{} fetches for 20 unknown kids",
        issuer.fetches.load(Ordering::SeqCst) - fetched
    );

    // The issuer rotates: its new key's tokens connect once the refetch interval has passed.
    issuer.publish("idp-2", "rsa2-private.pem");
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let rotated = issuer.token(
        "idp-2",
        "rsa2-private.pem",
        json!({"sub": "u-2", "aud": "web-client"}),
    );
    edge.connect(&rotated).await.close().await;
}
