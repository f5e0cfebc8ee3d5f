//! Delivery order against a server that reorders and withholds messages: a test double speaking
//! Echo's protocol, so that every arrival order can be scripted. Early arrivals are held until
//! the messages before them come; what does not come is read from history; what history no
//! longer has is a `Gap` event; a message delivered twice is handed over once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use echo_client::{Client, Event, Options};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message as WsMessage;

const WAIT: Duration = Duration::from_secs(5);

/// The server's end: frames from the client arrive on `from_client`; `send` posts frames to it.
struct Script {
    from_client: mpsc::UnboundedReceiver<Value>,
    to_client: mpsc::UnboundedSender<Value>,
}

impl Script {
    async fn start() -> (Self, String) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let (in_tx, from_client) = mpsc::unbounded_channel();
        let (to_client, mut out_rx) = mpsc::unbounded_channel::<Value>();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            loop {
                tokio::select! {
                    frame = ws.next() => match frame {
                        Some(Ok(WsMessage::Text(t))) => {
                            let _ = in_tx.send(serde_json::from_str(t.as_str()).unwrap());
                        }
                        Some(Ok(_)) => {}
                        _ => return,
                    },
                    out = out_rx.recv() => match out {
                        Some(v) => ws.send(WsMessage::text(v.to_string())).await.unwrap(),
                        None => return,
                    },
                }
            }
        });
        (
            Self {
                from_client,
                to_client,
            },
            url,
        )
    }

    fn send(&self, v: Value) {
        self.to_client.send(v).unwrap();
    }

    fn message(&self, seq: u64) {
        self.send(message(seq));
    }

    /// The next frame from the client.
    async fn recv(&mut self) -> Value {
        timeout(WAIT, self.from_client.recv())
            .await
            .expect("a frame from the client")
            .unwrap()
    }

    /// Asserts the client sends nothing for `ms`.
    async fn quiet_for(&mut self, ms: u64) {
        if let Ok(Some(v)) = timeout(Duration::from_millis(ms), self.from_client.recv()).await {
            panic!("expected nothing from the client, got {v}");
        }
    }
}

/// A scripted server and a client of it that holds early arrivals for `hold_ms`.
async fn client_holding(hold_ms: u64) -> (Script, Client) {
    let (server, url) = Script::start().await;
    let options = Options {
        reorder_hold: Duration::from_millis(hold_ms),
        ..Options::default()
    };
    let client = Client::builder(url)
        .token("t")
        .options(options)
        .connect()
        .await
        .unwrap();
    (server, client)
}

/// Subscribes the client to `room`, the server answering at seq 0.
async fn subscribed(client: &Client, server: &mut Script) -> echo_client::Subscription {
    let (room, ()) = tokio::join!(client.subscribe("room"), async {
        assert_eq!(server.recv().await["action"], "subscribe");
        server.send(json!({"type": "subscribed", "channel": "room", "seq": 0}));
    });
    room.unwrap()
}

fn message(seq: u64) -> Value {
    json!({"type": "message", "channel": "room", "seq": seq, "id": format!("m{seq}"),
        "data": seq, "from": "u", "ts": 1})
}

#[tokio::test]
async fn reordered_withheld_and_repeated_messages_come_out_in_order_once() {
    let (mut server, client) = client_holding(150).await;
    let mut events = client.events();
    let mut room = subscribed(&client, &mut server).await;

    // 2 and 3 before 1, within the hold: no history needed.
    server.message(2);
    server.message(3);
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.message(1);
    server.quiet_for(300).await;

    // 5 without 4: once the hold runs out, history fills it.
    server.message(5);
    let ask = server.recv().await;
    assert_eq!(
        (&ask["action"], &ask["since"]),
        (&json!("history"), &json!(3))
    );
    server.send(json!({"type": "history", "channel": "room", "messages": [message(4), message(5)], "more": false}));

    // 8 without 6 and 7; history has 7 but no longer 6.
    server.message(8);
    let ask = server.recv().await;
    assert_eq!(ask["since"], 5);
    server.send(json!({"type": "history", "channel": "room", "messages": [message(7), message(8)], "more": false}));
    // A repeat (a retried fan-out) is dropped.
    server.message(8);
    server.message(9);

    let mut seqs = Vec::new();
    while seqs.len() < 8 {
        let m = timeout(WAIT, room.recv()).await.unwrap().unwrap();
        seqs.push(m.seq);
    }
    assert_eq!(seqs, [1, 2, 3, 4, 5, 7, 8, 9]);
    let gap = timeout(WAIT, async {
        loop {
            if let Ok(e @ Event::Gap { .. }) = events.recv().await {
                return e;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(
        gap,
        Event::Gap {
            channel: "room".into(),
            from: 6,
            to: 6
        }
    );
    assert!(
        timeout(Duration::from_millis(200), room.recv())
            .await
            .is_err(),
        "nothing more: no repeat"
    );
}

/// History pages of one frame each: a long gap is read page by page, following `more`.
#[tokio::test]
async fn a_gap_is_filled_page_by_page() {
    let (mut server, client) = client_holding(50).await;
    let mut room = subscribed(&client, &mut server).await;
    server.message(4);
    for (since, page, more) in [(0, vec![1, 2], true), (2, vec![3, 4], false)] {
        let ask = server.recv().await;
        assert_eq!(ask["since"], since);
        let messages: Vec<Value> = page.into_iter().map(message).collect();
        server.send(
            json!({"type": "history", "channel": "room", "messages": messages, "more": more}),
        );
    }
    let mut seqs = Vec::new();
    while seqs.len() < 4 {
        seqs.push(timeout(WAIT, room.recv()).await.unwrap().unwrap().seq);
    }
    assert_eq!(seqs, [1, 2, 3, 4]);
}

/// Publishes carry `order`, counted per connection and channel, so that Echo commits them in the
/// order sent where their frames are handled at once.
#[tokio::test]
async fn publishes_are_numbered_per_channel() {
    let (mut server, url) = Script::start().await;
    let client = Client::builder(url).token("t").connect().await.unwrap();
    let publishing = async {
        for channel in ["room", "room", "other"] {
            client.publish(channel, json!(1)).await.unwrap();
        }
    };
    let serving = async {
        let mut seen = Vec::new();
        for _ in 0..3 {
            let p = server.recv().await;
            seen.push((
                p["channel"].as_str().unwrap().to_owned(),
                p["order"].as_u64(),
            ));
            server.send(json!({"type": "ack", "id": p["id"], "channel": p["channel"], "seq": 1}));
        }
        seen
    };
    let ((), seen) = tokio::join!(publishing, serving);
    assert_eq!(
        seen,
        [
            ("room".to_owned(), Some(1)),
            ("room".to_owned(), Some(2)),
            ("other".to_owned(), Some(1))
        ]
    );
}

#[tokio::test]
async fn presence_events_are_applied_in_order_and_a_gap_reads_the_list_again() {
    let (mut server, client) = client_holding(100).await;
    let mut events = client.events();
    let options = echo_client::SubscribeOptions {
        presence: true,
        ..Default::default()
    };
    let (room, ()) = tokio::join!(client.subscribe_with("room", options), async {
        let frame = server.recv().await;
        assert_eq!(
            (frame["action"].as_str(), frame["presence"].as_bool()),
            (Some("subscribe"), Some(true))
        );
        server.send(json!({"type": "subscribed", "channel": "room", "seq": 0}));
    });
    let room = room.unwrap();
    let list = |seq: u64, members: Value, more: bool| json!({"type": "presence", "channel": "room", "members": members, "seq": seq, "more": more});
    let change = |kind: &str, seq: u64, sub: &str| json!({"type": kind, "channel": "room", "sub": sub, "ts": 1, "seq": seq});
    // Two pages; an event that comes meanwhile waits for them.
    assert_eq!(server.recv().await["action"], "presence");
    server.send(list(4, json!([{"sub": "a", "connections": 1}]), true));
    let second = server.recv().await;
    assert_eq!(
        (second["action"].as_str(), second["after"].as_str()),
        (Some("presence"), Some("a"))
    );
    server.send(change("join", 5, "c"));
    server.send(list(4, json!([{"sub": "b", "connections": 2}]), false));
    let mut seen = Vec::new();
    let mut next = async || loop {
        let e = timeout(WAIT, events.recv()).await.unwrap().unwrap();
        match e {
            Event::Join { sub, seq, .. } => return format!("join {sub} {seq:?}"),
            Event::Leave { sub, seq, .. } => return format!("leave {sub} {seq:?}"),
            _ => {}
        }
    };
    for _ in 0..3 {
        seen.push(next().await);
    }
    assert_eq!(seen, ["join a None", "join b None", "join c Some(5)"]);
    let names = |room: &echo_client::Subscription| {
        room.members()
            .unwrap()
            .into_iter()
            .map(|m| format!("{}:{}", m.sub, m.connections))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&room), ["a:1", "b:2", "c:1"]);

    // 7 before 6: held, then both in order; a repeat is dropped.
    server.send(change("leave", 7, "a"));
    server.send(change("join", 6, "d"));
    server.send(change("join", 6, "d"));
    assert_eq!(
        [next().await, next().await],
        ["join d Some(6)", "leave a Some(7)"]
    );

    // 9 without 8: after the hold the list is read again and compared.
    server.send(change("join", 9, "e"));
    assert_eq!(server.recv().await["action"], "presence");
    server.send(list(
        9,
        json!([{"sub": "b", "connections": 1}, {"sub": "e", "connections": 1}]),
        false,
    ));
    let mut resync = vec![next().await, next().await, next().await];
    resync.sort();
    assert_eq!(resync, ["join e None", "leave c None", "leave d None"]);
    assert_eq!(names(&room), ["b:1", "e:1"]);
    server.quiet_for(200).await;
}
