//! The AWS handlers when DynamoDB throttles or fails: the SDK retries throttled requests with
//! backoff (safe: a throttled request was not applied), so a short burst of throttling is
//! absorbed; when DynamoDB keeps refusing, the publisher gets a clear `internal` error and
//! nothing is delivered.
//!
//! A small HTTP front (`echo_tests::dynamo_front`) answers DynamoDB's throttling error for the
//! first N requests of the kind it is told to throttle and passes everything else to dynalite.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use echo_core::store::ConnectionRecords;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use echo_aws::store::dynamodb::{DynamoStore, Tables};
use echo_core::associations::{Associations, LiveAssociations};
use echo_core::auth::Claims;
use echo_core::channel::{AppId, ChannelKey, ChannelName};
use echo_core::clock::{Clock, SystemClock};
use echo_core::ids::ConnectionId;
use echo_core::limits::Limits;
use echo_core::message::NewMessage;
use echo_core::protocol::ServerFrame;
use echo_core::publish::Publisher;
use echo_core::store::memory::MemoryStore;
use echo_core::store::{ConnectionRecord, HistoryStore};
use echo_tests::dynamo_front::Front;
use echo_tests::services;

/// A front for `dynalite` with its tables created (unthrottled), then throttling the next
/// `throttle` requests for `operation`.
async fn start_front(
    dynalite: &str,
    operation: &'static str,
    throttle: usize,
) -> (String, Arc<Front>) {
    let (endpoint, front) = Front::start(dynalite).await;
    store(&endpoint).create_tables().await.unwrap();
    front.throttle(operation, throttle);
    (endpoint, front)
}

fn store(endpoint: &str) -> DynamoStore {
    DynamoStore::new(
        services::dynamodb_client(endpoint),
        Tables {
            connections: "echo-connections".into(),
            history: "echo-history".into(),
            subscriber_shards: 2,
            history_ttl_secs: 86_400,
        },
    )
}

fn key() -> ChannelKey {
    ChannelKey::new(
        AppId::new("chat-demo").unwrap(),
        ChannelName::new("boring").unwrap(),
    )
}

fn message(id: &str) -> NewMessage {
    NewMessage {
        id: id.into(),
        data: serde_json::json!(id),
        from: "u".into(),
        ts: SystemClock.now_ms(),
        dedup_window_ms: None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_throttling_is_retried_with_backoff() {
    let db = services::dynalite().await;
    // The seq counter (UpdateItem) is throttled twice: the SDK's third attempt succeeds.
    let (endpoint, front) = start_front(&db.endpoint, "UpdateItem", 2).await;
    let store = store(&endpoint);
    let stored = store.append(&key(), message("a")).await.unwrap();
    assert_eq!(stored.seq, 1);
    assert_eq!(front.throttled.load(Ordering::SeqCst), 2);
    // Nothing was applied twice: the next message is #2, and history has exactly both.
    assert_eq!(store.append(&key(), message("b")).await.unwrap().seq, 2);
    let history = store.range(&key(), 0, 10).await.unwrap();
    assert_eq!(
        history.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn persistent_throttling_gives_the_publisher_a_clear_error() {
    let db = services::dynalite().await;
    let (endpoint, front) = start_front(&db.endpoint, "UpdateItem", usize::MAX).await;
    let history = Arc::new(store(&endpoint));
    let connections = Arc::new(MemoryStore::new());
    let id = ConnectionId("c1".into());
    let app = AppId::new("chat-demo").unwrap();
    connections
        .put_connection(ConnectionRecord {
            id: id.clone(),
            claims: Claims::new(app, "alice", SystemClock.now_secs() + 600),
            connected_at: SystemClock.now_ms(),
            expires_at: SystemClock.now_secs() + 600,
        })
        .await
        .unwrap();
    let gateway = Arc::new(echo_edge::gateway::LocalGateway::new(
        Arc::new(SystemClock),
        16,
        echo_core::limits::DEFAULT_MAX_MESSAGE_BYTES,
    ));
    let publisher = Arc::new(Publisher::new(
        history,
        Arc::new(fanout::Inline(fanout::Deps {
            subscriptions: connections.clone(),
            connections: connections.clone(),
            gateway: gateway.clone(),
            metrics: Arc::new(echo_core::metrics::NoMetrics),
            departures: Arc::new(echo_core::presence::NoDepartures),
        })),
    ));
    let deps = message_handler::Deps {
        connections: connections.clone(),
        presence: Arc::new(echo_core::presence::Presence::new(
            connections.clone(),
            publisher.clone(),
        )),
        publisher,
        associations: Arc::new(LiveAssociations::new(
            Associations::parse(r#"{"apps":{}}"#, &|_| true).unwrap(),
        )),
        invoker: Arc::new(echo_chat_demo::functions()),
        gateway,
        clock: Arc::new(SystemClock),
        limits: Limits::default(),
        metrics: Arc::new(echo_core::metrics::NoMetrics),
        admission: Arc::new(echo_core::admission::InStoreAdmission::new(
            connections.clone(),
            None,
        )),
        verifier: echo_core::auth::TokenVerifier::new(&[7; 32]).unwrap(),
        after_publish: message_handler::AfterPublish::BeforeReply,
    };
    let reply = message_handler::handle_frame(
        &deps,
        &id,
        r#"{"action":"publish","channel":"boring","data":"hi","id":"m1"}"#,
        false,
    )
    .await
    .unwrap();
    let ServerFrame::Error(e) = reply else {
        panic!("expected an error, got {reply:?}");
    };
    assert_eq!(e.code.as_str(), "internal");
    assert_eq!(e.id.as_deref(), Some("m1"));
    assert!(
        front.throttled.load(Ordering::SeqCst) >= 3,
        "the SDK retried before giving up"
    );
}
