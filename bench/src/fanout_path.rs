//! The AWS delivery path, measured on one machine: the fan-out Lambda's code (`fanout::fan_out`:
//! split the channel into batches, hand the others to further invocations, deliver one) posting
//! through the Lambdas' management API client (`echo_aws::gateway::ManagementApi`) to the local
//! edge's `@connections` API, which waits `--manage-latency` per post as API Gateway's management
//! API would. Further invocations are started after `--invoke-latency`, as an asynchronous Lambda
//! invoke would be.
//!
//! Subscribers are real WebSocket connections to that edge; their ids come from the app's
//! `$status` channel. Delivery time runs from the start of the first invocation to the last
//! subscriber receiving the message.

use echo_core::store::ConnectionRecords;
use echo_core::store::Subscriptions;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use echo_aws::gateway::ManagementApi;
use echo_core::auth::{Claims, Role};
use echo_core::channel::{AppId, ChannelKey, ChannelName};
use echo_core::clock::{Clock, SystemClock};
use echo_core::ids::ConnectionId;
use echo_core::message::StoredMessage;
use echo_core::store::ConnectionRecord;
use echo_core::store::memory::MemoryStore;
use echo_edge::management::latency::DelayLine;
use fanout::{Deps, Handoff, HandoffError};
use futures_util::StreamExt;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::results::{FanoutOutcome, InvocationCpu, LONE_POSTS};
use crate::target::{self, Endpoint, System, TargetError};

#[derive(clap::Args, Clone)]
pub struct FanoutArgs {
    /// The edge's client address (started with --manage-latency).
    #[arg(long)]
    pub addr: std::net::SocketAddr,
    /// The edge's management API address.
    #[arg(long)]
    pub manage_addr: std::net::SocketAddr,
    #[arg(long, env = "ECHO_MANAGE_TOKEN", hide_env_values = true)]
    pub manage_token: String,
    #[arg(long, env = "ECHO_JWT_SECRET", hide_env_values = true)]
    pub secret: String,
    /// Subscriber counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1000,5000,10000")]
    pub subscribers: Vec<usize>,
    /// The latency the edge injects per post (as started), for the ideal.
    #[arg(long, default_value = "20ms", value_parser = humantime::parse_duration)]
    pub latency: Duration,
    /// Posts in flight per invocation (the stack's FanoutConcurrency).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Subscribers per invocation (the stack's FanoutBatchSize).
    #[arg(long, default_value_t = 1000)]
    pub batch_size: usize,
    /// Delay before a handed-off invocation starts (an asynchronous Lambda invoke).
    #[arg(long, default_value = "20ms", value_parser = humantime::parse_duration)]
    pub invoke_latency: Duration,
    /// Messages delivered per subscriber count; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub rounds: u64,
    /// The edge's process ids: the CPU figure adds theirs to this process's.
    #[arg(long = "pid")]
    pub pids: Vec<u32>,
}

/// Further invocations, as tasks started after the invoke latency; records their durations.
struct Spawner {
    deps: Arc<Deps>,
    batch_size: usize,
    invoke_latency: Duration,
    /// Times the invoke latency to within a fraction of a millisecond, as the edge times posts.
    delay: Arc<DelayLine>,
    durations: Arc<Mutex<Vec<(Duration, usize)>>>,
    running: Arc<tokio::sync::Semaphore>,
}

#[async_trait]
impl Handoff for Spawner {
    async fn hand_off(
        &self,
        key: &ChannelKey,
        message: &StoredMessage,
        connections: Vec<ConnectionId>,
    ) -> Result<(), HandoffError> {
        let (deps, key, message) = (self.deps.clone(), key.clone(), message.clone());
        let (delay, line, durations) = (
            self.invoke_latency,
            self.delay.clone(),
            self.durations.clone(),
        );
        let batch_size = self.batch_size;
        let permit = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(HandoffError::new)?;
        tokio::spawn(async move {
            line.wait(delay).await;
            let started = Instant::now();
            let n = connections.len();
            let none = NoHandoff;
            let _ =
                fanout::fan_out(&deps, &none, &key, &message, Some(connections), batch_size).await;
            if let Ok(mut d) = durations.lock() {
                d.push((started.elapsed(), n));
            }
            drop(permit);
        });
        Ok(())
    }
}

/// A handed-off invocation never hands off again.
struct NoHandoff;

#[async_trait]
impl Handoff for NoHandoff {
    async fn hand_off(
        &self,
        _: &ChannelKey,
        _: &StoredMessage,
        _: Vec<ConnectionId>,
    ) -> Result<(), HandoffError> {
        Err(HandoffError::new("a batch is delivered by one invocation"))
    }
}

/// Runs one invocation over `ids` on a thread of its own with a current-thread runtime, as a
/// Lambda runs its handler, twice on one client, and reads that thread's CPU time around each.
fn invocation_cpu(
    args: &FanoutArgs,
    store: Arc<MemoryStore>,
    key: &ChannelKey,
    ids: Vec<ConnectionId>,
) -> Option<InvocationCpu> {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "no runtime for the lone invocation");
            return None;
        }
    };
    let posts = ids.len();
    let message = StoredMessage {
        channel: key.channel.clone(),
        seq: 0,
        id: "cpu".into(),
        data: serde_json::json!({"text": "fan-out"}),
        from: "bench".into(),
        ts: SystemClock.now_ms(),
    };
    runtime.block_on(async {
        let deps = Deps {
            subscriptions: store.clone(),
            connections: store,
            gateway: Arc::new(management(args, args.concurrency)),
            metrics: Arc::new(echo_core::metrics::NoMetrics),
            departures: Arc::new(echo_core::presence::NoDepartures),
        };
        let mut passes = Vec::with_capacity(2);
        for _ in 0..2 {
            let before = crate::stats::thread_cpu();
            let report =
                fanout::fan_out(&deps, &NoHandoff, key, &message, Some(ids.clone()), posts).await;
            let after = crate::stats::thread_cpu();
            // A pass that did not deliver every post measured something else.
            match report {
                Ok(r) if r.delivered == posts => {
                    passes.push(before.zip(after).map(|(b, a)| a.saturating_sub(b)));
                }
                other => {
                    tracing::warn!(
                        ?other,
                        posts,
                        "the lone invocation did not deliver every post"
                    );
                    passes.push(None);
                }
            }
        }
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        match passes[..] {
            [Some(cold), Some(warm)] => Some(InvocationCpu {
                posts,
                cold_ms: ms(cold),
                warm_ms: ms(warm),
            }),
            _ => None,
        }
    })
}

fn management(args: &FanoutArgs, concurrency: usize) -> ManagementApi {
    // The Lambdas' client, signing with the edge's token.
    ManagementApi::local(
        &format!("http://{}", args.manage_addr),
        &args.manage_token,
        concurrency,
    )
}

/// Opens `n` connections and learns their ids from `$status`.
async fn connect(
    endpoint: &Endpoint,
    n: usize,
) -> Result<(Vec<target::Ws>, Vec<ConnectionId>), TargetError> {
    let admin_token = {
        let secret = endpoint.secret.clone().unwrap_or_default();
        let issuer = echo_core::auth::TokenIssuer::new(secret.as_bytes())
            .map_err(|e| TargetError::Token(e.to_string()))?;
        let app =
            AppId::new(endpoint.app.clone()).map_err(|e| TargetError::Token(e.to_string()))?;
        issuer
            .issue(
                &Claims::new(app, "bench-admin", SystemClock.now_secs() + 3600)
                    .with_role(Role::Admin),
            )
            .map_err(|e| TargetError::Token(e.to_string()))?
    };
    let mut status =
        target::connect(format!("ws://{}/?token={admin_token}", endpoint.addr)).await?;
    target::send(
        &mut status,
        serde_json::json!({"action": "subscribe", "channel": "$status"}).to_string(),
    )
    .await?;
    // Connections opened before the subscription is in place would go unannounced.
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(Ok(m)) = status.next().await {
            if let Message::Text(t) = m
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(t.as_str())
            {
                match v["type"].as_str() {
                    Some("subscribed") => return Ok(()),
                    Some("error") => break,
                    _ => {}
                }
            }
        }
        Err(TargetError::Handshake("subscribing to $status"))
    })
    .await
    .map_err(|_| TargetError::Timeout("subscribing to $status"))??;
    // The collector says how many ids it has; connections are opened at most `AHEAD` beyond
    // that, so `$status` events never pile up past the edge's outbound queue (which would close
    // the admin connection as a slow consumer) however the cores are shared.
    const AHEAD: usize = 512;
    let (collected_tx, mut collected) = tokio::sync::watch::channel(0usize);
    let collector = tokio::spawn(async move {
        let mut ids = Vec::with_capacity(n);
        while ids.len() < n {
            let Some(Ok(Message::Text(t))) = status.next().await else {
                break;
            };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(t.as_str()) else {
                continue;
            };
            let data = &v["data"];
            if data["event"] == "connected"
                && data["user"].as_str().is_some_and(|u| u.starts_with("fan-"))
                && let Some(id) = data["connectionId"].as_str()
            {
                ids.push(ConnectionId(id.to_owned()));
                collected_tx.send_replace(ids.len());
            }
        }
        (ids, status)
    });
    let mut sockets = Vec::with_capacity(n);
    for start in (0..n).step_by(AHEAD) {
        let behind = start.saturating_sub(AHEAD);
        tokio::time::timeout(
            Duration::from_secs(60),
            collected.wait_for(|got| *got >= behind),
        )
        .await
        .map_err(|_| TargetError::Timeout("collecting connection ids"))?
        .map_err(|_| TargetError::Handshake("collecting connection ids"))?;
        let mut opening = futures_util::stream::iter((start..n.min(start + AHEAD)).map(|i| {
            let endpoint = endpoint.clone();
            async move {
                let url = format!(
                    "ws://{}/?token={}",
                    endpoint.addr,
                    endpoint.token(&format!("fan-{i}"))?
                );
                target::connect(url).await
            }
        }))
        .buffered(64);
        while let Some(ws) = opening.next().await {
            sockets.push(ws?);
        }
    }
    let (ids, status) = tokio::time::timeout(Duration::from_secs(60), collector)
        .await
        .map_err(|_| TargetError::Timeout("collecting connection ids"))?
        .map_err(|_| TargetError::Handshake("collecting connection ids"))?;
    drop(status);
    if ids.len() < n {
        return Err(TargetError::Handshake("collecting connection ids"));
    }
    Ok((sockets, ids))
}

/// The median time of a post alone to `id` (after one that opens the connection). The subscriber
/// gets frames without a `seq`, which it ignores.
async fn post_alone(gateway: &ManagementApi, id: &ConnectionId) -> crate::Result<f64> {
    use echo_core::gateway::{Frame, Gateway};
    let frame = Frame::text(r#"{"type":"probe"}"#.to_owned());
    gateway.post(id, &frame).await?;
    let mut times = Vec::with_capacity(LONE_POSTS);
    for _ in 0..LONE_POSTS {
        let started = Instant::now();
        gateway.post(id, &frame).await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// The one field a subscriber reads of a delivery; the rest is skipped, not built.
#[derive(serde::Deserialize)]
struct Seq {
    seq: Option<u64>,
}

pub async fn measure(args: &FanoutArgs, n: usize) -> crate::Result<FanoutOutcome> {
    let endpoint = Endpoint {
        system: System::Echo,
        addr: args.addr,
        secret: Some(args.secret.clone()),
        app: "chat-demo".into(),
    };
    let (sockets, ids) = connect(&endpoint, n).await?;
    let app = AppId::new("chat-demo")?;
    let channel = ChannelName::new("fanout")?;
    let key = ChannelKey::new(app.clone(), channel.clone());
    let store = Arc::new(MemoryStore::new());
    for id in &ids {
        store
            .put_connection(ConnectionRecord {
                id: id.clone(),
                claims: Claims::new(app.clone(), "fan", SystemClock.now_secs() + 3600),
                connected_at: SystemClock.now_ms(),
                expires_at: SystemClock.now_secs() + 3600,
            })
            .await?;
        store.subscribe(id, &key, 1).await?;
    }
    // Each subscriber reports when it got the round's message.
    let (arrived_tx, mut arrived_rx) = tokio::sync::mpsc::unbounded_channel::<(u64, Instant)>();
    let readers: Vec<_> = sockets
        .into_iter()
        .map(|mut ws| {
            let tx = arrived_tx.clone();
            tokio::spawn(async move {
                while let Some(Ok(m)) = ws.next().await {
                    if let Message::Text(t) = m
                        && let Ok(Seq { seq: Some(seq) }) = serde_json::from_str(t.as_str())
                    {
                        let _ = tx.send((seq, Instant::now()));
                    }
                }
            })
        })
        .collect();
    drop(arrived_tx);

    let mut pids = args.pids.clone();
    pids.push(std::process::id());
    let (cpu_before, cpu_from) = (crate::stats::usage(&pids), std::time::Instant::now());
    let mut totals = Vec::new();
    let mut all_durations = Vec::new();
    let mut invocations = 0;
    let mut delivered = 0;
    // One client for every round, as a warm container keeps its connections; the first round
    // opens them.
    let warm = Arc::new(management(args, args.concurrency));
    let delay = Arc::new(DelayLine::start()?);
    let post_alone_ms = post_alone(&warm, &ids[0]).await?;
    for round in 1..=args.rounds {
        let deps = Arc::new(Deps {
            subscriptions: store.clone(),
            connections: store.clone(),
            gateway: warm.clone(),
            metrics: Arc::new(echo_core::metrics::NoMetrics),
            departures: Arc::new(echo_core::presence::NoDepartures),
        });
        let durations = Arc::new(Mutex::new(Vec::new()));
        let spawner = Spawner {
            deps: deps.clone(),
            batch_size: args.batch_size,
            invoke_latency: args.invoke_latency,
            delay: delay.clone(),
            durations: durations.clone(),
            running: Arc::new(tokio::sync::Semaphore::new(10_000)),
        };
        let message = StoredMessage {
            channel: channel.clone(),
            seq: round,
            id: format!("f{round}"),
            data: serde_json::json!({"text": "fan-out"}),
            from: "bench".into(),
            ts: SystemClock.now_ms(),
        };
        let started = Instant::now();
        let first = fanout::fan_out(&deps, &spawner, &key, &message, None, args.batch_size).await?;
        let first_took = started.elapsed();
        let mut got = 0usize;
        let mut last = started;
        while got < n {
            match tokio::time::timeout(Duration::from_secs(60), arrived_rx.recv()).await {
                Ok(Some((seq, at))) if seq == round => {
                    got += 1;
                    last = last.max(at);
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        delivered = got;
        totals.push(last.duration_since(started));
        // Handed-off invocations record their time just after their last post.
        let expected = n.div_ceil(args.batch_size.max(1)).saturating_sub(1);
        let waiting = Instant::now();
        while durations.lock().map(|d| d.len()).unwrap_or(expected) < expected
            && waiting.elapsed() < Duration::from_secs(5)
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut d = durations.lock().map(|d| d.clone()).unwrap_or_default();
        d.push((first_took, first.subscribers));
        invocations = d.len();
        all_durations.extend(d);
    }
    let cpu_percent =
        crate::stats::cpu_percent(cpu_before, crate::stats::usage(&pids), cpu_from.elapsed());
    let invocation = {
        let (args, store, key) = (args.clone(), store.clone(), key.clone());
        let solo = ids[..ids.len().min(args.batch_size.max(1))].to_vec();
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let _ = tx.send(invocation_cpu(&args, store, &key, solo));
        });
        rx.await.ok().flatten()
    };
    for r in readers {
        r.abort();
    }
    totals.sort();
    let median = totals.get(totals.len() / 2).copied().unwrap_or_default();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let rounds_per_invocation = n.div_ceil(invocations.max(1) * args.concurrency.max(1));
    Ok(FanoutOutcome {
        subscribers: n,
        invocations,
        delivery_ms: ms(median),
        rounds_ms: totals.iter().map(|d| ms(*d)).collect(),
        ideal_ms: ms(args.latency) * rounds_per_invocation as f64,
        single_invocation_ms: ms(args.latency) * n.div_ceil(args.concurrency.max(1)) as f64,
        per_invocation_mean_ms: all_durations.iter().map(|(d, _)| ms(*d)).sum::<f64>()
            / all_durations.len().max(1) as f64,
        per_invocation_max_ms: all_durations
            .iter()
            .map(|(d, _)| ms(*d))
            .fold(0.0, f64::max),
        posts_per_invocation_max: all_durations.iter().map(|(_, n)| *n).max().unwrap_or(0),
        delivered,
        latency_ms: ms(args.latency),
        post_alone_ms,
        concurrency: args.concurrency,
        cpu_percent,
        invocation,
    })
}

pub async fn run(args: FanoutArgs) -> crate::Result {
    for &n in &args.subscribers {
        let o = measure(&args, n).await?;
        println!("{}", crate::report::fanout_line(&o));
        println!("{}", serde_json::to_string(&o)?);
    }
    Ok(())
}
