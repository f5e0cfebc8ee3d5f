//! The Rust client against a real edge: requests and replies, errors, and recovery after
//! network failures, maximum connection age and idle timeouts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use echo_client::{Client, ErrorCode, Event, Options, Published, State, Subscription};
use echo_tests::TestEdge;
use echo_tests::proxy::Proxy;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

fn base(addr: std::net::SocketAddr) -> String {
    format!("ws://{addr}/")
}

async fn connect(edge: &TestEdge, sub: &str, options: Options) -> Client {
    connect_to(base(edge.edge.addr), edge.token("chat-demo", sub), options).await
}

async fn connect_to(url: String, token: String, options: Options) -> Client {
    Client::builder(url)
        .token(token)
        .options(options)
        .connect()
        .await
        .expect("connects")
}

/// Options that reconnect quickly.
fn quick() -> Options {
    Options {
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        ..Options::default()
    }
}

async fn next(sub: &mut Subscription) -> echo_client::Message {
    timeout(WAIT, sub.recv())
        .await
        .expect("a message in time")
        .expect("the subscription is open")
}

async fn wait_event(
    events: &mut broadcast::Receiver<Event>,
    want: impl Fn(&Event) -> bool,
) -> Event {
    timeout(WAIT, async {
        loop {
            match events.recv().await {
                Ok(e) if want(&e) => return e,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("events ended"),
            }
        }
    })
    .await
    .expect("the event in time")
}

#[tokio::test]
async fn publishes_and_receives_through_functions() {
    let edge = TestEdge::start().await;
    let alice = connect(&edge, "alice", quick()).await;
    let bob = connect(&edge, "bob", quick()).await;
    let mut angry = bob.subscribe("angry").await.unwrap();
    assert_eq!(angry.channel(), "angry");

    let ack = alice
        .publish_with_id("angry", json!({"text": "hello"}), Some("m1".into()))
        .await
        .unwrap();
    assert_eq!(ack, Published::Stored { seq: 1 });
    let m = next(&mut angry).await;
    assert_eq!((m.seq, m.id.as_str(), m.from.as_str()), (1, "m1", "alice"));
    assert_eq!(m.data, json!({"text": "😡 HELLO!!! 😡"}));

    let history = alice.history("angry", 0, 10).await.unwrap();
    assert_eq!(history.messages.len(), 1);
    assert_eq!(history.messages[0].data, m.data);
    assert!(!history.more);
    alice.ping().await.unwrap();
    assert_eq!(alice.state(), State::Open);
}

#[tokio::test]
async fn refusals_reject_the_request_that_caused_them() {
    let edge = TestEdge::start().await;
    let c = connect(&edge, "carol", quick()).await;

    let err = c.publish("$status", json!(1)).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Forbidden), "{err}");
    let err = c.subscribe("no spaces").await.unwrap_err();
    assert!(
        matches!(err, echo_client::Error::InvalidChannel(_)),
        "{err}"
    );
    let err = c.subscribe("$status").await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Forbidden), "{err}");
    let err = c
        .publish("boring", json!("x".repeat(200 * 1024)))
        .await
        .unwrap_err();
    assert!(matches!(err, echo_client::Error::TooLarge { .. }), "{err}");
    let err = c.history("$status", 0, 10).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Forbidden), "{err}");

    let _boring = c.subscribe("boring").await.unwrap();
    let err = c.subscribe("boring").await.unwrap_err();
    assert!(
        matches!(err, echo_client::Error::AlreadySubscribed(_)),
        "{err}"
    );
    // The connection is still usable after the refusals.
    assert!(matches!(
        c.publish("boring", json!("ok")).await.unwrap(),
        Published::Stored { .. }
    ));

    let refused = Client::builder(base(edge.edge.addr))
        .token("not-a-token")
        .connect()
        .await
        .unwrap_err();
    assert_eq!(refused, echo_client::Error::Unauthorized);
}

#[tokio::test]
async fn hook_denials_are_typed_errors_carrying_the_reason() {
    let mut functions = echo_chat_demo::functions();
    functions.register_hook("admit", |input: Value| async move {
        Ok(if input["user"]["sub"] == "mallory" {
            json!({"action": "deny", "reason": "mallory is banned"})
        } else {
            json!({"action": "allow"})
        })
    });
    let edge = TestEdge::start_with(|_| {}, functions).await;
    let (status, body) = edge
        .put_associations(
            r#"{"apps":{"chat-demo":{"onConnect":["admit"],"channels":{"members":{"onSubscribe":["members"]}}}}}"#,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let refused = Client::builder(base(edge.edge.addr))
        .token(edge.token("chat-demo", "mallory"))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(
        refused,
        echo_client::Error::Denied("mallory is banned".into())
    );

    let guest = connect(&edge, "guest", quick()).await;
    let denied = guest.subscribe("members").await.unwrap_err();
    assert_eq!(denied.code(), Some(ErrorCode::Forbidden), "{denied}");
    assert!(denied.to_string().contains("guest is not one"), "{denied}");
    let ada = connect(&edge, "ada", quick()).await;
    ada.subscribe("members").await.unwrap();
}

#[tokio::test]
async fn a_severed_connection_recovers_every_message_in_order() {
    let edge = TestEdge::start().await;
    let proxy = Proxy::start(edge.edge.addr).await;
    let away = connect_to(base(proxy.addr), edge.token("chat-demo", "away"), quick()).await;
    let mut events = away.events();
    let mut boring = away.subscribe("boring").await.unwrap();
    let publisher = connect(&edge, "publisher", quick()).await;
    publisher.publish("boring", json!(0)).await.unwrap();
    assert_eq!(next(&mut boring).await.data, json!(0));

    proxy.sever();
    wait_event(&mut events, |e| matches!(e, Event::Reconnecting { .. })).await;
    assert_eq!(away.state(), State::Reconnecting);
    for i in 1..=20 {
        publisher.publish("boring", json!(i)).await.unwrap();
    }
    // A publish made while away waits for the connection and is acked after it.
    let queued = tokio::spawn({
        let away = away.clone();
        async move { away.publish("boring", json!("from away")).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.restore();

    wait_event(&mut events, |e| matches!(e, Event::Open { planned: false })).await;
    let mut seen = Vec::new();
    for _ in 1..=21 {
        let m = next(&mut boring).await;
        seen.push((m.seq, m.data));
    }
    let expected: Vec<(u64, Value)> = (1..=20)
        .map(|i| (i + 1, json!(i)))
        .chain([(22, json!("from away"))])
        .collect();
    assert_eq!(seen, expected);
    assert_eq!(
        queued.await.unwrap().unwrap(),
        Published::Stored { seq: 22 }
    );
    // Nothing more: no message was delivered twice.
    assert!(
        timeout(Duration::from_millis(300), boring.recv())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_publish_whose_ack_was_lost_is_sent_again_and_stored_once() {
    let edge = TestEdge::start().await;
    let proxy = Proxy::start(edge.edge.addr).await;
    let away = connect_to(base(proxy.addr), edge.token("chat-demo", "away"), quick()).await;
    let mut events = away.events();
    let watcher = connect(&edge, "watcher", quick()).await;
    let mut boring = watcher.subscribe("boring").await.unwrap();
    away.publish("boring", json!("warm")).await.unwrap();
    assert_eq!(next(&mut boring).await.data, json!("warm"));

    // Stored and delivered, but its ack never reaches the publisher.
    proxy.mute();
    let publishing = tokio::spawn({
        let away = away.clone();
        async move {
            away.publish_with_id("boring", json!("once"), Some("order-7".into()))
                .await
        }
    });
    let m = next(&mut boring).await;
    assert_eq!((m.seq, m.id.as_str()), (2, "order-7"));
    proxy.sever();
    wait_event(&mut events, |e| matches!(e, Event::Reconnecting { .. })).await;
    proxy.restore();
    // Sent again with its id once reconnected: Echo answers with the first seq.
    assert_eq!(
        publishing.await.unwrap().unwrap(),
        Published::Stored { seq: 2 }
    );
    assert!(
        timeout(Duration::from_millis(300), boring.recv())
            .await
            .is_err(),
        "delivered once"
    );
    let page = watcher.history("boring", 0, 10).await.unwrap();
    assert_eq!(page.messages.len(), 2, "stored once");
}

#[tokio::test]
async fn a_gap_longer_than_the_replay_is_filled_from_history() {
    let edge = TestEdge::start().await;
    let proxy = Proxy::start(edge.edge.addr).await;
    let away = connect_to(base(proxy.addr), edge.token("chat-demo", "away"), quick()).await;
    let mut events = away.events();
    let mut room = away.subscribe("room").await.unwrap();
    proxy.sever();
    wait_event(&mut events, |e| matches!(e, Event::Reconnecting { .. })).await;

    // More than the 1,000 messages a resubscribe replays.
    let publisher = connect(&edge, "publisher", quick()).await;
    let total = 1_250u64;
    for i in 1..=total {
        publisher.publish("room", json!(i)).await.unwrap();
    }
    proxy.restore();
    for i in 1..=total {
        let m = next(&mut room).await;
        assert_eq!((m.seq, m.data), (i, json!(i)));
    }
    publisher.publish("room", json!("live")).await.unwrap();
    assert_eq!(next(&mut room).await.seq, total + 1);
}

#[tokio::test]
async fn the_connection_is_replaced_before_its_maximum_age_without_loss() {
    let edge = TestEdge::start_with(
        |c| c.max_connection_age = Duration::from_secs(2),
        echo_chat_demo::functions(),
    )
    .await;
    let options = Options {
        renew_after: Duration::from_millis(800),
        ..quick()
    };
    let client = connect(&edge, "long-lived", options.clone()).await;
    let mut events = client.events();
    let mut boring = client.subscribe("boring").await.unwrap();
    // The publisher outlives the 2 s too, renewing its connection the same way.
    let publisher = connect(&edge, "publisher", options).await;

    // Publish across several replacements; the edge would close any connection at 2 s.
    let sending = tokio::spawn(async move {
        for i in 1..=60u64 {
            publisher.publish("boring", json!(i)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    for i in 1..=60u64 {
        let m = next(&mut boring).await;
        assert_eq!((m.seq, m.data), (i, json!(i)));
    }
    sending.await.unwrap();
    let mut planned = 0;
    while let Ok(e) = events.try_recv() {
        assert!(
            !matches!(e, Event::Reconnecting { .. }),
            "the edge closed the connection: {e:?}"
        );
        if e == (Event::Open { planned: true }) {
            planned += 1;
        }
    }
    assert!(planned >= 2, "{planned} planned replacements");
}

#[tokio::test]
async fn keepalive_pings_outlive_the_idle_timeout() {
    let edge = TestEdge::start_with(
        |c| c.idle_timeout = Duration::from_millis(700),
        echo_chat_demo::functions(),
    )
    .await;
    let options = Options {
        ping_interval: Duration::from_millis(200),
        ..quick()
    };
    let client = connect(&edge, "quiet", options).await;
    let mut events = client.events();
    let mut boring = client.subscribe("boring").await.unwrap();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(events.try_recv().is_err(), "no reconnect, no close");
    let publisher = connect(&edge, "publisher", quick()).await;
    publisher
        .publish("boring", json!("still here"))
        .await
        .unwrap();
    assert_eq!(next(&mut boring).await.data, json!("still here"));

    // Without pings the same edge closes an idle client, which then reconnects.
    let idle = connect(
        &edge,
        "idle",
        Options {
            ping_interval: Duration::from_secs(3600),
            ..quick()
        },
    )
    .await;
    let mut idle_events = idle.events();
    let e = wait_event(&mut idle_events, |e| {
        matches!(e, Event::Reconnecting { .. })
    })
    .await;
    assert!(
        matches!(
            e,
            Event::Reconnecting {
                code: Some(1001),
                ..
            }
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn close_ends_everything() {
    let edge = TestEdge::start().await;
    let client = connect(&edge, "leaving", quick()).await;
    let mut boring = client.subscribe("boring").await.unwrap();
    let mut events = client.events();
    client.close().await;
    assert_eq!(client.state(), State::Closed);
    assert!(timeout(WAIT, boring.recv()).await.unwrap().is_none());
    assert!(matches!(
        wait_event(&mut events, |e| matches!(e, Event::Closed { .. })).await,
        Event::Closed {
            code: Some(1000),
            ..
        }
    ));
    assert_eq!(
        client.publish("boring", json!(1)).await.unwrap_err(),
        echo_client::Error::Closed
    );
}

#[tokio::test]
async fn a_token_provider_is_asked_again_on_reconnect() {
    let edge = TestEdge::start().await;
    let proxy = Proxy::start(edge.edge.addr).await;
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let token = edge.token("chat-demo", "provided");
    let client = Client::builder(base(proxy.addr))
        .token_provider({
            let asked = asked.clone();
            move || {
                let token = token.clone();
                let n = asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async move {
                    // The second token is refused once, then a good one is given.
                    if n == 1 {
                        Ok("expired".to_owned())
                    } else {
                        Ok(token)
                    }
                }
            }
        })
        .options(quick())
        .connect()
        .await
        .unwrap();
    let mut events = client.events();
    proxy.sever();
    proxy.restore();
    wait_event(&mut events, |e| matches!(e, Event::Open { .. })).await;
    assert!(asked.load(std::sync::atomic::Ordering::SeqCst) >= 3);
    client.ping().await.unwrap();
}

/// A fan-out retried by Lambda posts the same message again: the client hands it over once.
#[tokio::test]
async fn a_message_delivered_twice_is_handed_over_once() {
    let edge = TestEdge::start().await;
    let mut status = edge.connect(&edge.admin_token("chat-demo")).await;
    status.subscribe("$status").await;
    let client = connect(&edge, "dup", quick()).await;
    let id = loop {
        let v = status.recv().await;
        if v["data"]["event"] == "connected" && v["data"]["user"] == "dup" {
            break v["data"]["connectionId"].as_str().unwrap().to_owned();
        }
    };
    let mut boring = client.subscribe("boring").await.unwrap();
    let publisher = connect(&edge, "publisher", quick()).await;
    publisher.publish("boring", json!("first")).await.unwrap();
    let first = next(&mut boring).await;
    // The same message again, as a retried fan-out would post it, then the next one.
    let frame = json!({"type": "message", "channel": "boring", "seq": first.seq, "id": first.id,
        "data": first.data, "from": first.from, "ts": first.ts});
    let posted = edge
        .http()
        .post(edge.manage_url(&format!("/@connections/{id}")))
        .bearer_auth(echo_tests::MANAGE_TOKEN)
        .body(frame.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status().as_u16(), 200);
    publisher.publish("boring", json!("second")).await.unwrap();
    let second = next(&mut boring).await;
    assert_eq!((second.seq, second.data), (first.seq + 1, json!("second")));
    assert!(
        timeout(Duration::from_millis(300), boring.recv())
            .await
            .is_err()
    );
}

/// With a token provider, the client presents a new token (`refresh`) ahead of the old one's
/// expiry: past that expiry it goes on publishing on the same connection.
#[tokio::test]
async fn a_token_is_refreshed_ahead_of_its_expiry_without_reconnecting() {
    let edge = TestEdge::start().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // The first token is accepted at connect (5 s of tolerated skew) and expired 2 s later.
    let mut expiring = TestEdge::claims("chat-demo", "refresher");
    expiring.exp = now - 3;
    let tokens = [
        edge.token_for(&expiring),
        edge.token("chat-demo", "refresher"),
    ];
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let client = Client::builder(base(edge.edge.addr))
        .token_provider({
            let asked = asked.clone();
            move || {
                let n = asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let token = tokens[n.min(1)].clone();
                async move { Ok(token) }
            }
        })
        .options(quick())
        .connect()
        .await
        .unwrap();
    let mut events = client.events();
    let mut boring = client.subscribe("boring").await.unwrap();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(
        client
            .publish("boring", json!("after expiry"))
            .await
            .unwrap(),
        Published::Stored { seq: 1 }
    );
    assert_eq!(next(&mut boring).await.data, json!("after expiry"));
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert!(
        events.try_recv().is_err(),
        "no reconnect, no error: the same connection carried on"
    );
}

/// Presence: the member list a presence subscription keeps, joins and leaves of users (not
/// connections), and the list kept across a reconnect, who came and went meanwhile told.
#[tokio::test]
async fn a_presence_subscription_keeps_the_member_list_across_reconnects() {
    use echo_client::SubscribeOptions;
    let edge = TestEdge::start().await;
    let proxy = Proxy::start(edge.edge.addr).await;
    let watcher = connect_to(
        base(proxy.addr),
        edge.token("chat-demo", "watcher"),
        quick(),
    )
    .await;
    let mut events = watcher.events();
    let presence = SubscribeOptions {
        presence: true,
        ..SubscribeOptions::default()
    };
    let room = watcher.subscribe_with("lobby", presence).await.unwrap();
    let joined = |who: &'static str, live: bool| move |e: &Event| matches!(e, Event::Join { sub, seq, .. } if sub == who && seq.is_some() == live);
    wait_event(&mut events, joined("watcher", false)).await;
    let names = |room: &Subscription| {
        room.members()
            .unwrap()
            .into_iter()
            .map(|m| format!("{}:{}", m.sub, m.connections))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&room), ["watcher:1"]);

    let alice = connect(&edge, "alice", quick()).await;
    let _a = alice.subscribe("lobby").await.unwrap();
    wait_event(&mut events, joined("alice", true)).await;
    let phone = connect(&edge, "alice", quick()).await;
    let _p = phone.subscribe("lobby").await.unwrap();
    let list = watcher.presence("lobby").await.unwrap();
    let counted: Vec<_> = list
        .members
        .iter()
        .map(|m| (m.sub.as_str(), m.connections))
        .collect();
    assert_eq!(counted, [("alice", 2), ("watcher", 1)]);
    assert!(list.seq >= 2, "{list:?}");
    alice.close().await;
    phone.unsubscribe("lobby").await.unwrap();
    wait_event(
        &mut events,
        |e| matches!(e, Event::Leave { sub, seq: Some(_), .. } if sub == "alice"),
    )
    .await;
    assert_eq!(names(&room), ["watcher:1"]);

    // Away: bob comes, and is told on the way back.
    proxy.sever();
    wait_event(&mut events, |e| matches!(e, Event::Reconnecting { .. })).await;
    let bob = connect(&edge, "bob", quick()).await;
    let _b = bob.subscribe("lobby").await.unwrap();
    proxy.restore();
    wait_event(&mut events, joined("bob", false)).await;
    assert_eq!(names(&room), ["bob:1", "watcher:1"]);
    let refused = watcher.presence("$status").await.unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::Forbidden));
}

/// End-to-end encryption through a real edge: the key's holders read, a wrong key gets a
/// `DecryptError` event per message (with its seq) and nothing handed over, a rotated key reads
/// old and new, history decrypts, and the edge refuses plaintext on a channel marked encrypted.
#[tokio::test]
async fn encrypted_channels_read_with_the_key_and_report_what_does_not_decrypt() {
    use echo_client::e2e::{DecryptError, Key};
    let edge = TestEdge::start().await;
    let (k1, k2) = (Key::from_bytes([1; 32]), Key::from_bytes([2; 32]));
    let impostor = Key::from_bytes([3; 32]).with_id(k2.id()).unwrap();
    let alice = connect(&edge, "alice", quick()).await;
    let bob = connect(&edge, "bob", quick()).await;
    let mallory = connect(&edge, "mallory", quick()).await;
    let refused = alice
        .publish("secret", json!({"text": "plain"}))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::BadRequest), "{refused}");
    alice.encrypt_channel("secret", vec![k1.clone()]).unwrap();
    bob.encrypt_channel("secret", vec![k2.clone(), k1.clone()])
        .unwrap();
    mallory.encrypt_channel("secret", vec![impostor]).unwrap();
    let mut events = mallory.events();
    let mut b = bob.subscribe("secret").await.unwrap();
    let mut m = mallory.subscribe("secret").await.unwrap();

    let first = alice
        .publish("secret", json!({"text": "under k1"}))
        .await
        .unwrap();
    alice
        .encrypt_channel("secret", vec![k2.clone(), k1.clone()])
        .unwrap();
    alice
        .publish("secret", json!({"text": "under k2"}))
        .await
        .unwrap();
    assert_eq!(next(&mut b).await.data, json!({"text": "under k1"}));
    assert_eq!(next(&mut b).await.data, json!({"text": "under k2"}));
    let Published::Stored { seq: first_seq } = first else {
        panic!("{first:?}")
    };
    let errors: Vec<_> = [
        wait_event(&mut events, |e| matches!(e, Event::DecryptError { .. })).await,
        wait_event(&mut events, |e| matches!(e, Event::DecryptError { .. })).await,
    ]
    .into_iter()
    .map(|e| match e {
        Event::DecryptError { seq, error, .. } => (seq, error),
        _ => unreachable!(),
    })
    .collect();
    assert_eq!(
        errors,
        [
            (first_seq, DecryptError::UnknownKey(k1.id().to_owned())),
            (first_seq + 1, DecryptError::Failed)
        ]
    );
    assert!(
        timeout(Duration::from_millis(300), m.recv()).await.is_err(),
        "nothing handed over as plaintext"
    );
    let page = bob.history("secret", first_seq - 1, 10).await.unwrap();
    let texts: Vec<_> = page
        .messages
        .iter()
        .map(|m| m.data["text"].clone())
        .collect();
    assert_eq!(texts, [json!("under k1"), json!("under k2")]);
    let page = mallory.history("secret", first_seq, 10).await.unwrap();
    assert_eq!(
        (
            page.messages[0].data.clone(),
            page.messages[0].decrypt_error.clone()
        ),
        (Value::Null, Some(DecryptError::Failed))
    );
}

/// App keys: the client connects with an RS256 token (signed as the app's server signs it, with
/// the private key Echo never sees) and keeps its connection across a rotation to an ES256 key,
/// refreshing with the new key's tokens while the old key is revoked.
#[tokio::test]
async fn an_rs256_token_connects_and_refresh_carries_it_across_a_key_rotation() {
    use echo_core::auth::keys::KeyAlg;
    use echo_core::auth::{AppKey, KeySet, TokenIssuer};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    let edge = TestEdge::start().await;
    let fixture = |name: &str| {
        std::fs::read_to_string(format!(
            "{}/../../tests/fixtures/keys/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    let public = |kid: &str, alg: KeyAlg, pem: &str| AppKey {
        kid: kid.into(),
        app: echo_core::channel::AppId::new("shop").unwrap(),
        alg,
        secret: None,
        public_key: Some(fixture(pem)),
        created: 0,
        revoked: None,
    };
    let mut set = KeySet {
        instance_secret: None,
        keys: vec![
            public("rs-1", KeyAlg::RS256, "rsa-public.pem"),
            public("es-2", KeyAlg::ES256, "ec-public.pem"),
        ],
        issuers: vec![],
    };
    let keys_file = edge.data_dir().join(echo_edge::key_file::KEYS_FILE);
    echo_edge::key_file::write(&keys_file, &set).unwrap();
    let rs =
        TokenIssuer::with_private_key(KeyAlg::RS256, fixture("rsa-private.pem").as_bytes(), "rs-1")
            .unwrap();
    let es =
        TokenIssuer::with_private_key(KeyAlg::ES256, fixture("ec-private.pem").as_bytes(), "es-2")
            .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // The first token is accepted at connect (5 s of tolerated skew) and expired 2 s later.
    let mut expiring = TestEdge::claims("shop", "ann");
    expiring.exp = now - 3;
    let first = rs.issue(&expiring).unwrap();
    let next_token = es.issue(&TestEdge::claims("shop", "ann")).unwrap();
    let signer = Arc::new(Mutex::new(first.clone()));
    let asked = Arc::new(AtomicUsize::new(0));
    let client = Client::builder(base(edge.edge.addr))
        .token_provider({
            let (signer, asked) = (signer.clone(), asked.clone());
            move || {
                asked.fetch_add(1, Ordering::SeqCst);
                let token = signer.lock().unwrap().clone();
                async move { Ok(token) }
            }
        })
        .options(quick())
        .connect()
        .await
        .unwrap();
    let mut events = client.events();
    let mut room = client.subscribe("room").await.unwrap();

    // The app's servers move to the new key, and the old one is revoked.
    *signer.lock().unwrap() = next_token;
    set.keys[0].revoked = Some(now);
    echo_edge::key_file::write(&keys_file, &set).unwrap();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(
        client
            .publish("room", json!("after the rotation"))
            .await
            .unwrap(),
        Published::Stored { seq: 1 }
    );
    assert_eq!(next(&mut room).await.data, json!("after the rotation"));
    assert!(
        asked.load(Ordering::SeqCst) >= 2,
        "refreshed with the new key"
    );
    assert!(
        events.try_recv().is_err(),
        "no reconnect, no error: the same connection carried on"
    );
    // The revoked key's token opens nothing any more.
    assert!(
        Client::builder(base(edge.edge.addr))
            .token(rs.issue(&TestEdge::claims("shop", "ann")).unwrap())
            .options(quick())
            .connect()
            .await
            .is_err()
    );
}

/// The app ends the user's sessions (HTTP API): the client reports `session_ended` and stops,
/// without reconnecting, though its token provider would give it a token.
#[tokio::test]
async fn a_session_the_app_ended_is_not_reconnected() {
    let edge = TestEdge::start().await;
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let token = edge.token("chat-demo", "banned");
    let client = Client::builder(base(edge.edge.addr))
        .token_provider({
            let asked = asked.clone();
            move || {
                asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let token = token.clone();
                async move { Ok(token) }
            }
        })
        .options(quick())
        .connect()
        .await
        .unwrap();
    let mut events = client.events();
    let answer: Value = edge
        .http()
        .delete(format!(
            "http://{}/v1/apps/chat-demo/users/banned/connections",
            edge.edge.addr
        ))
        .bearer_auth(edge.admin_token("chat-demo"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["ended"], 1, "{answer}");
    let said = wait_event(&mut events, |e| matches!(e, Event::Error { .. })).await;
    assert!(
        matches!(
            &said,
            Event::Error {
                error: echo_client::Error::Server {
                    code: ErrorCode::SessionEnded,
                    ..
                },
                ..
            }
        ),
        "{said:?}"
    );
    wait_event(&mut events, |e| matches!(e, Event::Closed { .. })).await;
    assert_eq!(client.state(), State::Closed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        asked.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "no reconnect"
    );
}
