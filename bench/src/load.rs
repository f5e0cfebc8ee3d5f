//! One load: N subscribers, M publishers, a channel layout, a rate (fixed, open loop; or as fast
//! as acknowledgements allow), and what came of it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::stats::{self, Latency};
use crate::target::{self, Endpoint, System, TargetError, Ws};

/// What to run.
#[derive(Debug, Clone, Serialize)]
pub struct Spec {
    pub subscribers: usize,
    pub publishers: usize,
    /// How many channels the subscribers and publishes are spread over (1: one hot channel).
    pub channels: usize,
    /// The channel name, or the prefix of `{prefix}-{i}` when there are several.
    pub channel: String,
    /// Publishes per second over all publishers; `None` publishes as fast as acknowledgements
    /// allow (each publisher keeps `window` unacknowledged).
    pub rate: Option<f64>,
    pub window: usize,
    pub payload: usize,
    /// Echo only: publishers POST to the HTTP API (an admin token each) instead of sending
    /// `publish` frames; subscribers still read WebSockets.
    pub http: bool,
    #[serde(with = "humantime_serde_secs")]
    pub warmup: Duration,
    #[serde(with = "humantime_serde_secs")]
    pub duration: Duration,
}

mod humantime_serde_secs {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

impl Spec {
    fn channel_name(&self, i: usize) -> String {
        if self.channels <= 1 {
            self.channel.clone()
        } else {
            format!("{}-{}", self.channel, i % self.channels)
        }
    }
}

/// What a load measured, over the measurement window only.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub system: System,
    pub publishes_per_s: f64,
    pub deliveries_per_s: f64,
    /// Deliveries expected from the acknowledged publishes (publishes x subscribers per channel).
    pub delivery_ratio: f64,
    pub latency: Latency,
    /// Server CPU, percent of one core.
    pub cpu_percent: f64,
    /// This process's CPU (publishers and subscribers), percent of one core: it shares the
    /// machine with the server.
    pub generator_cpu_percent: f64,
    pub rss_mb: f64,
    /// Publishes not sent because the window was full (open loop only).
    pub skipped: u64,
    pub errors: u64,
}

#[derive(Default)]
struct Counters {
    acked: AtomicU64,
    skipped: AtomicU64,
    errors: AtomicU64,
}

/// Opens `n` subscribers, `parallel` at a time.
async fn connect_subscribers(
    endpoint: &Endpoint,
    spec: &Spec,
    n: usize,
) -> Result<Vec<Ws>, TargetError> {
    let mut out = Vec::with_capacity(n);
    let mut pending = futures_util::stream::iter((0..n).map(|i| {
        let endpoint = endpoint.clone();
        let channel = spec.channel_name(i);
        async move { endpoint.subscriber(&format!("s{i}"), &channel).await }
    }))
    .buffered(64);
    while let Some(ws) = pending.next().await {
        out.push(ws?);
    }
    Ok(out)
}

/// Reads deliveries until stopped; returns the latency (µs) of each one inside the window.
/// Appending to a list keeps the reader's cost per delivery small and even: a histogram per
/// subscriber would be a thousand tables of a few hundred KB, missing the cache on every record.
async fn read(
    mut ws: Ws,
    start: Instant,
    window: (Duration, Duration),
    mut stop: watch::Receiver<bool>,
) -> Vec<u32> {
    let mut latencies = Vec::new();
    loop {
        let m = tokio::select! {
            _ = stop.changed() => break,
            m = ws.next() => m,
        };
        let Some(Ok(m)) = m else { break };
        let Message::Text(text) = m else { continue };
        let text = text.as_str();
        if text == "2" {
            let _ = target::send(&mut ws, "3".to_owned()).await;
            continue;
        }
        let Some(sent) = stats::sent_at(text) else {
            continue;
        };
        let now = start.elapsed();
        if now >= window.0 && now < window.1 {
            let us = u64::try_from(now.as_micros())
                .unwrap_or(u64::MAX)
                .saturating_sub(sent)
                .max(1);
            latencies.push(u32::try_from(us).unwrap_or(u32::MAX));
        }
    }
    latencies
}

fn now_us(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// One publisher's pace when the rate is fixed: a tick per publish, catching up after a stall
/// (open loop); `None` when publishing as fast as acknowledgements allow. Publisher `id` of M
/// starts `id / M` of a period late, so the publishes are spread evenly over time instead of
/// arriving M at a time.
fn ticker(spec: &Spec, id: usize) -> Option<tokio::time::Interval> {
    spec.rate.map(|r| {
        let every = Duration::from_secs_f64(spec.publishers as f64 / r.max(0.001));
        let phase = every.mul_f64(id as f64 / spec.publishers.max(1) as f64);
        let mut t = tokio::time::interval_at(Instant::now() + phase, every);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        t
    })
}

/// One publisher: raw frames over one WebSocket, paced by their acknowledgements, the same
/// loop for every system.
async fn publish(
    endpoint: Endpoint,
    spec: Arc<Spec>,
    id: usize,
    start: Instant,
    window: (Duration, Duration),
    counters: Arc<Counters>,
) -> Result<(), TargetError> {
    let mut ws = endpoint.publisher(&format!("p{id}")).await?;
    let system = endpoint.system;
    let mut tick = ticker(&spec, id);
    let end = start + window.1;
    let mut in_flight = 0usize;
    let mut n = id;
    let mut ack_id = 0u64;
    // Echo commits a publisher-given id once per channel: each publisher's ids are its own, and
    // each run's are new (a server may still remember the last run's).
    let tag = format!("{}-p{id}", run_tag());
    loop {
        let can_send = in_flight < spec.window;
        tokio::select! {
            () = tokio::time::sleep_until(end) => break,
            frame = ws.next() => {
                let Some(Ok(Message::Text(t))) = frame else {
                    if frame.is_none() { break } else { continue }
                };
                let t = t.as_str();
                if t == "2" {
                    target::send(&mut ws, "3".to_owned()).await?;
                } else if is_answer(system, t) {
                    in_flight = in_flight.saturating_sub(1);
                    let now = start.elapsed();
                    if is_error(system, t) {
                        counters.errors.fetch_add(1, Ordering::Relaxed);
                    } else if now >= window.0 && now < window.1 {
                        counters.acked.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            _ = async { match &mut tick { Some(t) => { t.tick().await; } None => std::future::pending().await } } => {
                if !can_send {
                    counters.skipped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                send_one(&mut ws, &endpoint, &spec, &mut n, (&tag, &mut ack_id), start).await?;
                in_flight += 1;
            }
            () = std::future::ready(()), if tick.is_none() && can_send => {
                send_one(&mut ws, &endpoint, &spec, &mut n, (&tag, &mut ack_id), start).await?;
                in_flight += 1;
            }
        }
    }
    Ok(())
}

/// One publisher over Echo's HTTP API: a POST per publish on a kept-alive connection, at most
/// `window` in flight, paced as the WebSocket publishers are.
async fn publish_http(
    endpoint: Endpoint,
    spec: Arc<Spec>,
    id: usize,
    start: Instant,
    window: (Duration, Duration),
    counters: Arc<Counters>,
) -> Result<(), TargetError> {
    let token = endpoint.admin_token(&format!("p{id}"))?;
    let client = reqwest::Client::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(spec.window.max(1)));
    let mut tick = ticker(&spec, id);
    let end = start + window.1;
    let mut n = id;
    let mut posts = tokio::task::JoinSet::new();
    loop {
        let permit = match &mut tick {
            Some(t) => {
                tokio::select! {
                    () = tokio::time::sleep_until(end) => break,
                    _ = t.tick() => {}
                }
                match permits.clone().try_acquire_owned() {
                    Ok(p) => p,
                    Err(_) => {
                        counters.skipped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                }
            }
            None => tokio::select! {
                () = tokio::time::sleep_until(end) => break,
                p = permits.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            },
        };
        let channel = spec.channel_name(n);
        n += spec.publishers;
        let url = format!(
            "http://{}/v1/apps/{}/channels/{channel}/messages",
            endpoint.addr, endpoint.app
        );
        let body = serde_json::json!({"data": target::data(spec.payload, now_us(start))});
        let request = client.post(url).bearer_auth(&token).json(&body);
        let counters = counters.clone();
        posts.spawn(async move {
            let ok = matches!(request.send().await, Ok(r) if r.status().is_success());
            let now = start.elapsed();
            if !ok {
                counters.errors.fetch_add(1, Ordering::Relaxed);
            } else if now >= window.0 && now < window.1 {
                counters.acked.fetch_add(1, Ordering::Relaxed);
            }
            drop(permit);
        });
    }
    while posts.join_next().await.is_some() {}
    Ok(())
}

/// The answer to one publish: an ack or an error.
fn is_answer(system: System, frame: &str) -> bool {
    match system {
        System::Echo => frame.starts_with(r#"{"type":"ack""#) || is_error(system, frame),
        System::Socketio => frame.starts_with("43"),
        System::Ceiling => frame == "a",
    }
}

fn is_error(system: System, frame: &str) -> bool {
    match system {
        System::Echo => frame.starts_with(r#"{"type":"error""#),
        System::Socketio => frame.contains(r#""error""#),
        System::Ceiling => false,
    }
}

async fn send_one(
    ws: &mut Ws,
    endpoint: &Endpoint,
    spec: &Spec,
    n: &mut usize,
    (tag, ack_id): (&str, &mut u64),
    start: Instant,
) -> Result<(), TargetError> {
    let channel = spec.channel_name(*n);
    *n += spec.publishers;
    let data = target::data(spec.payload, now_us(start));
    let frame = match endpoint.system {
        System::Socketio => {
            *ack_id += 1;
            format!(
                "42{}{}",
                ack_id,
                serde_json::json!(["publish", {"channel": channel, "data": data, "id": format!("{tag}-{ack_id}")}])
            )
        }
        System::Echo => {
            *ack_id += 1;
            serde_json::json!({"action": "publish", "channel": channel, "data": data, "id": format!("{tag}-{ack_id}")})
                .to_string()
        }
        System::Ceiling => serde_json::json!({"channel": channel, "data": data}).to_string(),
    };
    target::send(ws, frame).await
}

/// Runs `spec` against `endpoint`; `pids` are the server's processes, for CPU and memory.
pub async fn run(endpoint: &Endpoint, spec: &Spec, pids: &[u32]) -> Result<Outcome, TargetError> {
    let subscribers = connect_subscribers(endpoint, spec, spec.subscribers).await?;
    let start = Instant::now();
    let window = (spec.warmup, spec.warmup + spec.duration);
    let (stop_tx, stop_rx) = watch::channel(false);
    let readers: Vec<_> = subscribers
        .into_iter()
        .map(|ws| tokio::spawn(read(ws, start, window, stop_rx.clone())))
        .collect();
    let spec = Arc::new(spec.clone());
    let counters = Arc::new(Counters::default());
    let publishers: Vec<_> = (0..spec.publishers)
        .map(|id| {
            let (endpoint, spec, counters) = (endpoint.clone(), spec.clone(), counters.clone());
            tokio::spawn(async move {
                let r = if spec.http {
                    publish_http(endpoint, spec, id, start, window, counters).await
                } else {
                    publish(endpoint, spec, id, start, window, counters).await
                };
                if let Err(e) = &r {
                    tracing::warn!(error = %e, "publisher failed");
                }
                r
            })
        })
        .collect();
    tokio::time::sleep_until(start + window.0).await;
    let me = [std::process::id()];
    let (before, before_me) = (stats::usage(pids), stats::usage(&me));
    let measured = Instant::now();
    tokio::time::sleep_until(start + window.1).await;
    let elapsed = measured.elapsed();
    let (after, after_me) = (stats::usage(pids), stats::usage(&me));
    for p in publishers {
        let _ = p.await;
    }
    // Deliveries of publishes made in the window may still be in flight.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop_tx.send(true);
    let mut hist = stats::histogram();
    let mut delivered = 0u64;
    for r in readers {
        if let Ok(latencies) = r.await {
            delivered += latencies.len() as u64;
            for us in latencies {
                let _ = hist.record(u64::from(us));
            }
        }
    }
    let secs = spec.duration.as_secs_f64();
    let acked = counters.acked.load(Ordering::Relaxed);
    let per_channel = spec.subscribers as f64 / spec.channels.max(1) as f64;
    Ok(Outcome {
        system: endpoint.system,
        publishes_per_s: acked as f64 / secs,
        deliveries_per_s: delivered as f64 / secs,
        delivery_ratio: if acked == 0 {
            0.0
        } else {
            delivered as f64 / (acked as f64 * per_channel)
        },
        latency: Latency::of(&hist),
        cpu_percent: stats::cpu_percent(before, after, elapsed),
        generator_cpu_percent: stats::cpu_percent(before_me, after_me, elapsed),
        rss_mb: after.rss_kb as f64 / 1024.0,
        skipped: counters.skipped.load(Ordering::Relaxed),
        errors: counters.errors.load(Ordering::Relaxed),
    })
}

/// Opens `n` subscribed connections and reports the server's memory per connection.
pub async fn idle(endpoint: &Endpoint, n: usize, pids: &[u32]) -> Result<IdleOutcome, TargetError> {
    let spec = Spec {
        subscribers: n,
        publishers: 0,
        channels: 100,
        channel: "idle".into(),
        rate: None,
        window: 1,
        payload: 0,
        http: false,
        warmup: Duration::ZERO,
        duration: Duration::ZERO,
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = stats::usage(pids);
    let connections = connect_subscribers(endpoint, &spec, n).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = stats::usage(pids);
    drop(connections);
    Ok(IdleOutcome {
        system: endpoint.system,
        connections: n,
        rss_before_mb: before.rss_kb as f64 / 1024.0,
        rss_after_mb: after.rss_kb as f64 / 1024.0,
        kb_per_connection: after.rss_kb.saturating_sub(before.rss_kb) as f64 / n.max(1) as f64,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct IdleOutcome {
    pub system: System,
    pub connections: usize,
    pub rss_before_mb: f64,
    pub rss_after_mb: f64,
    pub kb_per_connection: f64,
}

/// A tag for message ids that no other call gives: when the process started, in microseconds,
/// and how many tags it gave before. Each publisher of each run takes one, so that a server still
/// remembering an earlier run's ids (Echo's dedup window) takes every publish as new.
pub(crate) fn run_tag() -> String {
    static STARTED: std::sync::OnceLock<u128> = std::sync::OnceLock::new();
    static GIVEN: AtomicU64 = AtomicU64::new(0);
    let started = STARTED.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros()
    });
    format!("{started:x}.{}", GIVEN.fetch_add(1, Ordering::Relaxed))
}
