//! The DynamoDB store against a DynamoDB-compatible server (dynalite, from `tests/services`;
//! `scripts/test-all.sh` installs it), through the real AWS SDK.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use echo_aws::store::dynamodb::{DynamoStore, Tables};
use echo_core::auth::Claims;
use echo_core::channel::{AppId, ChannelKey, ChannelName};
use echo_core::ids::ConnectionId;
use echo_core::store::ConnectionRecords;
use echo_core::store::Subscriptions;
use echo_core::store::{ConnectionRecord, conformance};
use echo_tests::services;

async fn store(endpoint: &str, shards: u32) -> DynamoStore {
    let store = DynamoStore::new(
        services::dynamodb_client(endpoint),
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
    let db = services::dynalite().await;
    let store = store(&db.endpoint, 4).await;
    conformance::connection_store(&store).await;
    conformance::history_store(&store).await;
    conformance::associations_store(&store).await;
    conformance::presence_store(&store).await;
    // Creating the tables again is harmless.
    store.create_tables().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn subscribers_spread_over_shards_are_all_found() {
    let db = services::dynalite().await;
    let store = store(&db.endpoint, 8).await;
    let app = AppId::new("shards").unwrap();
    let key = ChannelKey::new(app.clone(), ChannelName::new("hot").unwrap());
    let mut ids = Vec::new();
    for i in 0..60 {
        let id = ConnectionId::from(format!("conn-{i}").as_str());
        store
            .put_connection(ConnectionRecord {
                id: id.clone(),
                claims: Claims::new(app.clone(), format!("u{i}"), u64::MAX / 2),
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
            claims: Claims::new(app.clone(), "s", u64::MAX / 2),
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
