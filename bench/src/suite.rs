//! The whole suite: starts Echo, the socket.io baseline (on a local redis-server) and the ceiling
//! on this machine, runs the same loads against each, and writes the figures side by side.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::fanout_path::FanoutArgs;
use crate::load::{Outcome, Spec};
use crate::results::{
    CHAIN, CHAIN_PEAK, FANOUT_LATENCY_MS, FANOUT_ROUNDS, FANOUT_SLOW_MS, FANOUT_SLOW_ROUNDS, HOT,
    LADDER, MANY, PEAK, Results, SMOKE_LADDER, Skipped, Step,
};
use crate::target::{Endpoint, System};

#[derive(clap::Args)]
pub struct SuiteArgs {
    /// A quick pass (a few seconds per system, small counts): checks that everything runs.
    #[arg(long)]
    pub smoke: bool,
    /// Where to write the report (default: docs/benchmarks.md, not written with --smoke).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Subscribers on the hot channel.
    #[arg(long, default_value_t = 1000)]
    pub subscribers: usize,
    /// Idle connections for the memory comparison.
    #[arg(long, default_value_t = 10_000)]
    pub idle: usize,
    /// Skip the measurements that need cargo lambda: Lambda start-up and faithful mode's small
    /// channel.
    #[arg(long)]
    pub skip_startup: bool,
    /// Runs of each system's hot-channel peak and of each ladder step: the report shows the
    /// median run and lists them all (1 with --smoke).
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
}

/// A server process, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    /// For Echo: the management API.
    manage: Option<SocketAddr>,
    pids: Vec<u32>,
    /// Processes it depends on (redis for the baseline).
    _deps: Vec<Server>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error("could not start {0}: {1}")]
    Start(String, String),
    #[error("{0} did not print its address")]
    NoAddress(String),
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub(crate) fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(name)))
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Starts `command`, reads stdout until `prefix` and returns the rest of that line. The
/// command's standard error goes to `log`, or nowhere.
pub(crate) fn start(
    name: &str,
    mut command: Command,
    prefix: &str,
    log: Option<&Path>,
) -> Result<(Child, String, Vec<String>), SuiteError> {
    let stderr = match log.map(std::fs::File::create) {
        Some(Ok(f)) => Stdio::from(f),
        _ => Stdio::null(),
    };
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(|e| SuiteError::Start(name.into(), e.to_string()))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| SuiteError::NoAddress(name.into()))?;
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    let found = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(rest) = line.trim().strip_prefix(prefix) {
                    break rest.trim().to_owned();
                }
                seen.push(line);
            }
            _ => return Err(SuiteError::NoAddress(name.into())),
        }
    };
    // Read the rest (Echo prints more lines) so the child never blocks on a full pipe.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    std::thread::sleep(Duration::from_millis(200));
    seen.extend(rx.try_iter());
    Ok((child, found, seen))
}

fn local(port: &str) -> Result<SocketAddr, SuiteError> {
    format!("127.0.0.1:{}", port.trim_end_matches('/'))
        .parse()
        .map_err(|_| SuiteError::NoAddress(port.into()))
}

pub(crate) const SECRET: &str = "bench-secret-bench-secret-bench-secret";
pub(crate) const MANAGE_TOKEN: &str = "bench-manage-token";

fn start_echo(data: &Path, manage_latency: Option<&str>) -> Result<Server, SuiteError> {
    let mut c = Command::new(sibling("echoctl"));
    // No publish rate limit: the other systems have none either.
    c.args([
        "serve",
        "--port",
        "0",
        "--manage-port",
        "0",
        "--publish-rate",
        "0",
        "--data-dir",
    ])
    .arg(data)
    .env("ECHO_JWT_SECRET", SECRET)
    .env("ECHO_MANAGE_TOKEN", MANAGE_TOKEN)
    .env("ECHO_LOG", "warn");
    if let Some(l) = manage_latency {
        c.args(["--manage-latency", l]);
    }
    // The edge's warnings (a slow store commit, say), shown at the end of the suite.
    let log = data.with_extension("log");
    let (child, addr, rest) = start(
        "echoctl serve",
        c,
        "echo edge listening on http://",
        Some(&log),
    )?;
    let manage = rest.iter().find_map(|l| {
        l.trim()
            .strip_prefix("management API  http://")
            .and_then(|r| r.split_whitespace().next())
            .and_then(|a| a.parse().ok())
    });
    Ok(Server {
        pids: vec![child.id()],
        addr: addr
            .parse()
            .map_err(|_| SuiteError::NoAddress(addr.clone()))?,
        manage,
        child,
        _deps: Vec::new(),
    })
}

/// Prints what the edges of this run logged (at `warn` and above), the last lines of each.
fn show_edge_warnings(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    let mut logs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    for log in logs {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.is_empty() {
            continue;
        }
        let name = log.file_stem().and_then(|n| n.to_str()).unwrap_or("edge");
        eprintln!("== {name} logged {} lines; the last:", lines.len());
        for line in &lines[lines.len().saturating_sub(20)..] {
            eprintln!("  {line}");
        }
    }
}

fn start_ceiling() -> Result<Server, SuiteError> {
    let mut c = Command::new(sibling("ceiling"));
    c.args(["--port", "0"]);
    let (child, port, _) = start("ceiling", c, "ceiling listening on", None)?;
    Ok(Server {
        pids: vec![child.id()],
        addr: local(&port)?,
        manage: None,
        child,
        _deps: Vec::new(),
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(6390)
}

/// Waits until something accepts connections on `port`.
fn wait_port(port: u16) -> Result<(), SuiteError> {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(10) {
            return Err(SuiteError::NoAddress(format!("port {port}")));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn start_baseline() -> Result<Server, SuiteError> {
    let redis_port = free_port();
    let redis_child = Command::new("redis-server")
        .args([
            "--port",
            &redis_port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| SuiteError::Start("redis-server".into(), e.to_string()))?;
    wait_port(redis_port)?;
    let redis = Server {
        pids: vec![redis_child.id()],
        addr: local(&redis_port.to_string())?,
        manage: None,
        child: redis_child,
        _deps: Vec::new(),
    };
    let port = free_port();
    let mut c = Command::new("node");
    c.arg(repo().join("bench/baseline/server.js"))
        .args([
            "--port",
            &port.to_string(),
            "--redis",
            &format!("redis://127.0.0.1:{redis_port}"),
        ])
        .arg("--associations")
        .arg(repo().join("apps/chat/associations.json"));
    let (child, _, _) = start("the socket.io baseline", c, "baseline listening on", None)?;
    Ok(Server {
        pids: vec![child.id(), redis.child.id()],
        addr: local(&port.to_string())?,
        manage: None,
        child,
        _deps: vec![redis],
    })
}

fn endpoint(system: System, server: &Server) -> Endpoint {
    Endpoint {
        system,
        addr: server.addr,
        secret: Some(SECRET.into()),
        app: "chat-demo".into(),
    }
}

/// Files the edge, and the generator, keep open to measure the AWS path with `subscribers`: one
/// socket per subscriber, the management API's connections (`concurrency` per invocation of
/// `batch` subscribers) and a margin for everything else.
fn files_needed(subscribers: usize, batch: usize, concurrency: usize) -> u64 {
    let management = concurrency * subscribers.div_ceil(batch.max(1));
    (subscribers + management + 1024) as u64
}

/// Runs `spec` `times` times on `server`; returns the run with the median `key` and every run's
/// `key`, in run order.
async fn median_run(
    e: &Endpoint,
    spec: &Spec,
    server: &Server,
    times: usize,
    key: fn(&Outcome) -> f64,
) -> Result<(Outcome, Vec<f64>), crate::target::TargetError> {
    let mut runs = Vec::with_capacity(times);
    for _ in 0..times.max(1) {
        runs.push(crate::load::run(e, spec, &server.pids).await?);
    }
    let values = runs.iter().map(key).collect();
    runs.sort_by(|a, b| key(a).total_cmp(&key(b)));
    let median = runs.swap_remove(runs.len() / 2);
    Ok((median, values))
}

/// A ladder step: `repeat` runs of `spec` (at `rate`) on `server`, keeping the run with the median
/// p99, since one run's p99 moves with whatever else this machine does in its 5 s. A run the
/// system does not sustain ends the step and is the step's: it leaves a backlog that a next run
/// would start with.
async fn ladder_step(
    e: &Endpoint,
    scenario: &'static str,
    rate: f64,
    spec: &Spec,
    server: &Server,
    repeat: usize,
) -> Result<Step, crate::target::TargetError> {
    let mut runs = Vec::with_capacity(repeat);
    for _ in 0..repeat.max(1) {
        let step = Step {
            scenario,
            rate,
            outcome: crate::load::run(e, spec, &server.pids).await?,
            p99_runs: Vec::new(),
        };
        let sustained = step.sustained();
        runs.push(step);
        if !sustained {
            break;
        }
    }
    let p99_runs = runs.iter().map(|s| s.outcome.latency.p99).collect();
    let mut step = match runs.iter().position(|s| !s.sustained()) {
        Some(behind) => runs.swap_remove(behind),
        None => {
            runs.sort_by(|a, b| a.outcome.latency.p99.total_cmp(&b.outcome.latency.p99));
            runs.swap_remove(runs.len() / 2)
        }
    };
    step.p99_runs = p99_runs;
    Ok(step)
}

/// The loads of `system`, on servers `fresh` starts (given a number no other of its servers had).
async fn loads(
    system: System,
    fresh: &dyn Fn(usize) -> Result<Server, SuiteError>,
    args: &SuiteArgs,
    results: &mut Results,
) -> crate::Result {
    let mut started = 1;
    let mut server = fresh(started)?;
    let mut e = endpoint(system, &server);
    let (warmup, duration) = if args.smoke {
        (Duration::from_millis(500), Duration::from_secs(2))
    } else {
        (Duration::from_secs(2), Duration::from_secs(5))
    };
    let subscribers = if args.smoke { 100 } else { args.subscribers };
    let base = Spec {
        subscribers,
        publishers: 4,
        channels: 1,
        channel: "bench".into(),
        rate: None,
        window: 16,
        payload: 100,
        http: false,
        warmup,
        duration,
    };
    let mut scenarios = vec![(PEAK, HOT, "bench")];
    if system != System::Ceiling {
        scenarios.push((CHAIN_PEAK, CHAIN, "angry"));
    }
    let repeat = if args.smoke { 1 } else { args.repeat.max(1) };
    let rates: &[f64] = if args.smoke { &SMOKE_LADDER } else { &LADDER };
    for (peak_name, ladder_name, channel) in scenarios {
        // The hot channel's peak carries a target: run it several times, keep the median.
        let times = if channel == "bench" { repeat } else { 1 };
        let spec = Spec {
            channel: channel.into(),
            ..base.clone()
        };
        let peak = median_run(&e, &spec, &server, times, |o| o.deliveries_per_s).await?;
        eprintln!("  {peak_name:<45} {}", crate::report::load_line(&peak.0));
        results.record(peak_name, peak);
        // Latency and CPU compared at equal offered loads: the same rates for every system,
        // open loop, publishes spread evenly.
        // A system stops climbing at the first step it does not sustain: it is left with a
        // backlog, which every higher step would only add to.
        for &rate in rates {
            let spec = Spec {
                rate: Some(rate),
                window: 1000,
                ..spec.clone()
            };
            let label = format!("{ladder_name}, {rate:.0}/s");
            let step = match ladder_step(&e, ladder_name, rate, &spec, &server, repeat).await {
                Ok(step) => Some(step),
                Err(error) => {
                    eprintln!("  {label:<45} {} failed: {error}", system.label());
                    None
                }
            };
            let sustained = step.as_ref().is_some_and(Step::sustained);
            if let Some(step) = step {
                eprintln!("  {label:<45} {}", crate::report::load_line(&step.outcome));
                results.ladder.push(step);
            }
            if !sustained {
                // Left with a backlog (socket.io may not survive it): the next loads get a new
                // server.
                drop(server);
                started += 1;
                server = fresh(started)?;
                e = endpoint(system, &server);
                break;
            }
        }
    }
    if system != System::Ceiling {
        let spec = Spec {
            channels: 100,
            channel: "lobby".into(),
            publishers: 8,
            ..base
        };
        let many = crate::load::run(&e, &spec, &server.pids).await?;
        eprintln!("  {MANY:<45} {}", crate::report::load_line(&many));
        results.loads.push((MANY.into(), many));
    }
    Ok(())
}

pub async fn run(args: SuiteArgs) -> crate::Result {
    let began = Instant::now();
    let mut results = Results {
        started: crate::report::now_utc(),
        ..Results::default()
    };
    let idle = if args.smoke { 300 } else { args.idle };
    let tmp = std::env::temp_dir().join(format!("echo-bench-{}", std::process::id()));
    for system in [System::Ceiling, System::Socketio, System::Echo] {
        eprintln!("== {}", system.label());
        let fresh = |n: usize| -> Result<Server, SuiteError> {
            match system {
                System::Echo => start_echo(&tmp.join(format!("echo-{n}")), None),
                System::Socketio => start_baseline(),
                System::Ceiling => start_ceiling(),
            }
        };
        // Memory per idle connection on a fresh server, then the loads on another.
        {
            let server = fresh(0)?;
            let o = crate::load::idle(&endpoint(system, &server), idle, &server.pids).await?;
            eprintln!(
                "  {idle} idle connections: {:.1} KB each (rss {:.1} -> {:.1} MB)",
                o.kb_per_connection, o.rss_before_mb, o.rss_after_mb
            );
            results.idle.push(o);
        }
        loads(system, &fresh, &args, &mut results).await?;
    }

    eprintln!("== the AWS delivery path");
    // At 20 ms per post this machine's cores run every invocation and every subscriber at once
    // (on AWS each invocation has its own); at 200 ms they keep up, and what is left is the
    // path itself.
    let series: Vec<(f64, u64, Vec<usize>)> = if args.smoke {
        vec![(FANOUT_LATENCY_MS, 1, vec![200])]
    } else {
        vec![
            (
                FANOUT_LATENCY_MS,
                FANOUT_ROUNDS,
                vec![1000, 5000, 10_000, 50_000],
            ),
            (
                FANOUT_SLOW_MS,
                FANOUT_SLOW_ROUNDS,
                vec![1000, 10_000, 50_000],
            ),
        ]
    };
    let (batch_size, concurrency) = (if args.smoke { 100 } else { 1000 }, 64);
    // `main` raised it to the hard limit already: this reads the limit back. The edge raises its
    // own the same way.
    let open_files = echo_edge::capacity::raise_open_files_limit();
    for (latency_ms, rounds, counts) in series {
        let mut subscribers = Vec::new();
        for n in counts {
            let files_needed = files_needed(n, batch_size, concurrency);
            match open_files {
                Some(open_files)
                    if files_needed > open_files
                        || n > echo_edge::capacity::connections_for(open_files) =>
                {
                    eprintln!(
                        "  {n} subscribers at {latency_ms} ms: left out, they need about \
                         {files_needed} open files per process and this machine allows {open_files}"
                    );
                    results.fanout_skipped.push(Skipped {
                        latency_ms,
                        subscribers: n,
                        files_needed,
                        open_files,
                    });
                }
                _ => subscribers.push(n),
            }
        }
        let latency = Duration::from_secs_f64(latency_ms / 1000.0);
        let edge = start_echo(
            &tmp.join(format!("fanout-{latency_ms}")),
            Some(&format!("{latency_ms}ms")),
        )?;
        let fan = FanoutArgs {
            addr: edge.addr,
            manage_addr: edge
                .manage
                .ok_or_else(|| SuiteError::NoAddress("management API".into()))?,
            manage_token: MANAGE_TOKEN.into(),
            secret: SECRET.into(),
            subscribers,
            latency,
            concurrency,
            batch_size,
            invoke_latency: Duration::from_millis(20),
            rounds,
            pids: edge.pids.clone(),
        };
        for &n in &fan.subscribers {
            let o = crate::fanout_path::measure(&fan, n).await?;
            eprintln!("  {}", crate::report::fanout_line(&o));
            results.fanout.push(o);
        }
    }

    if !args.skip_startup && !args.smoke {
        eprintln!(
            "== one hop less on AWS: faithful mode, {} subscribers",
            crate::aws_hop::SUBSCRIBERS
        );
        results.hop = crate::aws_hop::measure(&repo(), &tmp, args.smoke).await?;
        eprintln!("== Lambda start-up under cargo lambda watch");
        results.startup = crate::startup::measure_all(&repo()).await?;
        for s in &results.startup {
            eprintln!("  {}", crate::report::startup_line(s));
        }
    }
    show_edge_warnings(&tmp);
    let _ = std::fs::remove_dir_all(&tmp);
    results.took_secs = began.elapsed().as_secs_f64();

    let markdown = crate::report::markdown(&results, args.subscribers);
    if args.smoke {
        println!(
            "\nsmoke: small counts and whatever build ran it; these ratios are not the figures"
        );
    }
    println!("{}", crate::report::summary(&results));
    if !args.smoke || args.out.is_some() {
        let out = args
            .out
            .clone()
            .unwrap_or_else(|| repo().join("docs/benchmarks.md"));
        std::fs::write(&out, markdown)?;
        eprintln!("wrote {}", out.display());
    }
    eprintln!("suite took {:.0} s", results.took_secs);
    Ok(())
}
