//! Who gets in, and what they reach: forged and malformed tokens at the door, cross-app names,
//! and the management API's protection. Each case is a row of docs/security.md.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use echo_core::clock::{Clock, SystemClock};
use echo_tests::{MANAGE_TOKEN, SECRET, TestEdge};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A token signed with the edge's own secret, with `alg` and `claims` as given.
fn signed(alg: Algorithm, claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn good_claims() -> Value {
    json!({"app": "chat-demo", "sub": "mallory", "exp": SystemClock.now_secs() + 600})
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_and_malformed_tokens_are_refused_at_the_door() {
    let edge = TestEdge::start().await;
    let claims = good_claims();
    let without = |field: &str| {
        let mut c = claims.clone();
        c.as_object_mut().unwrap().remove(field);
        c
    };
    let with = |field: &str, v: Value| {
        let mut c = claims.clone();
        c[field] = v;
        c
    };
    let unsigned = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes())
    );
    let cases: Vec<(&str, String)> = vec![
        ("alg none", unsigned),
        (
            "HS512 with the right secret",
            signed(Algorithm::HS512, &claims),
        ),
        (
            "HS384 with the right secret",
            signed(Algorithm::HS384, &claims),
        ),
        (
            "RS256 header on an HMAC signature",
            format!(
                "{}.{}.{}",
                b64(br#"{"alg":"RS256","typ":"JWT"}"#),
                b64(claims.to_string().as_bytes()),
                signed(Algorithm::HS256, &claims)
                    .rsplit('.')
                    .next()
                    .unwrap()
            ),
        ),
        ("no exp", signed(Algorithm::HS256, &without("exp"))),
        ("no app", signed(Algorithm::HS256, &without("app"))),
        ("no sub", signed(Algorithm::HS256, &without("sub"))),
        (
            "the system sender's name as sub",
            signed(Algorithm::HS256, &with("sub", json!("$echo"))),
        ),
        (
            "a reserved sub",
            signed(Algorithm::HS256, &with("sub", json!("$admin"))),
        ),
        (
            "exp as a string",
            signed(Algorithm::HS256, &with("exp", json!("tomorrow"))),
        ),
        (
            "app not a valid id",
            signed(Algorithm::HS256, &with("app", json!("other app/x"))),
        ),
        (
            "unknown role",
            signed(Algorithm::HS256, &with("role", json!("root"))),
        ),
        ("payload changed after signing", {
            let t = signed(Algorithm::HS256, &claims);
            let parts: Vec<&str> = t.split('.').collect();
            let tampered = with("role", json!("admin"));
            format!(
                "{}.{}.{}",
                parts[0],
                b64(tampered.to_string().as_bytes()),
                parts[2]
            )
        }),
    ];
    for (what, token) in cases {
        assert_eq!(edge.refused(&edge.url(&token)).await, 401, "{what}");
    }
    // The same claims, properly signed, get in.
    let ok = edge.connect(&signed(Algorithm::HS256, &claims)).await;
    ok.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn names_cannot_reach_into_another_app() {
    let edge = TestEdge::start().await;
    let mut c = edge.connect(&edge.token("chat-demo", "mallory")).await;
    for channel in ["other-app/room", "../room", "room%2F1", "$status/x"] {
        c.send(json!({"action": "subscribe", "channel": channel}))
            .await;
        let e = c.recv().await;
        assert_eq!(e["type"], "error", "{channel}: {e}");
        assert_eq!(e["code"], "bad_request", "{channel}: {e}");
    }
    // A user token cannot listen to presence.
    c.send(json!({"action": "subscribe", "channel": "$status"}))
        .await;
    assert_eq!(c.recv().await["code"], "forbidden");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_management_api_wants_its_token() {
    let edge = TestEdge::start().await;
    let url = edge.manage_url("/associations");
    let http = reqwest::Client::new();
    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(
        status(http.get(&url).send().await.unwrap()),
        403,
        "no token"
    );
    assert_eq!(
        status(http.get(&url).bearer_auth("guess").send().await.unwrap()),
        403,
        "wrong token"
    );
    assert_eq!(
        status(
            http.get(&url)
                .header(
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=guess/20260101/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=00"
                )
                .send()
                .await
                .unwrap()
        ),
        403,
        "a SigV4 header with another key id"
    );
    assert_eq!(
        status(
            http.get(&url)
                .bearer_auth(MANAGE_TOKEN)
                .send()
                .await
                .unwrap()
        ),
        200
    );
    // The client port does not serve it.
    let client_side = format!("http://{}/associations", edge.edge.addr);
    let r = http
        .get(&client_side)
        .bearer_auth(MANAGE_TOKEN)
        .send()
        .await
        .unwrap();
    assert_ne!(
        r.status().as_u16(),
        200,
        "management routes are not on the client port"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_data_directory_and_the_store_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("new").join("data");
    let edge = echo_edge::start_with(TestEdge::config(&data), echo_chat_demo::functions())
        .await
        .unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "the data directory");
    assert_eq!(
        mode(&data.join("echo.redb")),
        0o600,
        "the store, with every message"
    );
    edge.shutdown().await;
}
