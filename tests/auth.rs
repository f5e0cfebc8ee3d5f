//! Who gets in and what they may do: tokens, app isolation, channel permissions, `$status`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use echo_core::auth::{Permissions, TokenIssuer};
use echo_core::channel::ChannelPattern;
use echo_core::clock::{Clock, SystemClock};
use echo_tests::TestEdge;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn bad_tokens_are_refused_before_the_upgrade() {
    let edge = TestEdge::start().await;
    let addr = edge.edge.addr;
    assert_eq!(
        edge.refused(&format!("ws://{addr}/")).await,
        401,
        "no token"
    );
    assert_eq!(
        edge.refused(&format!("ws://{addr}/?token=garbage")).await,
        401,
        "garbage"
    );

    let mut expired = TestEdge::claims("chat-demo", "a");
    expired.exp = SystemClock.now_secs() - 60;
    assert_eq!(
        edge.refused(&edge.url(&edge.token_for(&expired))).await,
        401,
        "expired"
    );

    let mut early = TestEdge::claims("chat-demo", "a");
    early.nbf = Some(SystemClock.now_secs() + 600);
    assert_eq!(
        edge.refused(&edge.url(&edge.token_for(&early))).await,
        401,
        "not yet valid"
    );

    let other = TokenIssuer::new(b"another-secret-another-secret-another").unwrap();
    let forged = other.issue(&TestEdge::claims("chat-demo", "a")).unwrap();
    assert_eq!(
        edge.refused(&edge.url(&forged)).await,
        401,
        "wrong signature"
    );

    // The refusal says why.
    let r = reqwest::get(format!("http://{addr}/?token=garbage"))
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "without an upgrade, / serves the demo page"
    );
    let ok = edge.connect(&edge.token("chat-demo", "a")).await;
    ok.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn apps_never_see_each_other() {
    let edge = TestEdge::start().await;
    let mut one = edge.connect(&edge.token("app-one", "a")).await;
    let mut two = edge.connect(&edge.token("app-two", "b")).await;
    one.subscribe("room").await;
    two.subscribe("room").await;
    let ack = one.publish("room", json!("for app one"), "1").await;
    assert_eq!(ack["seq"], 1);
    assert_eq!(one.recv().await["data"], "for app one");
    two.silent_for(300).await;
    let ack = two.publish("room", json!("for app two"), "2").await;
    assert_eq!(ack["seq"], 1, "each app has its own sequence");
    assert_eq!(two.recv().await["data"], "for app two");
    one.silent_for(200).await;
    two.send(json!({"action": "history", "channel": "room"}))
        .await;
    let h = two.recv().await;
    assert_eq!(h["messages"].as_array().unwrap().len(), 1);
    assert_eq!(h["messages"][0]["data"], "for app two");
}

#[tokio::test(flavor = "multi_thread")]
async fn channel_permissions_are_enforced() {
    let edge = TestEdge::start().await;
    let token = edge.restricted_token(
        "chat-demo",
        "reader",
        Permissions {
            subscribe: Some(vec![ChannelPattern::new("news-*").unwrap()]),
            publish: Some(vec![]),
        },
    );
    let mut c = edge.connect(&token).await;
    c.subscribe("news-today").await;
    c.send(json!({"action": "subscribe", "channel": "secret"}))
        .await;
    let e = c.recv().await;
    assert_eq!(
        (e["code"].clone(), e["channel"].clone()),
        (json!("forbidden"), json!("secret"))
    );
    c.send(json!({"action": "history", "channel": "secret"}))
        .await;
    assert_eq!(c.recv().await["code"], "forbidden");
    let e = c.publish("news-today", json!("x"), "p").await;
    assert_eq!(e["code"], "forbidden");
    c.send(json!({"action": "ping"})).await;
    assert_eq!(c.recv().await["type"], "pong", "the connection still works");
}

#[tokio::test(flavor = "multi_thread")]
async fn status_is_for_admins_and_reports_presence() {
    let edge = TestEdge::start().await;
    let mut user = edge.connect(&edge.token("chat-demo", "u")).await;
    user.send(json!({"action": "subscribe", "channel": "$status"}))
        .await;
    assert_eq!(user.recv().await["code"], "forbidden");
    let e = user.publish("$status", json!("fake"), "f").await;
    assert_eq!(e["code"], "forbidden");

    let mut admin = edge.connect(&edge.admin_token("chat-demo")).await;
    admin.subscribe("$status").await;
    let e = admin.publish("$status", json!("fake"), "f").await;
    assert_eq!(e["code"], "forbidden", "nobody publishes to $status");

    let mut other_app_admin = edge.connect(&edge.admin_token("other")).await;
    other_app_admin.subscribe("$status").await;

    let mut carol = edge.connect(&edge.token("chat-demo", "carol")).await;
    let m = admin.recv().await;
    assert_eq!(
        (m["channel"].clone(), m["from"].clone()),
        (json!("$status"), json!("$echo"))
    );
    assert_eq!(m["data"]["event"], "connected");
    assert_eq!(m["data"]["user"], "carol");
    carol.subscribe("boring").await;
    let m = admin.recv().await;
    assert_eq!(
        (m["data"]["event"].clone(), m["data"]["channel"].clone()),
        (json!("subscribed"), json!("boring"))
    );
    carol
        .send(json!({"action": "unsubscribe", "channel": "boring"}))
        .await;
    carol.recv().await;
    assert_eq!(admin.recv().await["data"]["event"], "unsubscribed");
    carol.close().await;
    assert_eq!(admin.recv().await["data"]["event"], "disconnected");
    other_app_admin.silent_for(200).await;
}

/// A token that expires within the connect-time tolerance: accepted, then, once expired, every
/// frame but `refresh` and `ping` is refused with `token_expired`; `refresh` with a new token
/// for the same user keeps the connection going.
#[tokio::test(flavor = "multi_thread")]
async fn an_expired_token_is_refused_after_connect_and_refresh_renews_it() {
    let edge = TestEdge::start().await;
    let now = SystemClock.now_secs();
    // Accepted at connect (5 s of tolerated skew) and expired 2 s later.
    let mut expiring = TestEdge::claims("chat-demo", "alice");
    expiring.exp = now - 3;
    let mut c = edge.connect(&edge.token_for(&expiring)).await;
    let mut watcher = edge.connect(&edge.token("chat-demo", "w")).await;
    watcher.subscribe("boring").await;
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;

    let refused = c.publish("boring", json!("late"), "late").await;
    assert_eq!(refused["code"], "token_expired", "{refused}");
    watcher.silent_for(200).await;
    c.send(json!({"action": "ping"})).await;
    assert_eq!(c.recv().await["type"], "pong");

    let other_user = edge.token("chat-demo", "mallory");
    c.send(json!({"action": "refresh", "token": other_user}))
        .await;
    assert_eq!(c.recv().await["code"], "forbidden");

    let fresh = edge.token("chat-demo", "alice");
    c.send(json!({"action": "refresh", "token": fresh})).await;
    let refreshed = c.recv().await;
    assert_eq!(refreshed["type"], "refreshed", "{refreshed}");
    assert!(refreshed["exp"].as_u64().unwrap() > now + 60);
    let ack = c.publish("boring", json!("on time"), "ok").await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(watcher.recv().await["data"], "on time");
}

/// Past the grace after expiry the connection's record is gone: it receives nothing more, and
/// its next frame is answered `unauthorized` and closes it.
#[tokio::test(flavor = "multi_thread")]
async fn past_the_grace_an_expired_connection_gets_nothing_and_is_closed() {
    let edge = TestEdge::start_with(
        |c| c.limits.token_grace_secs = 1,
        echo_chat_demo::functions(),
    )
    .await;
    let now = SystemClock.now_secs();
    let mut expiring = TestEdge::claims("chat-demo", "alice");
    expiring.exp = now - 3;
    let mut c = edge.connect(&edge.token_for(&expiring)).await;
    c.subscribe("boring").await;
    let mut publisher = edge.connect(&edge.token("chat-demo", "p")).await;
    publisher.publish("boring", json!(1), "m1").await;
    assert_eq!(
        c.recv().await["data"],
        1,
        "delivered while the token is valid"
    );

    tokio::time::sleep(std::time::Duration::from_millis(3_500)).await;
    publisher.publish("boring", json!(2), "m2").await;
    c.silent_for(300).await;
    c.send(json!({"action": "history", "channel": "boring"}))
        .await;
    assert_eq!(c.recv().await["code"], "unauthorized");
    assert_eq!(c.closed().await, Some(4500));
}
