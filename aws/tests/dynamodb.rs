//! The DynamoDB store against a DynamoDB-compatible server (dynalite, from
//! `tests/services`; `scripts/test-all.sh` installs it), through the real AWS SDK.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use echo_aws::store::dynamodb::{DynamoStore, Tables};
use echo_core::auth::{Claims, Role};
use echo_core::channel::{AppId, ChannelKey, ChannelName};
use echo_core::ids::ConnectionId;
use echo_core::store::{ConnectionRecord, ConnectionStore, conformance};
use tokio::process::{Child, Command};

struct Dynalite {
    _child: Child,
    endpoint: String,
}

async fn dynalite() -> Dynalite {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bin = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/services/node_modules/.bin/dynalite"
    );
    let child = Command::new(bin)
        .args(["--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("dynalite is installed: (cd tests/services && npm ci)");
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "dynalite did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Dynalite {
        _child: child,
        endpoint: format!("http://127.0.0.1:{port}"),
    }
}

fn client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("local", "local", None, None, "tests"))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

async fn store(endpoint: &str, shards: u32) -> DynamoStore {
    let store = DynamoStore::new(
        client(endpoint),
        Tables {
            connections: "echo-connections".into(),
            history: "echo-history".into(),
            subscriber_shards: shards,
            history_ttl_secs: 86_400,
        },
    );
    store.create_tables().await.unwrap();
    store
}

#[tokio::test(flavor = "multi_thread")]
async fn dynamodb_store_conforms() {
    let db = dynalite().await;
    let store = store(&db.endpoint, 4).await;
    conformance::connection_store(&store).await;
    conformance::history_store(&store).await;
    conformance::associations_store(&store).await;
    // Creating the tables again is harmless.
    store.create_tables().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn subscribers_spread_over_shards_are_all_found() {
    let db = dynalite().await;
    let store = store(&db.endpoint, 8).await;
    let app = AppId::new("shards").unwrap();
    let key = ChannelKey::new(app.clone(), ChannelName::new("hot").unwrap());
    let mut ids = Vec::new();
    for i in 0..60 {
        let id = ConnectionId::from(format!("conn-{i}").as_str());
        store
            .put_connection(ConnectionRecord {
                id: id.clone(),
                claims: Claims {
                    app: app.clone(),
                    sub: format!("u{i}"),
                    role: Role::User,
                    exp: u64::MAX / 2,
                    nbf: None,
                    iat: None,
                    channels: None,
                },
                connected_at: 0,
                expires_at: 4_000_000_000,
            })
            .await
            .unwrap();
        store.subscribe(&id, &key, 10).await.unwrap();
        ids.push(id);
    }
    let mut found = store.subscribers(&key).await.unwrap();
    found.sort();
    ids.sort();
    assert_eq!(found, ids);

    // An expired connection's subscription is not returned, even before TTL deletes it.
    let stale = ConnectionId::from("stale");
    store
        .put_connection(ConnectionRecord {
            id: stale.clone(),
            claims: Claims {
                app: app.clone(),
                sub: "s".into(),
                role: Role::User,
                exp: u64::MAX / 2,
                nbf: None,
                iat: None,
                channels: None,
            },
            connected_at: 0,
            expires_at: 1,
        })
        .await
        .unwrap();
    assert!(
        store.get_connection(&stale).await.unwrap().is_none(),
        "expired records are not read"
    );
}
