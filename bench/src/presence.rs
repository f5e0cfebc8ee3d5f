//! Presence's costs on a running edge: connects per second and subscribe latency with presence
//! on and off, and how long a join or a leave takes to reach a channel's presence subscribers
//! beside how long a message takes to reach the same connections.
//!
//! Connects: `--connects` connections, `--in-flight` at a time, each opens and subscribes to its
//! room (`--room` users a room); with presence on every one subscribes with `presence`, so each
//! join also goes to everyone already in the room. Joins: `--members` connections subscribed
//! with presence to one channel; then, `--rounds` times, a publish, a new user's subscribe (its
//! join) and its unsubscribe (its leave), each timed from the frame sent to its arrival at every
//! member. Against a build without presence, `--mode off` measures the same connects.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};
use tokio_tungstenite::tungstenite::Message;

use crate::stats::{self, Latency};
use crate::target::{Endpoint, TargetError, Ws, send};

#[derive(Args)]
pub struct PresenceArgs {
    #[command(flatten)]
    target: crate::TargetArgs,
    /// Which connect runs: with presence, without, or both (alternated).
    #[arg(long, value_enum, default_value = "both")]
    mode: Mode,
    #[arg(long, default_value_t = 2000)]
    connects: usize,
    /// Connections opening at once.
    #[arg(long, default_value_t = 64)]
    in_flight: usize,
    /// Users per room in the connect runs.
    #[arg(long, default_value_t = 20)]
    room: usize,
    /// Connect runs per mode.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Presence subscribers of the join runs (0: no join runs).
    #[arg(long, default_value_t = 1000)]
    members: usize,
    #[arg(long, default_value_t = 20)]
    rounds: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Mode {
    On,
    Off,
    Both,
}

#[derive(Debug, Default, Serialize)]
struct Connects {
    presence: bool,
    connects_per_sec: f64,
    subscribe: Latency,
}

#[derive(Debug, Serialize)]
struct Joins {
    members: usize,
    message: Latency,
    join: Latency,
    leave: Latency,
}

pub async fn run(args: PresenceArgs) -> crate::Result {
    let endpoint = args.target.endpoint();
    let modes: &[bool] = match args.mode {
        Mode::On => &[true],
        Mode::Off => &[false],
        Mode::Both => &[false, true],
    };
    let mut all = Vec::new();
    for run in 0..args.runs {
        for &presence in modes {
            let tag = format!("r{run}{}", if presence { "p" } else { "n" });
            let c = connects(&endpoint, &args, presence, &tag).await?;
            println!(
                "connects, presence {}: {:.0}/s; subscribe p50 {:.2} ms p99 {:.2} ms",
                if presence { "on " } else { "off" },
                c.connects_per_sec,
                c.subscribe.p50,
                c.subscribe.p99
            );
            all.push(c);
            // Let the closed connections' $disconnects settle.
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    let median = |presence: bool| {
        let mut rates: Vec<f64> = all
            .iter()
            .filter(|c| c.presence == presence)
            .map(|c| c.connects_per_sec)
            .collect();
        rates.sort_by(f64::total_cmp);
        rates.get(rates.len() / 2).copied()
    };
    if let (Some(off), Some(on)) = (median(false), median(true)) {
        println!(
            "connects/s with presence / without (medians): {:.2}x",
            on / off
        );
    }
    if args.members > 0 {
        let j = joins(&endpoint, args.members, args.rounds).await?;
        let line = |what: &str, l: &Latency| {
            println!(
                "{what} to {} members: p50 {:.2} ms, p99 {:.2} ms, last {:.2} ms",
                j.members, l.p50, l.p99, l.max
            )
        };
        line("message", &j.message);
        line("join   ", &j.join);
        line("leave  ", &j.leave);
        println!(
            "join / message: p50 {:.2}x, p99 {:.2}x",
            j.join.p50 / j.message.p50,
            j.join.p99 / j.message.p99
        );
        println!("{}", serde_json::to_string(&j)?);
    }
    println!("{}", serde_json::to_string(&all)?);
    Ok(())
}

/// Opens and subscribes `--connects` connections; they stay open (read and discarded) until all
/// are in, then close.
async fn connects(
    endpoint: &Endpoint,
    args: &PresenceArgs,
    presence: bool,
    tag: &str,
) -> Result<Connects, TargetError> {
    let gate = Arc::new(Semaphore::new(args.in_flight.max(1)));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let started = Instant::now();
    for i in 0..args.connects {
        let permit = gate.clone().acquire_owned().await;
        let (endpoint, done_tx) = (endpoint.clone(), done_tx.clone());
        let channel = format!("{tag}-room-{}", i / args.room.max(1));
        let sub = format!("{tag}-user-{i}");
        tokio::spawn(async move {
            let result = async {
                let mut ws = endpoint.publisher(&sub).await?;
                let frame = if presence {
                    json!({"action": "subscribe", "channel": channel, "presence": true})
                } else {
                    json!({"action": "subscribe", "channel": channel})
                };
                let sent = Instant::now();
                send(&mut ws, frame.to_string()).await?;
                until(&mut ws, |v| v["type"] == "subscribed").await?;
                Ok::<_, TargetError>((ws, sent.elapsed()))
            }
            .await;
            drop(permit);
            let _ = done_tx.send(result);
        });
    }
    drop(done_tx);
    let mut latency = stats::histogram();
    let mut open = Vec::with_capacity(args.connects);
    while let Some(result) = done_rx.recv().await {
        let (ws, took) = result?;
        let _ = latency.record(took.as_micros().max(1) as u64);
        open.push(drain(ws));
    }
    let elapsed = started.elapsed();
    for reader in open {
        reader.abort();
    }
    Ok(Connects {
        presence,
        connects_per_sec: args.connects as f64 / elapsed.as_secs_f64(),
        subscribe: Latency::of(&latency),
    })
}

/// Reads and discards what a connection receives, so that it is never a slow consumer.
fn drain(mut ws: Ws) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move { while let Some(Ok(_)) = ws.next().await {} })
}

/// Reads until a JSON frame satisfies `want`.
async fn until(ws: &mut Ws, want: impl Fn(&Value) -> bool) -> Result<Value, TargetError> {
    let read = async {
        while let Some(m) = ws.next().await {
            match m {
                Ok(Message::Text(t)) => {
                    let v: Value = serde_json::from_str(t.as_str()).unwrap_or_default();
                    if v["type"] == "error" {
                        tracing::warn!(frame = %t.as_str(), "refused");
                        return Err(TargetError::Handshake("an answer"));
                    }
                    if want(&v) {
                        return Ok(v);
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(TargetError::Connect(e.to_string())),
            }
        }
        Err(TargetError::Handshake("an answer"))
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .map_err(|_| TargetError::Timeout("an answer"))?
}

/// What a member connection saw: (`message` id, `join` or `leave` user) and when.
type Seen = (String, Instant);

async fn joins(endpoint: &Endpoint, members: usize, rounds: usize) -> crate::Result<Joins> {
    let channel = format!("stage-{}", std::process::id());
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<Seen>();
    let mut readers = Vec::with_capacity(members);
    for i in 0..members {
        let mut ws = endpoint.publisher(&format!("member-{i}")).await?;
        let frame = json!({"action": "subscribe", "channel": channel, "presence": true});
        send(&mut ws, frame.to_string()).await?;
        until(&mut ws, |v| v["type"] == "subscribed").await?;
        let seen_tx = seen_tx.clone();
        readers.push(tokio::spawn(async move {
            while let Some(Ok(m)) = ws.next().await {
                let Message::Text(t) = m else { continue };
                let at = Instant::now();
                let v: Value = serde_json::from_str(t.as_str()).unwrap_or_default();
                let key = match v["type"].as_str() {
                    Some("message") => format!("message {}", v["id"].as_str().unwrap_or_default()),
                    Some(kind @ ("join" | "leave")) => {
                        format!("{kind} {}", v["sub"].as_str().unwrap_or_default())
                    }
                    _ => continue,
                };
                let _ = seen_tx.send((key, at));
            }
        }));
    }
    // The members' own joins settle before the rounds begin.
    tokio::time::sleep(Duration::from_secs(2)).await;
    while seen_rx.try_recv().is_ok() {}

    let mut publisher = endpoint.publisher("stage-publisher").await?;
    let mut latency = [stats::histogram(), stats::histogram(), stats::histogram()];
    for round in 0..rounds {
        let joiner = format!("joiner-{round}");
        let mut guest = endpoint.publisher(&joiner).await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        // A new id each run: the server may still remember the last run's.
        let id = format!("{}-m{round}", crate::load::run_tag());
        let steps = [
            (
                json!({"action": "publish", "channel": channel, "data": {"round": round}, "id": id}),
                format!("message {id}"),
                false,
            ),
            (
                json!({"action": "subscribe", "channel": channel}),
                format!("join {joiner}"),
                true,
            ),
            (
                json!({"action": "unsubscribe", "channel": channel}),
                format!("leave {joiner}"),
                true,
            ),
        ];
        for (n, (frame, key, by_guest)) in steps.into_iter().enumerate() {
            let ws = if by_guest { &mut guest } else { &mut publisher };
            let sent = Instant::now();
            send(ws, frame.to_string()).await?;
            let mut arrived = 0;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while arrived < members {
                let (got, at) = tokio::time::timeout_at(deadline, seen_rx.recv())
                    .await
                    .map_err(|_| TargetError::Timeout("deliveries to every member"))?
                    .ok_or(TargetError::Handshake("deliveries"))?;
                if got == key {
                    arrived += 1;
                    let _ = latency[n].record(at.duration_since(sent).as_micros().max(1) as u64);
                }
            }
            // The sender's own answer (ack, subscribed, unsubscribed) is left unread.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drop(guest);
    }
    for r in readers {
        r.abort();
    }
    let of = |h: &Histogram<u64>| Latency::of(h);
    Ok(Joins {
        members,
        message: of(&latency[0]),
        join: of(&latency[1]),
        leave: of(&latency[2]),
    })
}
