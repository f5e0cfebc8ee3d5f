//! Faithful mode: the edge as API Gateway in front of the real handler, fan-out and function
//! Lambdas under `cargo lambda watch`, which use DynamoDB (dynalite) through the AWS SDK and post
//! back through the edge's @connections API with the SDK's management client.
//!
//! Needs `cargo lambda` and dynalite (`scripts/test-all.sh` installs both). The first run builds
//! the Lambdas, which takes a few minutes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use echo_aws::store::dynamodb::{DynamoStore, Tables};
use echo_core::auth::Claims;
use echo_core::channel::{AppId, ChannelKey, ChannelName};
use echo_core::ids::ConnectionId;
use echo_core::store::{AssociationsStore, ConnectionRecord, ConnectionStore};
use echo_edge::invoker::InProcess;
use echo_tests::{MANAGE_TOKEN, SECRET, TestEdge, services};
use serde_json::json;

/// Subscribers per fan-out invocation: small, so a handful of clients spans several invocations.
const BATCH: usize = 2;

#[tokio::test(flavor = "multi_thread")]
async fn the_aws_code_path_works_end_to_end() {
    let dynamo = services::dynalite().await;
    let store = Arc::new(DynamoStore::new(
        services::dynamodb_client(&dynamo.endpoint),
        Tables {
            connections: "echo-connections".into(),
            history: "echo-history".into(),
            subscriber_shards: 4,
            history_ttl_secs: 86_400,
        },
    ));
    store.create_tables().await.unwrap();
    store
        .save_associations(include_str!("../apps/chat/associations.json"))
        .await
        .unwrap();

    let manage_port = services::free_port();
    let env: Vec<(&str, String)> = vec![
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", MANAGE_TOKEN.into()),
        ("AWS_SECRET_ACCESS_KEY", "local".into()),
        ("AWS_ENDPOINT_URL_DYNAMODB", dynamo.endpoint.clone()),
        ("ECHO_JWT_SECRET", SECRET.into()),
        ("ECHO_CONNECTIONS_TABLE", "echo-connections".into()),
        ("ECHO_HISTORY_TABLE", "echo-history".into()),
        ("ECHO_SUBSCRIBER_SHARDS", "4".into()),
        ("ECHO_FANOUT_FUNCTION", "fanout".into()),
        ("ECHO_FANOUT_BATCH_SIZE", BATCH.to_string()),
        (
            "ECHO_MANAGEMENT_ENDPOINT",
            format!("http://127.0.0.1:{manage_port}/local"),
        ),
    ];
    // The Lambdas call the Lambda API (functions, fan-out) at the same watch they run under; its
    // port is only known once it runs, so they find it through a fixed one chosen here.
    let lambda_port = services::free_port();
    let mut env = env;
    env.push((
        "AWS_ENDPOINT_URL_LAMBDA",
        format!("http://127.0.0.1:{lambda_port}"),
    ));
    let lambdas = services::lambda_watch_on(
        lambda_port,
        &env,
        &[
            "connect-handler",
            "message-handler",
            "fanout",
            "angry",
            "emojify",
        ],
    )
    .await;

    let edge = TestEdge::start_with(
        |c| {
            c.faithful = Some(lambdas.endpoint.clone());
            c.manage_listen = format!("127.0.0.1:{manage_port}").parse().unwrap();
        },
        InProcess::default(),
    )
    .await;

    // Two clients on `angry` get the transformed message.
    let mut a = edge.connect(&edge.token("chat-demo", "alice")).await;
    let mut b = edge.connect(&edge.token("chat-demo", "bob")).await;
    a.subscribe("angry").await;
    b.subscribe("angry").await;
    let ack = a.publish("angry", json!({"text": "hello"}), "m1").await;
    assert_eq!(ack["seq"], 1, "{ack}");
    for client in [&mut a, &mut b] {
        let (m, _) = client.recv_until("message").await;
        assert_eq!(m["data"]["text"], "😡 HELLO!!! 😡");
        assert_eq!(m["from"], "alice");
    }
    assert_eq!(
        edge.refused(&edge.url("garbage")).await,
        401,
        "the connect Lambda refuses bad tokens"
    );

    // A connection that went away without $disconnect is removed at the next fan-out (410).
    let app = AppId::new("chat-demo").unwrap();
    let key = ChannelKey::new(app.clone(), ChannelName::new("angry").unwrap());
    let ghost = ConnectionId::from("ghost-connection");
    store
        .put_connection(ConnectionRecord {
            id: ghost.clone(),
            claims: Claims::new(app.clone(), "ghost", 4_000_000_000),
            connected_at: 0,
            expires_at: 4_000_000_000,
        })
        .await
        .unwrap();
    store.subscribe(&ghost, &key, 10).await.unwrap();
    a.publish("angry", json!({"text": "anyone?"}), "m2").await;
    let started = Instant::now();
    while store.get_connection(&ghost).await.unwrap().is_some() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the stale connection was not removed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!store.subscribers(&key).await.unwrap().contains(&ghost));

    // More subscribers than one fan-out batch: every one of them gets the message.
    let mut crowd = Vec::new();
    for i in 0..5 {
        let mut c = edge
            .connect(&edge.token("chat-demo", &format!("fan{i}")))
            .await;
        c.subscribe("boring").await;
        crowd.push(c);
    }
    assert!(crowd.len() > BATCH * 2);
    a.publish("boring", json!({"text": "to all"}), "m3").await;
    for c in &mut crowd {
        let (m, _) = c.recv_until("message").await;
        assert_eq!(m["data"]["text"], "to all");
    }
    edge.edge.shutdown().await;
}
