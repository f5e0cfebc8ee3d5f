//! The local @connections API and the dev-token endpoint.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use echo_core::limits::DEFAULT_MAX_MESSAGE_BYTES;
use echo_tests::{Client, MANAGE_TOKEN, TestEdge};
use serde_json::{Value, json};

/// An admin watching `$status`, a client, and the client's connection id as `$status` gave it.
async fn connected(edge: &TestEdge) -> (Client, Client, String) {
    let mut admin = edge.connect(&edge.admin_token("chat-demo")).await;
    admin.subscribe("$status").await;
    let c = edge.connect(&edge.token("chat-demo", "a")).await;
    let id = admin.recv().await["data"]["connectionId"]
        .as_str()
        .unwrap()
        .to_owned();
    (admin, c, id)
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_api_posts_reads_and_closes() {
    let edge = TestEdge::start().await;
    let (mut admin, mut c, id) = connected(&edge).await;
    let http = edge.http();

    let r = http
        .post(edge.manage_url(&format!("/@connections/{id}")))
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "the management API needs its token");

    let r = http
        .post(edge.manage_url(&format!("/local/@connections/{id}")))
        .bearer_auth(MANAGE_TOKEN)
        .body(r#"{"type":"notice","text":"from the backend"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    assert_eq!(
        c.recv().await,
        json!({"type": "notice", "text": "from the backend"})
    );

    // API Gateway carries 128 KB at most: one byte more is 413, and nothing reaches the client.
    let fits = format!(r#""{}""#, "x".repeat(DEFAULT_MAX_MESSAGE_BYTES - 2));
    for (body, status) in [(format!("{fits} "), 413), (fits, 200)] {
        let r = http
            .post(edge.manage_url(&format!("/@connections/{id}")))
            .bearer_auth(MANAGE_TOKEN)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status);
        if status == 413 {
            assert_eq!(r.headers()["x-amzn-errortype"], "PayloadTooLargeException");
            let body: Value = r.json().await.unwrap();
            assert!(
                body["message"].as_str().unwrap().contains("message limit"),
                "{body}"
            );
        }
    }
    assert_eq!(
        c.recv().await.as_str().map(str::len),
        Some(DEFAULT_MAX_MESSAGE_BYTES - 2),
        "the frame at the limit arrives, the one over it never did"
    );

    let info: Value = http
        .get(edge.manage_url(&format!("/@connections/{id}")))
        .bearer_auth(MANAGE_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["identity"]["sourceIp"], "127.0.0.1");
    assert!(
        info["connectedAt"].as_str().unwrap().ends_with('Z'),
        "{info}"
    );

    let r = http
        .delete(edge.manage_url(&format!("/@connections/{id}")))
        .bearer_auth(MANAGE_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(c.closed().await, Some(4500));
    assert_eq!(admin.recv().await["data"]["event"], "disconnected");

    for method in [
        reqwest::Method::POST,
        reqwest::Method::GET,
        reqwest::Method::DELETE,
    ] {
        let r = http
            .request(
                method.clone(),
                edge.manage_url(&format!("/@connections/{id}")),
            )
            .bearer_auth(MANAGE_TOKEN)
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 410, "{method} to a gone connection");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_tokens_only_in_dev_mode() {
    let edge = TestEdge::start().await;
    let r: Value = reqwest::get(format!(
        "http://{}/dev/token?app=chat-demo&sub=zoe",
        edge.edge.addr
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(r["sub"], "zoe");
    let mut c = edge.connect(r["token"].as_str().unwrap()).await;
    c.subscribe("boring").await;
    assert_eq!(c.publish("boring", json!(1), "1").await["seq"], 1);
    // No token speaks as Echo itself.
    let r = reqwest::get(format!(
        "http://{}/dev/token?app=chat-demo&sub=%24echo",
        edge.edge.addr
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("reserved"),
        "{body}"
    );

    // A page elsewhere whose name resolves to this machine (DNS rebinding) sends its own Host.
    let http = edge.http();
    let url = format!(
        "http://{}/dev/token?app=chat-demo&role=admin",
        edge.edge.addr
    );
    for (host, status) in [
        ("evil.example:8080".to_owned(), 403),
        (format!("localhost:{}", edge.edge.addr.port()), 200),
    ] {
        let r = http
            .get(&url)
            .header("host", host.as_str())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "Host {host}");
        if status == 403 {
            let body: Value = r.json().await.unwrap();
            assert!(
                body["error"].as_str().unwrap().contains("localhost"),
                "{body}"
            );
        }
    }

    let prod = TestEdge::start_with(|c| c.dev_mode = false, echo_chat_demo::functions()).await;
    let r = reqwest::get(format!("http://{}/dev/token", prod.edge.addr))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_management_api_refuses_to_listen_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = TestEdge::config(dir.path());
    config.manage_listen = "0.0.0.0:0".parse().unwrap();
    let err = echo_edge::start(config).await.unwrap_err();
    assert!(err.to_string().contains("loopback"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn manage_latency_holds_each_request_before_serving_it() {
    const LATENCY: std::time::Duration = std::time::Duration::from_millis(150);
    let edge =
        TestEdge::start_with(|c| c.manage_latency = LATENCY, echo_chat_demo::functions()).await;
    let (_admin, mut c, id) = connected(&edge).await;
    let http = edge.http();
    let url = edge.manage_url(&format!("/@connections/{id}"));

    // Several at once, each answered and delivered.
    let started = std::time::Instant::now();
    let posts = (0..4).map(|i| {
        http.post(&url)
            .bearer_auth(MANAGE_TOKEN)
            .body(format!(r#"{{"n":{i}}}"#))
            .send()
    });
    let answers = futures_util::future::join_all(posts).await;
    let took = started.elapsed();
    for a in answers {
        assert_eq!(a.unwrap().status(), 200);
    }
    assert!(took >= LATENCY, "answered after {took:?}");
    let mut got: Vec<u64> = Vec::new();
    for _ in 0..4 {
        got.push(c.recv().await["n"].as_u64().unwrap());
    }
    got.sort_unstable();
    assert_eq!(got, [0, 1, 2, 3]);

    let started = std::time::Instant::now();
    let r = http
        .get(&url)
        .bearer_auth(MANAGE_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(started.elapsed() >= LATENCY, "a read waits too");
}

/// The value of the sample `name` (with its labels, as rendered) in Prometheus text.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_what_happens_in_prometheus_text() {
    let edge = TestEdge::start_with(
        |c| {
            c.publish_rate = 1;
            c.publish_burst = 2;
        },
        echo_chat_demo::functions(),
    )
    .await;
    let scrape = || async {
        edge.http()
            .get(edge.manage_url("/metrics"))
            .bearer_auth(MANAGE_TOKEN)
            .send()
            .await
            .unwrap()
    };
    let unauthorized = edge.http().get(edge.manage_url("/metrics")).send().await;
    assert_eq!(unauthorized.unwrap().status(), 403);
    let before = scrape().await;
    assert_eq!(before.status(), 200);
    assert!(
        before.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
    );

    let mut a = edge.connect(&edge.token("chat-demo", "a")).await;
    let mut b = edge.connect(&edge.token("chat-demo", "b")).await;
    a.subscribe("angry").await;
    b.subscribe("angry").await;
    a.publish("angry", json!({"text": "hi"}), "m1").await;
    assert_eq!(b.recv().await["data"]["text"], "😡 HI!!! 😡");
    // Past the allowance (two subscribes and one publish of a burst of two).
    a.send(json!({"action": "publish", "channel": "angry", "data": 1, "id": "m2"}))
        .await;
    let (refused, _) = a.recv_until("error").await;
    assert_eq!(refused["code"], "rate_limited", "{refused}");
    assert_eq!(edge.refused(&edge.url("not-a-token")).await, 401);

    let text = scrape().await.text().await.unwrap();
    for (name, value) in [
        ("echo_messages_published_total", 1.0),
        ("echo_messages_delivered_total", 2.0),
        (
            "echo_function_duration_seconds_count{function=\"angry\"}",
            1.0,
        ),
        (
            "echo_function_duration_seconds_count{function=\"emojify\"}",
            1.0,
        ),
        ("echo_rate_limited_total", 1.0),
        (
            "echo_connections_refused_total{reason=\"unauthorized\"}",
            1.0,
        ),
        ("echo_connections", 2.0),
    ] {
        assert_eq!(sample(&text, name), value, "{name} in\n{text}");
    }
    assert!(
        text.contains("# TYPE echo_fanout_duration_seconds histogram"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_edge_serves_the_site_it_is_given_and_nothing_else() {
    // The test edge is given the chat demo's, as echoctl gives it.
    let edge = TestEdge::start().await;
    let client = reqwest::Client::new();
    let at = |path: &str| format!("http://{}{path}", edge.edge.addr);
    let page = client.get(at("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let script = client.get(at("/echo.js")).send().await.unwrap();
    assert_eq!(script.status(), 200);
    assert!(
        script
            .text()
            .await
            .unwrap()
            .contains("export { EchoClient }")
    );
    let module = client.get(at("/echo/client.js")).send().await.unwrap();
    assert_eq!(module.status(), 200);
    assert!(
        module
            .text()
            .await
            .unwrap()
            .contains("export class EchoClient")
    );
    assert_eq!(
        client.get(at("/nope.js")).send().await.unwrap().status(),
        404
    );
    assert_eq!(
        client.post(at("/app.js")).send().await.unwrap().status(),
        405
    );

    // An edge given no site serves no page; its API and upgrade are the same.
    let bare = TestEdge::start_with(
        |c| c.site = echo_edge::site::Site::default(),
        echo_chat_demo::functions(),
    )
    .await;
    let r = client
        .get(format!("http://{}/", bare.edge.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = client
        .get(format!("http://{}/healthz", bare.edge.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
