//! Presence through a real edge: `join` and `leave` for users (not connections), the member
//! list, permissions, app isolation, and connections that vanish without `$disconnect`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use echo_core::auth::Permissions;
use echo_core::channel::ChannelPattern;
use echo_core::clock::{Clock, SystemClock};
use echo_tests::{Client, TestEdge};
use serde_json::{Value, json};

/// Subscribes with presence; returns the `subscribed` frame.
async fn watch(client: &mut Client, channel: &str) -> Value {
    client
        .send(json!({"action": "subscribe", "channel": channel, "presence": true}))
        .await;
    let v = client.recv().await;
    assert_eq!(v["type"], "subscribed", "{v}");
    v
}

/// The next frame, which must be a `join` or `leave` of `sub` on `channel`; returns its seq.
async fn expect(client: &mut Client, kind: &str, channel: &str, sub: &str) -> u64 {
    let v = client.recv().await;
    assert_eq!(
        (v["type"].as_str(), v["channel"].as_str(), v["sub"].as_str()),
        (Some(kind), Some(channel), Some(sub)),
        "{v}"
    );
    assert!(v["ts"].as_u64().unwrap() > 1_600_000_000_000, "{v}");
    v["seq"].as_u64().unwrap()
}

async fn members(client: &mut Client, channel: &str) -> Value {
    client
        .send(json!({"action": "presence", "channel": channel}))
        .await;
    let (v, _) = client.recv_until("presence").await;
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn users_join_once_and_leave_with_their_last_subscription() {
    let edge = TestEdge::start().await;
    let mut bob = edge.connect(&edge.token("chat-demo", "bob")).await;
    watch(&mut bob, "room").await;
    let first = expect(&mut bob, "join", "room", "bob").await;

    let mut alice = edge.connect(&edge.token("chat-demo", "alice")).await;
    alice.subscribe("room").await;
    let second = expect(&mut bob, "join", "room", "alice").await;
    assert!(second > first, "presence events are numbered in order");

    // A second connection of the same user is not a second join.
    let mut alice_phone = edge.connect(&edge.token("chat-demo", "alice")).await;
    alice_phone.subscribe("room").await;
    bob.silent_for(300).await;
    assert_eq!(
        members(&mut bob, "room").await,
        json!({"type": "presence", "channel": "room", "seq": second, "more": false, "members": [
            {"sub": "alice", "connections": 2}, {"sub": "bob", "connections": 1}
        ]})
    );

    // Leaving on unsubscribe of one, then on close of the other.
    alice
        .send(json!({"action": "unsubscribe", "channel": "room"}))
        .await;
    assert_eq!(alice.recv().await["type"], "unsubscribed");
    bob.silent_for(300).await;
    alice_phone.close().await;
    let third = expect(&mut bob, "leave", "room", "alice").await;
    assert_eq!(third, second + 1);
    assert_eq!(
        members(&mut bob, "room").await["members"],
        json!([{"sub": "bob", "connections": 1}])
    );

    // Rejoining, then leaving by unsubscribing.
    alice.subscribe("room").await;
    expect(&mut bob, "join", "room", "alice").await;
    alice
        .send(json!({"action": "unsubscribe", "channel": "room"}))
        .await;
    expect(&mut bob, "leave", "room", "alice").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plain_subscriber_gets_no_presence_frames() {
    let edge = TestEdge::start().await;
    let mut carol = edge.connect(&edge.token("chat-demo", "carol")).await;
    carol.subscribe("room").await;
    let mut watcher = edge.connect(&edge.token("chat-demo", "watcher")).await;
    watch(&mut watcher, "room").await;
    expect(&mut watcher, "join", "room", "watcher").await;
    let mut dave = edge.connect(&edge.token("chat-demo", "dave")).await;
    dave.subscribe("room").await;
    expect(&mut watcher, "join", "room", "dave").await;
    dave.close().await;
    expect(&mut watcher, "leave", "room", "dave").await;
    carol.silent_for(300).await;

    // Subscribing again without presence turns it off.
    watcher
        .send(json!({"action": "subscribe", "channel": "room"}))
        .await;
    assert_eq!(watcher.recv().await["type"], "subscribed");
    let mut erin = edge.connect(&edge.token("chat-demo", "erin")).await;
    erin.subscribe("room").await;
    watcher.silent_for(300).await;
    // Messages still flow to both.
    erin.publish("room", json!({"text": "hi"}), "e1").await;
    assert_eq!(watcher.recv().await["type"], "message");
    assert_eq!(carol.recv().await["type"], "message");
}

#[tokio::test(flavor = "multi_thread")]
async fn presence_needs_subscribe_permission_and_apps_are_isolated() {
    let edge = TestEdge::start().await;
    let rooms_only = Permissions {
        subscribe: Some(vec![ChannelPattern::new("room-*").unwrap()]),
        publish: None,
    };
    let mut limited = edge
        .connect(&edge.restricted_token("chat-demo", "lim", rooms_only))
        .await;
    for frame in [
        json!({"action": "presence", "channel": "lobby"}),
        json!({"action": "subscribe", "channel": "lobby", "presence": true}),
        json!({"action": "subscribe", "channel": "$presence:room-1"}),
        json!({"action": "presence", "channel": "$status"}),
    ] {
        limited.send(frame.clone()).await;
        let v = limited.recv().await;
        assert_eq!(v["code"], "forbidden", "{frame}: {v}");
    }
    limited
        .send(json!({"action": "presence", "channel": "room-1", "colour": "red"}))
        .await;
    assert_eq!(limited.recv().await["code"], "bad_request");

    let mut here = edge.connect(&edge.token("chat-demo", "here")).await;
    here.subscribe("lobby").await;
    let mut elsewhere = edge.connect(&edge.token("other-app", "elsewhere")).await;
    watch(&mut elsewhere, "lobby").await;
    expect(&mut elsewhere, "join", "lobby", "elsewhere").await;
    let mut here_too = edge.connect(&edge.token("chat-demo", "here-too")).await;
    here_too.subscribe("lobby").await;
    elsewhere.silent_for(300).await;
    assert_eq!(
        members(&mut elsewhere, "lobby").await["members"],
        json!([{"sub": "elsewhere", "connections": 1}])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_that_vanished_without_disconnect_leaves_when_found_gone() {
    let edge =
        TestEdge::start_with(|c| c.lose_disconnects = true, echo_chat_demo::functions()).await;
    let mut watcher = edge.connect(&edge.token("chat-demo", "watcher")).await;
    watch(&mut watcher, "room").await;
    expect(&mut watcher, "join", "room", "watcher").await;
    let mut ghost = edge.connect(&edge.token("chat-demo", "ghost")).await;
    ghost.subscribe("room").await;
    expect(&mut watcher, "join", "room", "ghost").await;

    // The socket goes away and no $disconnect follows: the member is still listed.
    drop(ghost);
    watcher.silent_for(500).await;
    let listed = members(&mut watcher, "room").await["members"].clone();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");

    // The next delivery finds it gone: its records go, and it leaves.
    let ack = watcher
        .publish("room", json!({"text": "anyone?"}), "w1")
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let (leave, _) = watcher.recv_until("leave").await;
    assert_eq!(
        (leave["sub"].as_str(), leave["channel"].as_str()),
        (Some("ghost"), Some("room"))
    );
    assert_eq!(
        members(&mut watcher, "room").await["members"],
        json!([{"sub": "watcher", "connections": 1}])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vanished_connection_leaves_a_quiet_channel_once_its_record_expires() {
    let edge = TestEdge::start_with(
        |c| {
            c.lose_disconnects = true;
            c.limits.token_grace_secs = 0;
            c.sweep_every = std::time::Duration::from_millis(200);
        },
        echo_chat_demo::functions(),
    )
    .await;
    let mut admin = edge.connect(&edge.admin_token("chat-demo")).await;
    admin.subscribe("$status").await;
    let mut watcher = edge.connect(&edge.token("chat-demo", "watcher")).await;
    watch(&mut watcher, "room").await;
    expect(&mut watcher, "join", "room", "watcher").await;
    let mut claims = TestEdge::claims("chat-demo", "ghost");
    claims.exp = SystemClock.now_secs() + 2;
    let mut ghost = edge.connect(&edge.token_for(&claims)).await;
    ghost.subscribe("room").await;
    expect(&mut watcher, "join", "room", "ghost").await;

    // Gone without a $disconnect, and nothing is posted to the room: the sweep ends the
    // connection once its record expires (the token's expiry, 5 s of leeway, no grace here).
    drop(ghost);
    expect(&mut watcher, "leave", "room", "ghost").await;
    assert_eq!(
        members(&mut watcher, "room").await["members"],
        json!([{"sub": "watcher", "connections": 1}])
    );
    let disconnected = loop {
        let (v, _) = admin.recv_until("message").await;
        if v["data"]["event"] == "disconnected" {
            break v;
        }
    };
    assert_eq!(disconnected["data"]["user"], "ghost", "{disconnected}");
    // The live connections stay.
    let ack = watcher
        .publish("room", json!({"text": "still here"}), "w1")
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
}
