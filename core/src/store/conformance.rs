//! The suite every store implementation passes. Adapters call these from their own tests:
//!
//! ```ignore
//! echo_core::store::conformance::history_store(&my_store).await;
//! ```
//!
//! Each function uses fresh random app ids, so it can run against a shared, non-empty store.
//! Failures panic with a message naming the broken guarantee.

// A test suite: failing loudly is its job.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashSet;

use serde_json::json;

use super::{
    AssociationsStore, ConnectionRecord, ConnectionStore, HistoryPage, HistoryStore, Member,
    PageLimit, PresenceStore, PublishGrant, Subscribed,
};
use crate::auth::Claims;
use crate::channel::{AppId, ChannelKey, ChannelName};
use crate::clock::{Clock, SystemClock};
use crate::ids::{ConnectionId, random_hex};
use crate::message::NewMessage;
use crate::rate::Allowance;
use crate::store::StoreError;

fn app() -> AppId {
    AppId::new(format!("conf-{}", random_hex(6))).expect("valid app id")
}

fn key(app: &AppId, ch: &str) -> ChannelKey {
    ChannelKey::new(app.clone(), ChannelName::new(ch).expect("valid channel"))
}

fn record(app: &AppId, id: &str) -> ConnectionRecord {
    ConnectionRecord {
        id: ConnectionId::from(id),
        claims: Claims::new(app.clone(), format!("user-{id}"), 4_000_000_000),
        connected_at: 1_700_000_000_000,
        expires_at: 4_000_000_000,
    }
}

/// Message timestamps are offsets from here (2033): realistic enough for stores that expire by TTL.
const T0: u64 = 2_000_000_000_000;

fn msg(id: &str, ts: u64) -> NewMessage {
    NewMessage {
        id: id.to_owned(),
        data: json!({"text": id}),
        from: "u".to_owned(),
        ts: T0 + ts,
        dedup_window_ms: None,
    }
}

fn set<T: std::hash::Hash + Eq>(v: Vec<T>) -> HashSet<T> {
    v.into_iter().collect()
}

/// Connections and subscriptions.
pub async fn connection_store(store: &dyn ConnectionStore) {
    let app = app();
    let a = ConnectionId::from(format!("{}-a", app).as_str());
    let b = ConnectionId::from(format!("{}-b", app).as_str());
    let room = key(&app, "room");
    let other = key(&app, "other");

    assert_eq!(
        store.get_connection(&a).await.expect("get"),
        None,
        "unknown connection"
    );
    assert!(
        matches!(
            store.subscribe(&a, &room, 10).await,
            Err(StoreError::UnknownConnection(_))
        ),
        "subscribing an unknown connection must fail"
    );

    let ra = record(&app, a.as_str());
    store.put_connection(ra.clone()).await.expect("put a");
    store
        .put_connection(record(&app, b.as_str()))
        .await
        .expect("put b");
    assert_eq!(
        store.get_connection(&a).await.expect("get"),
        Some(ra.clone()),
        "round trip"
    );

    assert_eq!(
        store.subscribe(&a, &room, 10).await.expect("sub"),
        Subscribed::Added
    );
    assert_eq!(
        store.subscribe(&a, &room, 10).await.expect("sub again"),
        Subscribed::AlreadySubscribed,
        "subscribe is idempotent"
    );
    store.subscribe(&b, &room, 10).await.expect("sub b");
    store.subscribe(&a, &other, 10).await.expect("sub other");
    assert_eq!(
        set(store.subscribers(&room).await.expect("subscribers")),
        set(vec![a.clone(), b.clone()])
    );
    assert_eq!(
        set(store.subscriptions(&a).await.expect("subscriptions")),
        set(vec![room.clone(), other.clone()])
    );

    // Another app's channel of the same name is another channel.
    let app2 = app_other(&app);
    assert!(
        store
            .subscribers(&key(&app2, "room"))
            .await
            .expect("isolated")
            .is_empty()
    );

    // The cap holds, and an existing subscription is still fine at the cap.
    assert!(
        matches!(
            store.subscribe(&b, &other, 1).await,
            Err(StoreError::TooManySubscriptions { max: 1 })
        ),
        "subscription cap"
    );
    assert_eq!(
        store.subscribe(&b, &room, 1).await.expect("at cap"),
        Subscribed::AlreadySubscribed
    );

    assert!(store.unsubscribe(&b, &room).await.expect("unsub"));
    assert!(
        !store.unsubscribe(&b, &room).await.expect("unsub again"),
        "unsubscribe is idempotent"
    );
    assert_eq!(
        store.subscribers(&room).await.expect("subscribers"),
        vec![a.clone()]
    );

    let (removed, subs) = store
        .remove_connection(&a)
        .await
        .expect("remove")
        .expect("a existed");
    assert_eq!(removed, ra);
    assert_eq!(set(subs), set(vec![room.clone(), other.clone()]));
    assert!(
        store
            .remove_connection(&a)
            .await
            .expect("remove again")
            .is_none(),
        "removal reported once"
    );
    assert!(
        store
            .subscribers(&room)
            .await
            .expect("subscribers")
            .is_empty(),
        "subscriptions removed with the connection"
    );
    assert!(
        store
            .subscribers(&other)
            .await
            .expect("subscribers")
            .is_empty()
    );
    assert!(store.get_connection(&a).await.expect("get").is_none());
    store.remove_connection(&b).await.expect("remove b");

    renewal_and_expiry(store, &app).await;
    publish_orders(store, &app).await;
    user_connections(store, &app).await;
    app_connection_limit(store).await;
    app_publish_allowance(store).await;
    connect_refusals(store).await;
}

/// A refused connect's refusal, kept for its attempt until it expires.
async fn connect_refusals(store: &dyn ConnectionStore) {
    use crate::connect_attempt::{AttemptId, Refusal};
    let attempt = AttemptId::parse(&format!("attempt-{}-0123456789abcdef", self::app())).unwrap();
    let unknown = AttemptId::parse("unknown-0123456789abcdef-x").unwrap();
    let refusal = Refusal {
        status: 403,
        code: "forbidden".into(),
        message: "mallory is banned; \"quoted\" and ünïcode".into(),
    };
    let t = 1_700_000_000_000;
    store
        .keep_refusal(&attempt, &refusal, t + 60_000)
        .await
        .expect("keep");
    assert_eq!(
        store.refusal(&attempt, t).await.expect("read"),
        Some(refusal)
    );
    assert_eq!(store.refusal(&unknown, t).await.expect("read"), None);
    assert_eq!(
        store.refusal(&attempt, t + 60_000).await.expect("read"),
        None,
        "expired"
    );
}

/// An app's publishes counted per window: at most the limit in one, again in the next, and
/// another app's counted apart.
async fn app_publish_allowance(store: &dyn ConnectionStore) {
    let (app, other) = (self::app(), self::app());
    let allowance = crate::rate::Allowance {
        limit: 3,
        window_ms: 1000,
    };
    let t = 1_700_000_000_000;
    for i in 0..3 {
        assert_eq!(
            store
                .take_app_publish(&app, allowance, t + i)
                .await
                .expect("take"),
            Ok(()),
            "publish {i}"
        );
    }
    assert_eq!(
        store
            .take_app_publish(&app, allowance, t + 400)
            .await
            .expect("take"),
        Err(600),
        "the window is full until its end"
    );
    assert_eq!(
        store
            .take_app_publish(&other, allowance, t + 400)
            .await
            .expect("take"),
        Ok(()),
        "another app counts apart"
    );
    assert_eq!(
        store
            .take_app_publish(&app, allowance, t + 1000)
            .await
            .expect("take"),
        Ok(()),
        "the next window"
    );
}

/// Connections counted against an app's maximum: refused past it, racing connects never over
/// it, a removed one gives its place back, uncounted ones take none.
async fn app_connection_limit(store: &dyn ConnectionStore) {
    let app = self::app();
    let id = |n: &str| format!("{app}-lim-{n}");
    assert!(
        store
            .put_connection_within(record(&app, &id("1")), 2)
            .await
            .expect("put")
    );
    store
        .put_connection(record(&app, &id("plain")))
        .await
        .expect("put");
    assert!(
        store
            .put_connection_within(record(&app, &id("2")), 2)
            .await
            .expect("put")
    );
    assert!(
        !store
            .put_connection_within(record(&app, &id("3")), 2)
            .await
            .expect("put"),
        "the app is full"
    );
    assert_eq!(
        store
            .get_connection(&ConnectionId::from(id("3").as_str()))
            .await
            .expect("get"),
        None,
        "a refused connection is not recorded"
    );
    store
        .remove_connection(&ConnectionId::from(id("plain").as_str()))
        .await
        .expect("remove");
    assert!(
        !store
            .put_connection_within(record(&app, &id("4")), 2)
            .await
            .expect("put"),
        "an uncounted connection frees no place"
    );
    store
        .remove_connection(&ConnectionId::from(id("1").as_str()))
        .await
        .expect("remove");
    assert!(
        store
            .put_connection_within(record(&app, &id("5")), 2)
            .await
            .expect("put"),
        "a removed counted connection gives its place back"
    );
    // Racing connects of another app: exactly its maximum get in.
    let other = self::app();
    let admitted = futures_util::future::join_all(
        (0..8)
            .map(|i| store.put_connection_within(record(&other, &format!("{other}-race-{i}")), 3)),
    )
    .await
    .into_iter()
    .filter(|r| *r.as_ref().expect("put"))
    .count();
    assert_eq!(admitted, 3);
    for i in 0..8 {
        store
            .remove_connection(&ConnectionId::from(format!("{other}-race-{i}").as_str()))
            .await
            .expect("remove");
    }
    for n in ["2", "5"] {
        store
            .remove_connection(&ConnectionId::from(id(n).as_str()))
            .await
            .expect("remove");
    }
}

/// A user's live connections, found by app and user id: no other user's, no other app's.
async fn user_connections(store: &dyn ConnectionStore, app: &AppId) {
    let other_app = self::app();
    let with = |app: &AppId, id: &str, sub: &str| ConnectionRecord {
        claims: Claims::new(app.clone(), sub, 4_000_000_000),
        ..record(app, &format!("{app}-{id}"))
    };
    for r in [
        with(app, "u1", "ann/o'neil"),
        with(app, "u2", "ann/o'neil"),
        with(app, "u3", "ann"),
        with(&other_app, "u4", "ann/o'neil"),
    ] {
        store.put_connection(r).await.expect("put");
    }
    let found = store
        .user_connections(app, "ann/o'neil", 100)
        .await
        .expect("user connections");
    assert_eq!(
        set(found),
        set(vec![
            ConnectionId::from(format!("{app}-u1").as_str()),
            ConnectionId::from(format!("{app}-u2").as_str())
        ])
    );
    assert_eq!(
        store
            .user_connections(app, "ann/o'neil", 1)
            .await
            .expect("user connections")
            .len(),
        1,
        "at most the limit"
    );
    store
        .remove_connection(&ConnectionId::from(format!("{app}-u1").as_str()))
        .await
        .expect("remove");
    assert_eq!(
        store
            .user_connections(app, "ann/o'neil", 100)
            .await
            .expect("user connections"),
        vec![ConnectionId::from(format!("{app}-u2").as_str())],
        "a removed connection is not found"
    );
    for id in ["u2", "u3"] {
        store
            .remove_connection(&ConnectionId::from(format!("{app}-{id}").as_str()))
            .await
            .expect("remove");
    }
    store
        .remove_connection(&ConnectionId::from(format!("{other_app}-u4").as_str()))
        .await
        .expect("remove");
}

/// Settled publish orders: per connection and channel, only rising, read with the record, kept
/// across a renewal, and nothing for a connection that is not known.
async fn publish_orders(store: &dyn ConnectionStore, app: &AppId) {
    let p = ConnectionId::from(format!("{app}-p").as_str());
    let (room, other) = (
        ChannelName::new("ordered").unwrap(),
        ChannelName::new("elsewhere").unwrap(),
    );
    store
        .settle_order(&p, &room, 3)
        .await
        .expect("settle unknown");
    assert_eq!(store.settled_order(&p, &room).await.expect("settled"), 0);
    assert_eq!(store.get_publisher(&p, &room).await.expect("get"), None);
    let rp = record(app, p.as_str());
    store.put_connection(rp.clone()).await.expect("put p");
    assert_eq!(
        store.get_publisher(&p, &room).await.expect("get"),
        Some((rp.clone(), 0))
    );
    for (order, settled) in [(1, 1), (3, 3), (2, 3)] {
        store.settle_order(&p, &room, order).await.expect("settle");
        assert_eq!(
            store.settled_order(&p, &room).await.expect("settled"),
            settled,
            "settled orders only rise"
        );
    }
    assert_eq!(store.settled_order(&p, &other).await.expect("settled"), 0);
    store
        .renew(&p, rp.claims.clone(), rp.expires_at + 60)
        .await
        .expect("renew");
    let (renewed, settled) = store
        .get_publisher(&p, &room)
        .await
        .expect("get")
        .expect("p");
    assert_eq!((renewed.expires_at, settled), (rp.expires_at + 60, 3));
    publish_allowance(store, &p, &room).await;
    store.remove_connection(&p).await.expect("remove p");
    assert_eq!(store.settled_order(&p, &room).await.expect("settled"), 0);
}

/// `take_publish`: the allowance per window holds, also for concurrent calls, and a new window
/// starts a new count.
async fn publish_allowance(store: &dyn ConnectionStore, p: &ConnectionId, room: &ChannelName) {
    let allowance = Allowance {
        limit: 4,
        window_ms: 1000,
    };
    let t = 7_000_000_250;
    let takes =
        futures_util::future::join_all((0..10).map(|_| store.take_publish(p, room, t, allowance)))
            .await;
    let granted = takes
        .iter()
        .filter(|g| matches!(g, Ok(PublishGrant::Granted { settled: 3, .. })))
        .count();
    assert_eq!(
        granted, 4,
        "concurrent publishes beyond the allowance: {takes:?}"
    );
    assert!(
        takes.iter().all(|g| matches!(
            g,
            Ok(PublishGrant::Granted { .. } | PublishGrant::Limited { retry_ms: 750 })
        )),
        "{takes:?}"
    );
    assert!(matches!(
        store.take_publish(p, room, t + 1000, allowance).await,
        Ok(PublishGrant::Granted { .. })
    ));
    let stranger = ConnectionId::from("never-connected");
    assert_eq!(
        store
            .take_publish(&stranger, room, t, allowance)
            .await
            .expect("take"),
        PublishGrant::Unknown
    );
}

/// `renew` replaces the claims and moves the expiry of the record and its subscriptions; a
/// record whose expiry has passed is gone, and nothing lists it as a subscriber.
async fn renewal_and_expiry(store: &dyn ConnectionStore, app: &AppId) {
    let c = ConnectionId::from(format!("{app}-c").as_str());
    let room = key(app, "lobby");
    assert!(
        !store
            .renew(&c, Claims::new(app.clone(), "u-c", 1), 1)
            .await
            .expect("renew unknown"),
        "an unknown connection is not renewed"
    );
    let rc = record(app, c.as_str());
    store.put_connection(rc.clone()).await.expect("put c");
    store.subscribe(&c, &room, 10).await.expect("sub c");
    let mut claims = rc.claims.clone();
    claims.exp += 3600;
    let later = rc.expires_at + 3600;
    assert!(store.renew(&c, claims.clone(), later).await.expect("renew"));
    let renewed = store
        .get_connection(&c)
        .await
        .expect("get")
        .expect("renewed c");
    assert_eq!(
        (renewed.claims, renewed.expires_at),
        (claims.clone(), later)
    );
    assert_eq!(
        store.subscribers(&room).await.expect("subscribers"),
        vec![c.clone()],
        "a renewed connection keeps its subscriptions"
    );
    assert!(
        !lapsed(store).await.contains(&c),
        "a live connection has not lapsed"
    );
    // Renewed to an expiry already past: gone, for frames and for fan-out alike.
    assert!(store.renew(&c, claims, 1).await.expect("renew to the past"));
    assert_eq!(store.get_connection(&c).await.expect("get"), None);
    assert!(
        store
            .subscribers(&room)
            .await
            .expect("subscribers")
            .is_empty(),
        "an expired connection is no subscriber"
    );
    // Kept until removed: the sweep finds it there, and ends it once.
    assert!(
        lapsed(store).await.contains(&c),
        "an expired connection that was not removed has lapsed"
    );
    let removed = store.remove_connection(&c).await.expect("remove c");
    assert_eq!(
        removed.map(|(r, channels)| (r.id, channels)),
        Some((c.clone(), vec![room])),
        "an expired connection is removed with its subscriptions"
    );
    assert!(
        !lapsed(store).await.contains(&c),
        "a removed connection has not lapsed"
    );
}

async fn lapsed(store: &dyn ConnectionStore) -> Vec<ConnectionId> {
    store
        .lapsed(SystemClock.now_secs(), 10_000)
        .await
        .expect("lapsed")
}

fn app_other(app: &AppId) -> AppId {
    AppId::new(format!("{app}-x")).expect("valid app id")
}

/// Sequences and history.
pub async fn history_store(store: &dyn HistoryStore) {
    let app = app();
    let room = key(&app, "room");
    assert_eq!(
        store.latest_seq(&room).await.expect("latest"),
        0,
        "a new channel is at seq 0"
    );
    assert!(store.range(&room, 0, 10).await.expect("range").is_empty());

    for i in 1..=5u64 {
        let m = store
            .append(&room, msg(&format!("m{i}"), 1000 * i))
            .await
            .expect("append");
        assert_eq!(m.seq, i, "seqs start at 1 and increase by one");
        assert_eq!(m.channel.as_str(), "room");
        assert_eq!(m.id, format!("m{i}"));
    }
    assert_eq!(store.latest_seq(&room).await.expect("latest"), 5);
    let got = store.range(&room, 2, 2).await.expect("range");
    assert_eq!(
        got.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![3, 4],
        "range is after `since`, oldest first, limited"
    );
    assert_eq!(got[0].data, json!({"text": "m3"}));
    assert_eq!(got[0].ts, T0 + 3000);
    assert!(store.range(&room, 5, 10).await.expect("range").is_empty());
    pages(store, &room).await;

    // Channels and apps are independent.
    let app2 = app_other(&app);
    assert_eq!(
        store.latest_seq(&key(&app2, "room")).await.expect("latest"),
        0,
        "apps are isolated"
    );
    assert_eq!(
        store
            .append(&key(&app, "other"), msg("o", 1))
            .await
            .expect("append")
            .seq,
        1
    );

    // Pruning keeps the sequence.
    let removed = store.prune(T0 + 3000).await.expect("prune");
    assert!(
        removed >= 3,
        "prune removed {removed}, expected at least the 3 old messages"
    );
    assert_eq!(
        store
            .range(&room, 0, 10)
            .await
            .expect("range")
            .iter()
            .map(|m| m.seq)
            .collect::<Vec<_>>(),
        vec![3, 4, 5]
    );
    assert_eq!(
        store
            .append(&room, msg("m6", 6000))
            .await
            .expect("append")
            .seq,
        6,
        "seq continues after pruning"
    );

    concurrent_appends(store, &key(&app, "busy")).await;
    dedup(store, &app).await;
}

/// Publisher-given ids: committed once per channel within the window.
async fn dedup(store: &dyn HistoryStore, app: &AppId) {
    const WINDOW: u64 = 120_000;
    let once = |id: &str, ts: u64| NewMessage {
        dedup_window_ms: Some(WINDOW),
        ..msg(id, ts)
    };
    let room = key(app, "once");
    assert_eq!(
        store.append(&room, once("a", 0)).await.expect("append").seq,
        1
    );
    assert_eq!(
        store.append(&room, once("b", 0)).await.expect("append").seq,
        2
    );
    match store.append(&room, once("a", WINDOW - 1)).await {
        Err(StoreError::Duplicate { id, seq }) => assert_eq!((id.as_str(), seq), ("a", 1)),
        other => panic!("a repeated id within the window is a duplicate: {other:?}"),
    }
    assert_eq!(
        store.latest_seq(&room).await.expect("latest"),
        2,
        "a duplicate takes no seq"
    );
    assert_eq!(
        store.range(&room, 0, 10).await.expect("range").len(),
        2,
        "a duplicate is not stored"
    );
    // The same id on another channel, or in another app, is another message.
    let elsewhere = key(app, "once-elsewhere");
    assert_eq!(
        store
            .append(&elsewhere, once("a", 1))
            .await
            .expect("append")
            .seq,
        1
    );
    let other_app = key(&app_other(app), "once");
    assert_eq!(
        store
            .append(&other_app, once("a", 1))
            .await
            .expect("append")
            .seq,
        1
    );
    // Without a window (an id Echo made up) nothing is checked.
    assert_eq!(
        store.append(&room, msg("a", 2)).await.expect("append").seq,
        3
    );
    // Once the window has passed, the id is free again.
    assert_eq!(
        store
            .append(&room, once("a", WINDOW))
            .await
            .expect("append")
            .seq,
        4
    );

    // Racing appends of one id: exactly one commits; the others answer with its seq.
    let race = key(app, "once-race");
    let results =
        futures_util::future::join_all((0..8).map(|_| store.append(&race, once("r", 5)))).await;
    let committed: Vec<u64> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|m| m.seq))
        .collect();
    assert_eq!(
        committed,
        [1],
        "one of the racing appends commits: {results:?}"
    );
    for r in &results {
        match r {
            Ok(_) | Err(StoreError::Duplicate { seq: 1, .. }) => {}
            other => panic!("a racing duplicate answers with the winner's seq: {other:?}"),
        }
    }
    assert_eq!(
        store.latest_seq(&race).await.expect("latest"),
        1,
        "no seq was lost"
    );
}

/// Pages of the five messages on `room`: cut by count or by bytes, with `more` exactly when
/// messages were left out.
async fn pages(store: &dyn HistoryStore, room: &ChannelKey) {
    let seqs = |p: &HistoryPage| p.messages.iter().map(|m| m.seq).collect::<Vec<_>>();
    let all = store
        .page(room, 0, PageLimit::count(5))
        .await
        .expect("page");
    assert_eq!(
        (seqs(&all), all.more),
        (vec![1, 2, 3, 4, 5], false),
        "a limit met exactly leaves nothing more"
    );
    let by_count = store
        .page(room, 1, PageLimit::count(2))
        .await
        .expect("page");
    assert_eq!((seqs(&by_count), by_count.more), (vec![2, 3], true));
    let size = all.messages[0].encoded_len();
    assert!(
        all.messages.iter().all(|m| m.encoded_len() == size),
        "the test messages have equal sizes"
    );
    let two = PageLimit {
        messages: 100,
        bytes: 2 * (size + 1),
    };
    let by_bytes = store.page(room, 0, two).await.expect("page");
    assert_eq!(
        (seqs(&by_bytes), by_bytes.more),
        (vec![1, 2], true),
        "a page holds the messages whose encoded sizes fit its bytes"
    );
    let tiny = PageLimit {
        messages: 100,
        bytes: 1,
    };
    let one = store.page(room, 3, tiny).await.expect("page");
    assert_eq!(
        (seqs(&one), one.more),
        (vec![4], true),
        "the first message comes even when it alone is over the bytes"
    );
    let end = store.page(room, 4, two).await.expect("page");
    assert_eq!((seqs(&end), end.more), (vec![5], false));
}

async fn concurrent_appends(store: &dyn HistoryStore, busy: &ChannelKey) {
    // Concurrent appends get distinct seqs with no gaps.
    let store_ref = store;
    let futs =
        (0..20).map(|i| async move { store_ref.append(busy, msg(&format!("c{i}"), 1)).await });
    let results = futures_util::future::join_all(futs).await;
    let mut seqs: Vec<u64> = results
        .into_iter()
        .map(|r| r.expect("append").seq)
        .collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=20).collect::<Vec<_>>(),
        "concurrent appends get distinct seqs"
    );
}

/// The associations document.
pub async fn associations_store(store: &dyn AssociationsStore) {
    let doc = r#"{"apps":{}}"#;
    store.save_associations(doc).await.expect("save");
    assert_eq!(
        store.load_associations().await.expect("load").as_deref(),
        Some(doc)
    );
    let doc2 = r#"{"apps":{"a":{"channels":{}}}}"#;
    store.save_associations(doc2).await.expect("save again");
    assert_eq!(
        store.load_associations().await.expect("load").as_deref(),
        Some(doc2),
        "save replaces"
    );
}

/// Members of channels: joins, leaves, pages, expiry.
pub async fn presence_store(store: &dyn PresenceStore) {
    let app = app();
    let room = key(&app, "room");
    let conn = |n: &str| ConnectionId::from(format!("{app}-{n}").as_str());
    let (a1, a2, b1) = (conn("a1"), conn("a2"), conn("b1"));
    let later = 4_000_000_000;
    let member = |sub: &str, connections: u32| Member {
        sub: sub.to_owned(),
        connections,
    };

    assert!(
        store
            .members(&room, None, 10)
            .await
            .expect("members")
            .members
            .is_empty(),
        "a channel nobody joined has no members"
    );
    assert!(
        !store.leave(&room, "alice", &a1).await.expect("leave"),
        "leaving unjoined"
    );
    assert!(
        store.join(&room, "alice", &a1, later).await.expect("join"),
        "first join"
    );
    assert!(
        !store.join(&room, "alice", &a1, later).await.expect("join"),
        "repeat"
    );
    assert!(
        !store.join(&room, "alice", &a2, later).await.expect("join"),
        "second connection"
    );
    assert!(
        store.join(&room, "bob", &b1, later).await.expect("join"),
        "another user"
    );
    let page = store.members(&room, None, 10).await.expect("members");
    assert_eq!(
        page.members,
        [member("alice", 2), member("bob", 1)],
        "in sub order, counted"
    );
    assert!(!page.more);

    let other_app = key(&self::app(), "room");
    assert!(
        store
            .members(&other_app, None, 10)
            .await
            .expect("members")
            .members
            .is_empty(),
        "apps are isolated"
    );

    let first = store.members(&room, None, 1).await.expect("page");
    assert_eq!(
        (first.members, first.more),
        (vec![member("alice", 2)], true)
    );
    let rest = store.members(&room, Some("alice"), 1).await.expect("page");
    assert_eq!((rest.members, rest.more), (vec![member("bob", 1)], false));

    assert!(
        !store.leave(&room, "alice", &a1).await.expect("leave"),
        "not the last"
    );
    assert!(
        !store.leave(&room, "alice", &a1).await.expect("leave"),
        "a repeat"
    );
    assert!(
        store.leave(&room, "alice", &a2).await.expect("leave"),
        "the last"
    );
    assert_eq!(
        store
            .members(&room, None, 10)
            .await
            .expect("members")
            .members,
        [member("bob", 1)]
    );

    // Concurrent first joins of one user: exactly one is its join.
    let ids: Vec<ConnectionId> = (0..8).map(|i| conn(&format!("c{i}"))).collect();
    let joins =
        futures_util::future::join_all(ids.iter().map(|id| store.join(&room, "carol", id, later)))
            .await;
    let firsts = joins
        .into_iter()
        .filter(|j| *j.as_ref().expect("join"))
        .count();
    assert_eq!(firsts, 1, "one of concurrent joins is the user's first");
    let leaves =
        futures_util::future::join_all(ids.iter().map(|id| store.leave(&room, "carol", id))).await;
    let lasts = leaves
        .into_iter()
        .filter(|l| *l.as_ref().expect("leave"))
        .count();
    assert_eq!(lasts, 1, "one of concurrent leaves is the user's last");

    // A connection past its expiry does not count, but taking it off is still the user's leave
    // (the sweep's), once.
    let lapsing = key(&app, "lapsing");
    store
        .join(&lapsing, "erin", &conn("e1"), 1_000)
        .await
        .expect("join");
    assert!(
        store
            .leave(&lapsing, "erin", &conn("e1"))
            .await
            .expect("leave"),
        "taking off an expired last connection is a leave"
    );
    assert!(
        !store
            .leave(&lapsing, "erin", &conn("e1"))
            .await
            .expect("leave"),
        "once"
    );
    // And the user's next join after expiry is a join again.
    let expired = key(&app, "expired");
    store
        .join(&expired, "dave", &conn("d1"), 1_000)
        .await
        .expect("join");
    assert!(
        store
            .members(&expired, None, 10)
            .await
            .expect("members")
            .members
            .is_empty(),
        "an expired connection is no member"
    );
    assert!(
        store
            .join(&expired, "dave", &conn("d2"), later)
            .await
            .expect("join"),
        "joining after expiry is a join"
    );
    assert_eq!(
        store
            .members(&expired, None, 10)
            .await
            .expect("members")
            .members,
        [member("dave", 1)]
    );
}
