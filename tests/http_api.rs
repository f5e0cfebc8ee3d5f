//! The HTTP API on the local edge: publishing from an application server to WebSocket
//! subscribers through the channel's functions, history, and every refusal with its status.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use echo_core::function::FunctionOutput;
use echo_tests::TestEdge;
use serde_json::{Value, json};

/// `method` on `path` with `token` as a bearer token (if any) and `body`: status and JSON body.
async fn call(
    edge: &TestEdge,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let mut request = edge
        .http()
        .request(method, format!("http://{}{path}", edge.edge.addr))
        .body(body.to_owned());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "{path}"
    );
    (status, response.json().await.unwrap())
}

const ANGRY: &str = "/v1/apps/chat-demo/channels/angry/messages";

/// A request (method, path, bearer token, body) and the status and code it must get.
type Case<'a> = (
    reqwest::Method,
    &'a str,
    Option<&'a str>,
    &'a str,
    u16,
    &'a str,
);

#[tokio::test(flavor = "multi_thread")]
async fn a_server_publishes_to_websocket_subscribers_and_reads_history() {
    let mut functions = echo_chat_demo::functions();
    functions.register_sync("drop-all", |_| Ok(FunctionOutput::drop("not today")));
    let edge = TestEdge::start_with(|_| {}, functions).await;
    let (status, body) = edge
        .put_associations(
            r#"{"apps":{"chat-demo":{"channels":{"angry":{"functions":["angry"]},
                "void":{"functions":["drop-all"]}}}}}"#,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let admin = edge.admin_token("chat-demo");
    let mut sub = edge.connect(&edge.token("chat-demo", "sub")).await;
    sub.subscribe("angry").await;

    let post = |body: &'static str| call(&edge, reqwest::Method::POST, ANGRY, Some(&admin), body);
    let (status, answer) = post(r#"{"data": {"text": "shipped"}, "id": "order-1"}"#).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({"channel": "angry", "seq": 1, "id": "order-1"})
    );
    let delivered = sub.recv().await;
    assert_eq!(delivered["data"]["text"], "SHIPPED!!!");
    assert_eq!(delivered["seq"], 1);
    assert_eq!(delivered["from"], "admin");
    // Echo makes up an id when none is given.
    let (_, answer) = post(r#"{"data": {"text": "two"}}"#).await;
    assert_eq!(answer["seq"], 2);
    assert_eq!(answer["id"].as_str().map(str::len), Some(16), "{answer}");
    let (_, answer) = post(r#"{"data": {"text": "three"}}"#).await;
    assert_eq!(answer["seq"], 3);

    let (status, answer) = call(
        &edge,
        reqwest::Method::POST,
        "/v1/apps/chat-demo/channels/void/messages",
        Some(&admin),
        r#"{"data": 1, "id": "d1"}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        answer,
        json!({"channel": "void", "id": "d1", "dropped": true, "reason": "not today"})
    );

    let (status, page) = call(&edge, reqwest::Method::GET, ANGRY, Some(&admin), "").await;
    assert_eq!(status, 200);
    let seqs: Vec<u64> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(page["more"], false);
    assert_eq!(page["messages"][0]["data"]["text"], "SHIPPED!!!");
    let path = format!("{ANGRY}?since=1&limit=1");
    let (_, page) = call(&edge, reqwest::Method::GET, &path, Some(&admin), "").await;
    assert_eq!(page["messages"][0]["seq"], 2);
    assert_eq!(page["more"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_refusal_has_its_status_and_a_code() {
    let edge = TestEdge::start_with(
        |c| {
            c.publish_rate = 1;
            c.publish_burst = 1;
        },
        echo_chat_demo::functions(),
    )
    .await;
    let admin = edge.admin_token("chat-demo");
    let user = edge.token("chat-demo", "u");
    let other_app = edge.admin_token("other-app");
    let big = format!(
        r#"{{"data": "{}"}}"#,
        "x".repeat(echo_core::limits::DEFAULT_MAX_MESSAGE_BYTES)
    );
    let too_many = format!("{ANGRY}?limit=5000");
    use reqwest::Method;
    let cases: Vec<Case> = vec![
        (
            Method::POST,
            ANGRY,
            None,
            r#"{"data":1}"#,
            401,
            "unauthorized",
        ),
        (
            Method::POST,
            ANGRY,
            Some("garbage"),
            r#"{"data":1}"#,
            401,
            "unauthorized",
        ),
        (
            Method::POST,
            ANGRY,
            Some(&user),
            r#"{"data":1}"#,
            403,
            "forbidden",
        ),
        (
            Method::POST,
            ANGRY,
            Some(&other_app),
            r#"{"data":1}"#,
            403,
            "forbidden",
        ),
        (Method::GET, ANGRY, Some(&user), "", 403, "forbidden"),
        (
            Method::POST,
            ANGRY,
            Some(&admin),
            "{not json",
            400,
            "bad_request",
        ),
        (
            Method::POST,
            ANGRY,
            Some(&admin),
            r#"{"text":"no data"}"#,
            400,
            "bad_request",
        ),
        (
            Method::POST,
            "/v1/apps/chat-demo/channels/bad%20name/messages",
            Some(&admin),
            r#"{"data":1}"#,
            400,
            "bad_request",
        ),
        (
            Method::POST,
            "/v1/apps/chat-demo/channels/$status/messages",
            Some(&admin),
            r#"{"data":1}"#,
            403,
            "forbidden",
        ),
        (Method::GET, &too_many, Some(&admin), "", 400, "bad_request"),
        (Method::POST, ANGRY, Some(&admin), &big, 413, "too_large"),
        (
            Method::GET,
            "/v1/apps/chat-demo/nothing",
            Some(&admin),
            "",
            404,
            "not_found",
        ),
        (
            Method::DELETE,
            ANGRY,
            Some(&admin),
            "",
            405,
            "method_not_allowed",
        ),
    ];
    for (method, path, token, body, status, code) in cases {
        let (got, answer) = call(&edge, method.clone(), path, token, body).await;
        assert_eq!(
            (got, answer["code"].as_str()),
            (status, Some(code)),
            "{method} {path}: {answer}"
        );
        assert!(
            answer["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{answer}"
        );
    }
    // One publish fits the allowance; the next is over it.
    let (status, _) = call(&edge, Method::POST, ANGRY, Some(&admin), r#"{"data":1}"#).await;
    assert_eq!(status, 200);
    let (status, answer) = call(&edge, Method::POST, ANGRY, Some(&admin), r#"{"data":2}"#).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (429, Some("rate_limited")),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_reads_a_channels_members() {
    let edge = TestEdge::start().await;
    let mut clients = Vec::new();
    for sub in ["carol", "alice", "bob", "alice"] {
        let mut c = edge.connect(&edge.token("chat-demo", sub)).await;
        c.subscribe("lobby").await;
        clients.push(c);
    }
    let admin = edge.admin_token("chat-demo");
    let path = "/v1/apps/chat-demo/channels/lobby/presence";
    let (status, body) = call(&edge, reqwest::Method::GET, path, Some(&admin), "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["members"],
        json!([
            {"sub": "alice", "connections": 2},
            {"sub": "bob", "connections": 1},
            {"sub": "carol", "connections": 1}
        ])
    );
    assert_eq!(
        (body["seq"].as_u64(), body["more"].as_bool()),
        (Some(3), Some(false))
    );
    let after = format!("{path}?after=alice");
    let (_, body) = call(&edge, reqwest::Method::GET, &after, Some(&admin), "").await;
    assert_eq!(body["members"][0]["sub"], "bob", "{body}");
    let user = edge.token("chat-demo", "alice");
    for (method, path, token, want) in [
        (reqwest::Method::GET, path, Some(user.as_str()), 403),
        (reqwest::Method::GET, path, None, 401),
        (reqwest::Method::POST, path, Some(admin.as_str()), 405),
        (
            reqwest::Method::GET,
            "/v1/apps/chat-demo/channels/lobby/presence?page=2",
            Some(admin.as_str()),
            400,
        ),
        (
            reqwest::Method::GET,
            "/v1/apps/chat-demo/channels/$status/presence",
            Some(admin.as_str()),
            400,
        ),
    ] {
        let (status, body) = call(&edge, method.clone(), path, token, "").await;
        assert_eq!(status, want, "{method} {path}: {body}");
    }
}

/// `DELETE /v1/apps/{app}/users/{sub}/connections`: every connection of the user is told
/// `session_ended` and closed with 4501; other users and other apps are untouched; it takes an
/// admin token of that app.
#[tokio::test(flavor = "multi_thread")]
async fn ending_a_users_sessions_closes_each_of_their_connections() {
    let edge = TestEdge::start().await;
    let mut phone = edge.connect(&edge.token("chat-demo", "ann")).await;
    let mut laptop = edge.connect(&edge.token("chat-demo", "ann")).await;
    let mut bob = edge.connect(&edge.token("chat-demo", "bob")).await;
    let mut elsewhere = edge.connect(&edge.token("other-app", "ann")).await;
    let path = "/v1/apps/chat-demo/users/ann/connections";

    let user = edge.token("chat-demo", "bob");
    let other_admin = edge.admin_token("other-app");
    for (token, status) in [
        (None, 401),
        (Some(user.as_str()), 403),
        (Some(other_admin.as_str()), 403),
    ] {
        let (got, body) = call(&edge, reqwest::Method::DELETE, path, token, "").await;
        assert_eq!(got, status, "{body}");
    }
    phone.silent_for(200).await;

    let admin = edge.admin_token("chat-demo");
    let (status, body) = call(&edge, reqwest::Method::DELETE, path, Some(&admin), "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ended"], 2, "{body}");
    for ann in [&mut phone, &mut laptop] {
        let told = ann.recv().await;
        assert_eq!(told["code"], "session_ended", "{told}");
        assert_eq!(ann.closed().await, Some(4501));
    }
    for other in [&mut bob, &mut elsewhere] {
        assert_eq!(other.subscribe("room").await["type"], "subscribed");
    }
    // Nobody left to end.
    let (status, body) = call(&edge, reqwest::Method::DELETE, path, Some(&admin), "").await;
    assert_eq!((status, body["ended"].as_u64()), (200, Some(0)), "{body}");
}
