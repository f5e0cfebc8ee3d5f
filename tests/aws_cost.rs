//! What a publish asks of DynamoDB on the AWS path: the message handler over the DynamoDB store
//! (dynalite), every request counted by operation. A publish reads nothing it did not before:
//! the per-connection allowance is counted in the write that reads the record, `order` adds
//! one write, and a publisher-given id one request (its claim).
//!
//! The figures are printed as well as checked; `docs/aws.md` and `bench/README.md` quote them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use echo_core::store::ConnectionRecords;
use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use echo_aws::store::dynamodb::{DynamoStore, Tables};
use echo_core::associations::{Associations, LiveAssociations};
use echo_core::auth::{Claims, TokenVerifier};
use echo_core::channel::{AppId, ChannelKey};
use echo_core::clock::{Clock, ManualClock, SystemClock};
use echo_core::ids::ConnectionId;
use echo_core::limits::Limits;
use echo_core::message::StoredMessage;
use echo_core::publish::{DispatchError, Dispatcher, Publisher};
use echo_core::rate::Allowance;
use echo_core::store::ConnectionRecord;
use echo_tests::dynamo_front::Front;
use echo_tests::services;
use serde_json::json;

/// Fan-out is its own Lambda on AWS; its requests are not the publish's.
struct NoFanout;

#[async_trait]
impl Dispatcher for NoFanout {
    async fn dispatch(&self, _: &ChannelKey, _: &StoredMessage) -> Result<(), DispatchError> {
        Ok(())
    }
}

/// Requests per publish, by operation, over `n` publishes.
fn per_publish(counts: &BTreeMap<String, usize>, n: usize) -> BTreeMap<String, f64> {
    counts
        .iter()
        .map(|(op, c)| (op.clone(), *c as f64 / n as f64))
        .collect()
}

/// The message handler over the DynamoDB store behind `front`'s endpoint, with connections `ids`
/// of `chat-demo` (each its own user but where an id is `user.n`, user `user`), its clock
/// starting on a rate window's boundary.
async fn handler(
    endpoint: &str,
    ids: &[&str],
) -> (Arc<DynamoStore>, message_handler::Deps, ManualClock) {
    let store = Arc::new(DynamoStore::new(
        services::dynamodb_client(endpoint),
        Tables {
            connections: "echo-connections".into(),
            history: "echo-history".into(),
            subscriber_shards: 2,
            history_ttl_secs: 86_400,
        },
    ));
    store.create_tables().await.unwrap();
    let clock = ManualClock::new(SystemClock.now_ms() / 10_000 * 10_000);
    let app = AppId::new("chat-demo").unwrap();
    for id in ids {
        let user = id.split('.').next().unwrap_or(id);
        store
            .put_connection(ConnectionRecord {
                id: ConnectionId::from(*id),
                claims: Claims::new(app.clone(), user, SystemClock.now_secs() + 3600),
                connected_at: clock.now_ms(),
                expires_at: SystemClock.now_secs() + 3600,
            })
            .await
            .unwrap();
    }
    let publisher = Arc::new(Publisher::new(store.clone(), Arc::new(NoFanout)));
    let deps = message_handler::Deps {
        connections: store.clone(),
        presence: Arc::new(echo_core::presence::Presence::new(
            store.clone(),
            publisher.clone(),
        )),
        publisher,
        associations: Arc::new(LiveAssociations::new(
            Associations::parse(
                r#"{"apps":{"chat-demo":{"channels":{"members":{"onSubscribe":["members"]}}}}}"#,
                &|_| true,
            )
            .unwrap(),
        )),
        invoker: Arc::new(echo_chat_demo::functions()),
        gateway: Arc::new(echo_edge::gateway::LocalGateway::new(
            Arc::new(SystemClock),
            16,
            echo_core::limits::DEFAULT_MAX_MESSAGE_BYTES,
        )),
        clock: Arc::new(clock.clone()),
        limits: Limits::default(),
        metrics: Arc::new(echo_core::metrics::NoMetrics),
        admission: Arc::new(echo_core::admission::InStoreAdmission::new(
            store.clone(),
            Allowance::new(100, 200),
        )),
        verifier: TokenVerifier::new(&[7; 32]).unwrap(),
        after_publish: message_handler::AfterPublish::BeforeReply,
    };
    (store, deps, clock)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_publish_costs_one_more_request_with_an_id_or_order_and_nothing_more_for_the_rate() {
    let db = services::dynalite().await;
    let (endpoint, front) = Front::start(&db.endpoint).await;
    let (_store, deps, clock) = handler(&endpoint, &["steady", "plain", "named", "sporadic"]).await;
    // Publishes `n` on the channel named after the connection, with an id and an `order` or
    // without; the answer's JSON.
    let publish = |id: &'static str, n: u64, named: bool, order: bool| {
        let deps = &deps;
        async move {
            let mut frame = json!({"action": "publish", "channel": id, "data": n});
            if named {
                frame["id"] = json!(format!("{id}{n}"));
            }
            if order {
                frame["order"] = json!(n);
            }
            let reply = message_handler::handle_frame(
                deps,
                &ConnectionId::from(id),
                &frame.to_string(),
                false,
            )
            .await
            .unwrap();
            let reply: serde_json::Value = serde_json::from_str(&reply.to_json()).unwrap();
            assert_eq!(reply["type"], "ack", "{reply}");
            reply
        }
    };
    const N: u64 = 20;

    // The first publish of the window, then publishes within it.
    let measure = |id: &'static str, named: bool, order: bool| {
        let front = &front;
        async move {
            publish(id, 1, named, order).await;
            let mark = front.mark();
            for n in 2..=N {
                publish(id, n, named, order).await;
            }
            front.counts_since(mark)
        }
    };
    let plain = measure("plain", false, false).await;
    let named = measure("named", true, false).await;
    // As both clients publish: with an id and an order.
    let steady = measure("steady", true, true).await;
    // The same ids again: duplicates, answered from the claims.
    let mark = front.mark();
    for n in 2..=N {
        let ack = publish("named", n, true, false).await;
        assert_eq!(ack["duplicate"], true, "{ack}");
    }
    let repeated = front.counts_since(mark);
    // One publish per window: each one starts a window's count.
    let mark = front.mark();
    for n in 1..=N {
        clock.advance_ms(2_000);
        publish("sporadic", n, true, true).await;
    }
    let sporadic = front.counts_since(mark);

    let n = (N - 1) as usize;
    println!("DynamoDB requests per publish (publishes within one window):");
    println!("  without an id or order: {:?}", per_publish(&plain, n));
    println!("  with an id:             {:?}", per_publish(&named, n));
    println!("  with an id and order:   {:?}", per_publish(&steady, n));
    println!("  repeating an id:        {:?}", per_publish(&repeated, n));
    println!(
        "  with an id and order, one publish per window: {:?}",
        per_publish(&sporadic, N as usize)
    );
    let ops = |c: &BTreeMap<String, usize>| c.values().sum::<usize>();
    // The rate check, the seq, the message: what a publish cost before (a GetItem for the
    // record, the seq's UpdateItem, the message's PutItem), the read now being the count.
    assert_eq!(
        plain,
        BTreeMap::from([("PutItem".into(), n), ("UpdateItem".into(), 2 * n)])
    );
    // An id adds its claim (a conditional PutItem); its seq goes into the claim in the same
    // batch as the message.
    assert_eq!(
        named,
        BTreeMap::from([
            ("BatchWriteItem".into(), n),
            ("PutItem".into(), n),
            ("UpdateItem".into(), 2 * n)
        ])
    );
    assert_eq!(ops(&steady), ops(&named) + n, "order adds one write");
    // A repeat is counted, finds the claim taken and reads its seq: no seq, no message.
    assert_eq!(
        repeated,
        BTreeMap::from([
            ("GetItem".into(), n),
            ("PutItem".into(), n),
            ("UpdateItem".into(), n)
        ])
    );
    assert_eq!(
        ops(&sporadic),
        ops(&steady) / n * N as usize,
        "the first publish of a window starts it in its one write: the process knows the last"
    );
    assert!(
        !steady.contains_key("GetItem"),
        "no read waits for its turn"
    );
}

/// What presence adds to a subscribe and an unsubscribe: a user's first subscription to a
/// channel (a join) and its last (a leave), against a second connection's, which only updates
/// the member item.
#[tokio::test(flavor = "multi_thread")]
async fn a_join_and_a_leave_cost_three_requests_each_beyond_the_member_item() {
    let db = services::dynalite().await;
    let (endpoint, front) = Front::start(&db.endpoint).await;
    let users: Vec<String> = (0..N_USERS).map(|i| format!("u{i}")).collect();
    let phones: Vec<String> = users.iter().map(|u| format!("{u}.phone")).collect();
    let ids: Vec<&str> = users.iter().chain(&phones).map(String::as_str).collect();
    let (_store, deps, _clock) = handler(&endpoint, &ids).await;
    let send = |id: &str, frame: serde_json::Value| {
        let deps = &deps;
        let id = ConnectionId::from(id);
        async move { message_handler::handle_frame(deps, &id, &frame.to_string(), false).await }
    };
    let subscribe = json!({"action": "subscribe", "channel": "room"});
    let unsubscribe = json!({"action": "unsubscribe", "channel": "room"});
    let measure = |what: &'static str, of: &[String], frame: &serde_json::Value| {
        let (front, frame) = (&front, frame.clone());
        let of = of.to_vec();
        let send = &send;
        async move {
            let mark = front.mark();
            for id in &of {
                let reply = send(id, frame.clone()).await;
                assert!(
                    reply
                        .as_ref()
                        .is_none_or(|r| !r.to_json().contains("error")),
                    "{reply:?}"
                );
            }
            let counts = per_publish(&front.counts_since(mark), of.len());
            println!("  {what}: {counts:?}");
            counts
        }
    };
    println!("DynamoDB requests per subscribe and unsubscribe (the $status event included):");
    let joining = measure("subscribe, the user's first (a join)", &users, &subscribe).await;
    let second = measure(
        "subscribe, the user's second connection",
        &phones,
        &subscribe,
    )
    .await;
    let staying = measure("unsubscribe, not the user's last", &phones, &unsubscribe).await;
    let leaving = measure(
        "unsubscribe, the user's last (a leave)",
        &users,
        &unsubscribe,
    )
    .await;
    let total = |c: &BTreeMap<String, f64>| c.values().sum::<f64>();
    // A join commits its event (the presence channel's counter and the event: UpdateItem and
    // PutItem) on top of the member item's UpdateItem every subscribe makes.
    assert_eq!(
        total(&joining) - total(&second),
        2.0,
        "{joining:?} {second:?}"
    );
    assert_eq!(
        joining.get("UpdateItem").copied().unwrap_or(0.0)
            - second.get("UpdateItem").copied().unwrap_or(0.0),
        1.0
    );
    // A leave commits its event and deletes the member item.
    assert_eq!(
        total(&leaving) - total(&staying),
        3.0,
        "{leaving:?} {staying:?}"
    );
}

const N_USERS: usize = 10;

/// An `onSubscribe` hook asks nothing of DynamoDB: the associations are in the handler's cache,
/// and the hook is a Lambda invocation (here in-process), not a request to the tables.
#[tokio::test(flavor = "multi_thread")]
async fn a_subscribe_hook_costs_no_dynamodb_request() {
    let db = services::dynalite().await;
    let (endpoint, front) = Front::start(&db.endpoint).await;
    let (_store, deps, _clock) = handler(&endpoint, &["ada.1", "ada.2"]).await;
    let subscribe = |id: &'static str, channel: &'static str| {
        let deps = &deps;
        async move {
            let frame = json!({"action": "subscribe", "channel": channel});
            let reply = message_handler::handle_frame(
                deps,
                &ConnectionId::from(id),
                &frame.to_string(),
                false,
            )
            .await;
            assert!(reply.is_none(), "{reply:?}");
        }
    };
    // Each connection's first subscribe to a channel, the user's second connection there (no join).
    subscribe("ada.1", "room").await;
    subscribe("ada.1", "members").await;
    let mark = front.mark();
    subscribe("ada.2", "room").await;
    let plain = front.counts_since(mark);
    let mark = front.mark();
    subscribe("ada.2", "members").await;
    let hooked = front.counts_since(mark);
    println!(
        "DynamoDB requests per subscribe: without a hook {plain:?}, with onSubscribe {hooked:?}"
    );
    assert_eq!(hooked, plain);
}
