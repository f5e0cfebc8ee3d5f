//! The edge's memory through what pins it: a subscriber that stops reading while large messages
//! flow (the slow-consumer flood), and concurrent readers paging a history of large messages.
//! Reports the edge's RSS before, at its peak during, and two seconds after each, round by
//! round: what it holds on to after a burst, against its idle figure.

use std::time::Duration;

use clap::Args;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::stats::usage;
use crate::target::{Endpoint, TargetError, send};

#[derive(Args)]
pub struct MemoryArgs {
    #[command(flatten)]
    pub target: crate::TargetArgs,
    /// Rounds of each burst.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Messages per slow-consumer flood.
    #[arg(long, default_value_t = 300)]
    pub messages: usize,
    /// Bytes of data per message (just under the 128 KB limit with the frame around it).
    #[arg(long, default_value_t = 127_000)]
    pub size: usize,
    /// Concurrent readers of the history.
    #[arg(long, default_value_t = 8)]
    pub readers: usize,
}

/// RSS in MB: before, the peak during, and after one burst.
#[derive(Debug, Clone, Copy)]
pub struct Burst {
    pub before: f64,
    pub peak: f64,
    pub after: f64,
}

pub async fn run(args: &MemoryArgs) -> Result<(), TargetError> {
    let endpoint = args.target.endpoint();
    let pids = args.target.pid.clone();
    let rss = || usage(&pids).rss_kb as f64 / 1024.0;
    let idle = rss();
    let mut floods = Vec::new();
    for round in 0..args.rounds {
        let channel = format!("flood-{round}");
        floods.push(measured(&pids, slow_consumer(&endpoint, &channel, args)).await?);
    }
    // A history of large messages, then readers paging it all at once.
    let mut publisher = endpoint.publisher("archivist").await?;
    publish_all(&mut publisher, "archive", 1000, args.size).await?;
    let mut reads = Vec::new();
    for _ in 0..args.rounds {
        reads.push(measured(&pids, read_history(&endpoint, "archive", args.readers)).await?);
    }
    println!("edge RSS, MB (idle {idle:.1}):");
    for (what, bursts) in [
        (
            format!("slow consumer, {} x {} B", args.messages, args.size),
            &floods,
        ),
        (
            format!(
                "{} readers of 1,000 x {} B history",
                args.readers, args.size
            ),
            &reads,
        ),
    ] {
        for (i, b) in bursts.iter().enumerate() {
            println!(
                "  {what}, round {}: before {:.1}, peak {:.1}, after {:.1}",
                i + 1,
                b.before,
                b.peak,
                b.after
            );
        }
    }
    Ok(())
}

/// Runs `burst`, sampling the RSS every 20 ms; the figure after is taken 2 s later.
async fn measured(
    pids: &[u32],
    burst: impl std::future::Future<Output = Result<(), TargetError>>,
) -> Result<Burst, TargetError> {
    let rss = |pids: &[u32]| usage(pids).rss_kb as f64 / 1024.0;
    let before = rss(pids);
    let (stop, mut stopped) = watch::channel(false);
    let sampler = {
        let pids = pids.to_vec();
        tokio::spawn(async move {
            let mut peak: f64 = 0.0;
            loop {
                peak = peak.max(rss(&pids));
                tokio::select! {
                    _ = stopped.changed() => return peak,
                    () = tokio::time::sleep(Duration::from_millis(20)) => {}
                }
            }
        })
    };
    burst.await?;
    let _ = stop.send(true);
    let peak = sampler.await.unwrap_or_default();
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(Burst {
        before,
        peak,
        after: rss(pids),
    })
}

/// A subscriber that stops reading while `messages` large messages are published on `channel`;
/// it is closed as a slow consumer, and a second subscriber reads them all.
async fn slow_consumer(
    endpoint: &Endpoint,
    channel: &str,
    args: &MemoryArgs,
) -> Result<(), TargetError> {
    let stalled = endpoint.subscriber("stalled", channel).await?;
    let mut reader = endpoint.subscriber("reader", channel).await?;
    let mut publisher = endpoint.publisher("flooder").await?;
    let messages = args.messages;
    let reading = tokio::spawn(async move {
        let mut got = 0;
        while got < messages {
            match reader.next().await {
                Some(Ok(Message::Text(t))) if t.as_str().contains("\"type\":\"message\"") => {
                    got += 1
                }
                Some(Ok(_)) => {}
                _ => break,
            }
        }
    });
    publish_all(&mut publisher, channel, messages, args.size).await?;
    let _ = reading.await;
    drop(stalled);
    Ok(())
}

/// Publishes `n` messages of `size` bytes on `channel`, 16 unacknowledged at most.
async fn publish_all(
    ws: &mut crate::target::Ws,
    channel: &str,
    n: usize,
    size: usize,
) -> Result<(), TargetError> {
    let data = "m".repeat(size);
    let (mut sent, mut acked) = (0, 0);
    while acked < n {
        while sent < n && sent - acked < 16 {
            let frame = json!({"action": "publish", "channel": channel, "data": data});
            send(ws, frame.to_string()).await?;
            sent += 1;
        }
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap_or_default();
                match v["type"].as_str() {
                    Some("ack") => acked += 1,
                    Some("error") => return Err(TargetError::Connect(format!("refused: {v}"))),
                    _ => {}
                }
            }
            Some(Ok(_)) => {}
            _ => return Err(TargetError::Connect("publisher closed".into())),
        }
    }
    Ok(())
}

/// `readers` connections each page through the whole of `channel`'s history.
async fn read_history(
    endpoint: &Endpoint,
    channel: &str,
    readers: usize,
) -> Result<(), TargetError> {
    let mut tasks = Vec::new();
    for i in 0..readers {
        let mut ws = endpoint.publisher(&format!("reader-{i}")).await?;
        let channel = channel.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut since = 0;
            loop {
                let ask =
                    json!({"action": "history", "channel": channel, "since": since, "limit": 1000});
                send(&mut ws, ask.to_string()).await?;
                let page: Value = loop {
                    match ws.next().await {
                        Some(Ok(Message::Text(t))) => {
                            let v: Value = serde_json::from_str(t.as_str()).unwrap_or_default();
                            if v["type"] == "history" {
                                break v;
                            }
                        }
                        Some(Ok(_)) => {}
                        _ => return Err(TargetError::Connect("reader closed".into())),
                    }
                };
                since = page["messages"]
                    .as_array()
                    .and_then(|m| m.last())
                    .and_then(|m| m["seq"].as_u64())
                    .unwrap_or(since);
                if page["more"] != true {
                    return Ok::<(), TargetError>(());
                }
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|e| TargetError::Connect(e.to_string()))??;
    }
    Ok(())
}
