//! How figures are printed and written to docs/benchmarks.md.

use crate::load::Outcome;
use crate::results::{
    CHAIN, CHAIN_PEAK, FANOUT_LATENCY_MS, FANOUT_ROUNDS, FANOUT_SLOW_MS, FANOUT_SLOW_ROUNDS,
    FanoutOutcome, HOT, LONE_POSTS, PEAK, Results, Skipped, StartupOutcome,
};
use crate::target::System;

/// One line per load, for the terminal.
pub fn load_line(o: &Outcome) -> String {
    format!(
        "{:<18} publishes/s {:>9.0}  deliveries/s {:>10.0} ({:>5.1}% of expected)  latency ms p50 {:>7.2} p90 {:>7.2} p99 {:>7.2} p99.9 {:>7.2}  server cpu {:>5.0}% rss {:>6.1} MB  generator cpu {:>4.0}%  skipped {} errors {}",
        o.system.label(),
        o.publishes_per_s,
        o.deliveries_per_s,
        o.delivery_ratio * 100.0,
        o.latency.p50,
        o.latency.p90,
        o.latency.p99,
        o.latency.p999,
        o.cpu_percent,
        o.rss_mb,
        o.generator_cpu_percent,
        o.skipped,
        o.errors
    )
}

pub fn fanout_line(o: &FanoutOutcome) -> String {
    let own = o.invocation.map_or(String::new(), |c| {
        format!(
            "; one invocation's own cpu for {} posts {:.1} ms warm, {:.1} ms cold",
            c.posts, c.warm_ms, c.cold_ms
        )
    });
    let ratio = fmt_ratio(o.ratio());
    format!(
        "fan-out {:>6} subscribers, {:>3.0} ms per post: {:>3} invocations, delivered {} in {:>7.1} ms (ideal {:>6.1} ms, {ratio}; one post alone {:.1} ms; one invocation alone {:>7.1} ms), per invocation mean {:>6.1} ms max {:>6.1} ms, at most {} posts each, cpu {:.0}%{own}",
        o.subscribers,
        o.latency_ms,
        o.invocations,
        o.delivered,
        o.delivery_ms,
        o.ideal_ms,
        o.post_alone_ms,
        o.single_invocation_ms,
        o.per_invocation_mean_ms,
        o.per_invocation_max_ms,
        o.posts_per_invocation_max,
        o.cpu_percent
    )
}

/// One invocation's own CPU (the median over the runs), and what it means for a Lambda, whose
/// CPU share follows its memory.
fn invocation_cpu(m: &mut String, fanout: &[FanoutOutcome]) {
    use std::fmt::Write;
    let mut runs: Vec<_> = fanout
        .iter()
        .filter_map(|f| f.invocation.map(|c| (c, f)))
        .collect();
    if runs.is_empty() {
        return;
    }
    runs.sort_by(|a, b| a.0.warm_ms.total_cmp(&b.0.warm_ms));
    let (cpu, f) = runs[runs.len() / 2];
    let mut cold: Vec<f64> = runs.iter().map(|(c, _)| c.cold_ms).collect();
    cold.sort_by(f64::total_cmp);
    let cold = cold[cold.len() / 2];
    // Against the posts of the series with the shortest wait per post, where CPU matters most.
    let f = fanout
        .iter()
        .min_by(|a, b| a.latency_ms.total_cmp(&b.latency_ms))
        .unwrap_or(f);
    let posts_time = f.latency_ms * cpu.posts.div_ceil(f.concurrency.max(1)) as f64;
    let _ = writeln!(
        m,
        "\n### One invocation's own CPU\n\nOne invocation of {posts} posts, run alone on a thread \
         of its own with a current-thread runtime as a Lambda runs its handler, once on a new \
         client (every connection opened: a cold container) and once more on the same client \
         (a warm one). The thread's CPU time (`/proc/thread-self/schedstat`) counts the fan-out \
         code, the signing, the HTTP client and the kernel's work for its requests. Median of {n} runs: **{warm:.1} ms \
         warm ({per:.0} µs a post)**, {cold:.1} ms cold.\n\nLambda gives CPU in proportion to \
         memory, one vCPU at 1,769 MB. The posts themselves take {posts_time:.0} ms ({per_in} in \
         flight, {lat:.0} ms each); the warm CPU time at each memory size, on a vCPU as fast as \
         this machine's core:\n\n| Memory | vCPU | CPU time | Against the posts' {posts_time:.0} ms |\n| ---: | ---: | ---: | ---: |",
        posts = cpu.posts,
        n = runs.len(),
        warm = cpu.warm_ms,
        per = cpu.warm_ms * 1000.0 / cpu.posts.max(1) as f64,
        per_in = f.concurrency,
        lat = f.latency_ms,
    );
    for mb in [256.0_f64, 512.0, 1024.0, 1769.0] {
        let share = mb / 1769.0;
        let time = cpu.warm_ms / share;
        let _ = writeln!(
            m,
            "| {mb:.0} MB | {share:.2} | {time:.0} ms | {:.2}x |",
            time / posts_time.max(1e-9)
        );
    }
    let _ = writeln!(m);
}

pub fn startup_line(o: &StartupOutcome) -> String {
    format!(
        "{:<16} emulator ready {:>6.0} ms, first invoke {:>6.0} ms, warm invoke {:>5.1} ms, arm64 release {}, debug {}",
        o.binary,
        o.ready_ms,
        o.first_invoke_ms,
        o.warm_invoke_ms,
        o.arm64_release_bytes.map_or("-".to_owned(), mb),
        o.debug_bytes.map_or("-".to_owned(), mb),
    )
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_048_576.0)
}

/// The subscriber counts this machine's open-file limit left out, and why.
fn skipped(m: &mut String, skipped: &[Skipped]) {
    use std::fmt::Write;
    let Some(first) = skipped.first() else {
        return;
    };
    let runs = skipped
        .iter()
        .map(|s| format!("{} subscribers at {} ms", s.subscribers, s.latency_ms))
        .collect::<Vec<_>>()
        .join(", ");
    let needed = skipped.iter().map(|s| s.files_needed).max().unwrap_or(0);
    let _ = writeln!(
        m,
        "\nLeft out here: {runs}. The edge and the generator would each keep up to {needed} files \
         open (a socket per subscriber, the management API's connections, a margin), and this \
         machine allows a process {} (its hard limit, `ulimit -Hn`, which the suite and the edge \
         raise their soft limits to). Where the hard limit allows, the suite runs them.\n",
        first.open_files
    );
}

/// The current time, UTC, as `date -u` prints it.
pub fn now_utc() -> String {
    command("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
}

fn command(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn machine() -> Vec<(String, String)> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|r| r.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or("unknown".to_owned(), |kb| {
            format!("{:.1} GB", kb as f64 / 1_048_576.0)
        });
    vec![
        ("CPU".into(), format!("{model}, {cores} cores available")),
        ("Memory".into(), mem),
        ("Kernel".into(), command("uname", &["-sr"])),
        ("rustc".into(), command("rustc", &["-V"])),
        ("Node.js".into(), command("node", &["-v"])),
        ("Redis".into(), command("redis-server", &["-v"])),
        ("Echo".into(), env!("CARGO_PKG_VERSION").to_owned()),
    ]
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or("-".into(), |r| format!("{r:.2}x"))
}

/// The fastest and the slowest of a series of times in milliseconds, fastest first.
fn spread(ms: &[f64]) -> String {
    match (ms.first(), ms.last()) {
        (Some(a), Some(b)) => format!("{a:.0}–{b:.0} ms"),
        _ => "-".into(),
    }
}

/// Each target of the benchmarks, measured: (what, figure, target, met).
pub fn targets(r: &Results) -> Vec<(String, String, String, Option<bool>)> {
    use crate::target::System::{Ceiling, Echo, Socketio};
    let d = |s: &str, sys| r.find(s, sys).map(|o| o.deliveries_per_s);
    let idle = |sys| {
        r.idle
            .iter()
            .find(|i| i.system == sys)
            .map(|i| i.kb_per_connection)
    };
    let mut out = Vec::new();
    let vs_base = ratio(d(PEAK, Echo), d(PEAK, Socketio));
    out.push((
        "Hot channel deliveries/s, Echo / socket.io".into(),
        fmt_ratio(vs_base),
        ">= 5x".into(),
        vs_base.map(|x| x >= 5.0),
    ));
    let vs_ceiling = ratio(d(PEAK, Echo), d(PEAK, Ceiling));
    out.push((
        "Hot channel deliveries/s, Echo / ceiling".into(),
        fmt_ratio(vs_ceiling),
        ">= 0.9x".into(),
        vs_ceiling.map(|x| x >= 0.9),
    ));
    let chain = ratio(d(CHAIN_PEAK, Echo), d(CHAIN_PEAK, Socketio));
    out.push((
        "angry + emojify deliveries/s, Echo / socket.io".into(),
        fmt_ratio(chain),
        ">= 5x".into(),
        chain.map(|x| x >= 5.0),
    ));
    // Equal loads: every step up to the highest the ceiling sustains.
    if let Some(top) = r.highest_sustained(HOT, Ceiling) {
        let steps: Vec<f64> = r
            .ladder
            .iter()
            .filter(|s| s.scenario == HOT && s.outcome.system == Ceiling && s.rate <= top)
            .map(|s| s.rate)
            .collect();
        let worst = |f: &dyn Fn(&crate::results::Step) -> Option<f64>| -> Option<f64> {
            steps
                .iter()
                .map(|&rate| {
                    ratio(
                        r.step(HOT, Echo, rate).and_then(f),
                        r.step(HOT, Ceiling, rate).and_then(f),
                    )
                })
                .collect::<Option<Vec<f64>>>()
                .and_then(|v| v.into_iter().reduce(f64::max))
        };
        let p99 = worst(&|s| Some(s.outcome.latency.p99));
        out.push((
            format!("p99 at equal load, Echo / ceiling, worst step to {top:.0}/s"),
            fmt_ratio(p99),
            "<= 1.3x".into(),
            p99.map(|x| x <= 1.3),
        ));
        let cpu = worst(&|s| s.cpu_us_per_delivery());
        out.push((
            format!("CPU per delivery at equal load, Echo / ceiling, worst step to {top:.0}/s"),
            fmt_ratio(cpu),
            "<= 1.15x".into(),
            cpu.map(|x| x <= 1.15),
        ));
        let kept_up = steps
            .iter()
            .all(|&rate| r.step(HOT, Echo, rate).is_some_and(|s| s.sustained()));
        out.push((
            format!("Echo sustains every step the ceiling does (to {top:.0}/s)"),
            if kept_up { "yes" } else { "no" }.into(),
            "yes".into(),
            Some(kept_up),
        ));
    }
    if let Some(top) = r.highest_sustained(HOT, Socketio) {
        let p99 = |sys| r.step(HOT, sys, top).map(|s| s.outcome.latency.p99);
        let lat = ratio(p99(Echo), p99(Socketio));
        out.push((
            format!(
                "p99 at equal load, Echo / socket.io, at {top:.0}/s (socket.io's highest sustained)"
            ),
            fmt_ratio(lat),
            "<= 0.33x".into(),
            lat.map(|x| x <= 1.0 / 3.0),
        ));
    }
    if let [before, after] = r.hop.as_slice() {
        for (what, of) in [
            ("p50", (|o: &Outcome| o.latency.p50) as fn(&Outcome) -> f64),
            ("p99", |o: &Outcome| o.latency.p99),
        ] {
            let x = ratio(Some(of(&after.outcome)), Some(of(&before.outcome)));
            out.push((
                format!(
                    "AWS path, channel of {}, {what} direct / through fan-out (faithful mode)",
                    crate::aws_hop::SUBSCRIBERS
                ),
                fmt_ratio(x),
                "<= 0.6x".into(),
                x.map(|x| x <= 0.6),
            ));
        }
    }
    let mem = ratio(idle(Echo), idle(Socketio));
    out.push((
        "Memory per idle connection, Echo / socket.io".into(),
        fmt_ratio(mem),
        "<= 0.5x".into(),
        mem.map(|x| x <= 0.5),
    ));
    for (series, note) in [(FANOUT_LATENCY_MS, ""), (FANOUT_SLOW_MS, ", not CPU-bound")] {
        let runs: Vec<_> = r.fanout.iter().filter(|f| f.latency_ms == series).collect();
        if let Some(f) = runs.iter().find(|f| f.subscribers == 10_000) {
            let x = f.ratio();
            out.push((
                format!("AWS path, 10k subscribers, time / ideal ({series:.0} ms{note})"),
                fmt_ratio(x),
                "<= 1.3x".into(),
                x.map(|x| x <= 1.3),
            ));
            out.push((
                format!(
                    "Same, against the ideal at one post alone ({:.1} ms)",
                    f.post_alone_ms
                ),
                fmt_ratio(f.ratio_to_post_alone()),
                "-".into(),
                None,
            ));
        }
        if let (Some(small), Some(large)) = (runs.first(), runs.last())
            && large.subscribers > small.subscribers
        {
            let x = large.per_invocation_max_ms / small.per_invocation_max_ms.max(1e-9);
            out.push((
                format!(
                    "AWS path, slowest invocation {}k / {}k ({series:.0} ms{note})",
                    large.subscribers / 1000,
                    small.subscribers / 1000
                ),
                format!("{x:.2}x"),
                "flat (<= 1.3x)".into(),
                Some(x <= 1.3),
            ));
        }
    }
    out
}

/// The comparison, for the terminal.
pub fn summary(r: &Results) -> String {
    let mut s = String::from(
        "\ntarget                                                                        measured    target     met\n",
    );
    for (what, got, want, met) in targets(r) {
        let met = match met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        };
        s.push_str(&format!("{what:<77} {got:>9}   {want:<9}  {met}\n"));
    }
    s
}

/// docs/benchmarks.md.
pub fn markdown(r: &Results, subscribers: usize) -> String {
    use std::fmt::Write;
    let mut m = String::new();
    let _ = writeln!(m, "# Benchmarks\n");
    let _ = writeln!(
        m,
        "Echo, the original architecture (a Node.js socket.io server with the Redis adapter, running \
         the same demo functions in-process) and a ceiling (a raw WebSocket broadcaster on the same \
         transport crates as the edge: no auth, routing, storage or middleware), measured in one run \
         on one machine by `echo-bench suite`. Written by that run on {}; the suite took {:.0} s.\n",
        r.started, r.took_secs
    );
    let _ = writeln!(
        m,
        "## Reproduce\n\n```sh\nbash bench/run.sh            # builds in release, installs redis-server and the baseline's packages, runs, writes this file\n```\n"
    );
    let _ = writeln!(m, "## Machine\n\n| | |\n| --- | --- |");
    for (k, v) in machine() {
        let _ = writeln!(m, "| {k} | {v} |");
    }
    let _ = writeln!(
        m,
        "\nThe generator and the servers share the machine: every figure includes the generator's \
         own cost, the same for each system: subscribers of all three use one minimal reader, and \
         publishers of all three one loop of raw frames.\n"
    );
    let _ = writeln!(
        m,
        "## Targets\n\n| Comparison | Measured | Target | Met |\n| --- | --- | --- | --- |"
    );
    for (what, got, want, met) in targets(r) {
        let met = match met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "-",
        };
        let _ = writeln!(m, "| {what} | {got} | {want} | {met} |");
    }
    let _ = writeln!(
        m,
        "\n## Loads\n\n{} subscribers on one channel (or spread over 100), 4 publishers (8 for 100 \
         channels), about 100 bytes of data per message, 2 s of warm-up then 5 s measured. \
         \"Peak\": each publisher keeps 16 publishes unacknowledged (the ceiling acknowledges \
         each frame once it is queued for every subscriber). Latency is \
         publish to delivery (the publish time travels in the data), over every delivery in the \
         window. Delivered: deliveries as a share of acknowledged publishes x subscribers.\n",
        subscribers
    );
    let _ = writeln!(
        m,
        "| Scenario | System | Publishes/s | Deliveries/s | Delivered | p50 ms | p90 ms | p99 ms | p99.9 ms | Server CPU | Server RSS | Generator CPU |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for (scenario, o) in &r.loads {
        let _ = writeln!(
            m,
            "| {scenario} | {} | {:.0} | {:.0} | {:.1}% | {:.2} | {:.2} | {:.2} | {:.2} | {:.0}% | {:.0} MB | {:.0}% |",
            o.system.label(),
            o.publishes_per_s,
            o.deliveries_per_s,
            o.delivery_ratio * 100.0,
            o.latency.p50,
            o.latency.p90,
            o.latency.p99,
            o.latency.p999,
            o.cpu_percent,
            o.rss_mb,
            o.generator_cpu_percent
        );
    }
    let _ = writeln!(
        m,
        "\nCPU is percent of one core (the baseline's server figure includes redis-server). The \
         generator runs on the same two cores: where server and generator together approach \
         200%, latency includes waiting for a core.\n"
    );
    if !r.repeats.is_empty() {
        let _ = writeln!(
            m,
            "Each system's hot-channel peak ran {} times, one after another on the same \
             server; the table shows the median run by deliveries/s. Every run:\n\n\
             | Scenario | System | Runs |\n| --- | --- | --- |",
            r.repeats[0].values.len()
        );
        for rep in &r.repeats {
            let runs: Vec<String> = rep
                .values
                .iter()
                .map(|v| format!("{v:.0} deliveries/s"))
                .collect();
            let _ = writeln!(
                m,
                "| {} | {} | {} |",
                rep.scenario,
                rep.system.label(),
                runs.join(", ")
            );
        }
        let _ = writeln!(m);
    }
    ladders(&mut m, r);
    let _ = writeln!(
        m,
        "## Idle connections\n\n| System | Connections | RSS before | RSS after | Per connection |\n| --- | ---: | ---: | ---: | ---: |"
    );
    for i in &r.idle {
        let _ = writeln!(
            m,
            "| {} | {} | {:.1} MB | {:.1} MB | {:.1} KB |",
            i.system.label(),
            i.connections,
            i.rss_before_mb,
            i.rss_after_mb,
            i.kb_per_connection
        );
    }
    let _ = writeln!(
        m,
        "\nEach connection is subscribed to one of 100 channels. The baseline's figure includes \
         redis-server.\n"
    );
    let _ = writeln!(
        m,
        "## The AWS delivery path\n\nThe fan-out Lambda's code (`fanout::fan_out`) posting through \
         the Lambdas' management API client to the local edge's `@connections` API, which waits \
         a set time per request (`--manage-latency`): 20 ms in the main series, as API Gateway's \
         management API takes tens of milliseconds. 64 posts in flight per invocation, 1,000 subscribers per invocation; \
         further invocations start 20 ms after being handed their batch, as an asynchronous \
         invoke would. Subscribers are real WebSocket connections to the edge. Delivery time runs \
         from the start of the first invocation to the last subscriber receiving the message \
         (the median of {FANOUT_ROUNDS} rounds, or {FANOUT_SLOW_ROUNDS} at 200 ms, whose \
         fastest and slowest are shown beside it; one client serves every round, as a warm \
         container keeps its connections). Ideal: every \
         invocation keeps 64 posts in flight all the time, \
         `ceil(subscribers / (invocations x 64)) x latency per post`.\n\nOn AWS every \
         invocation runs on its own CPU; here the invocations, the edge and every subscriber \
         share this machine's cores. The CPU column is theirs together, in percent of one core: \
         near all of the cores, the time measures the machine rather than the path. The second \
         series waits 200 ms per post, so the same posts are spread over ten times as long and \
         the cores keep up: what remains is the path's own overhead and whether sharding keeps \
         each invocation's time flat.\n\nOne post alone: a post timed on its own through \
         the same client, the median of {LONE_POSTS}: the wait as the edge keeps it plus the \
         request's own time (a tenth of a millisecond here without a wait; waking from the wait \
         takes a few tenths more). Against it: the delivery time over the ideal with one post \
         alone in place of the wait, the share of the ratio that is neither the emulator's wait \
         nor the request itself.\n"
    );
    let _ = writeln!(
        m,
        "| Per post | Subscribers | Invocations | Delivery time | Rounds, fastest to slowest | Ideal | Ratio | One post alone | Against it | One invocation alone | Per invocation, mean | Per invocation, max | Posts per invocation, max | CPU |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for f in &r.fanout {
        let _ = writeln!(
            m,
            "| {:.0} ms | {} | {} | {:.0} ms | {} | {:.0} ms | {} | {:.1} ms | {} | {:.0} ms | {:.0} ms | {:.0} ms | {} | {:.0}% |",
            f.latency_ms,
            f.subscribers,
            f.invocations,
            f.delivery_ms,
            spread(&f.rounds_ms),
            f.ideal_ms,
            fmt_ratio(f.ratio()),
            f.post_alone_ms,
            fmt_ratio(f.ratio_to_post_alone()),
            f.single_invocation_ms,
            f.per_invocation_mean_ms,
            f.per_invocation_max_ms,
            f.posts_per_invocation_max,
            f.cpu_percent
        );
    }
    skipped(&mut m, &r.fanout_skipped);
    invocation_cpu(&mut m, &r.fanout);
    hop(&mut m, r);
    if !r.startup.is_empty() {
        let _ = writeln!(
            m,
            "## Lambda start-up under `cargo lambda watch`\n\nThe emulator is started once to build \
             what it needs (not reported), then again for these figures. Ready: from starting the \
             emulator to it accepting invocations. First invoke: cargo's up-to-date check, starting \
             the binary, its initialisation (configuration, AWS clients) and one event the binary \
             answers without AWS. Warm: the next event. Sizes: the arm64 release `bootstrap` from \
             `sam build` (what is deployed) and the debug binary the emulator runs.\n"
        );
        let _ = writeln!(
            m,
            "| Binary | Emulator ready | First invoke | Warm invoke | arm64 release | debug |\n| --- | ---: | ---: | ---: | ---: | ---: |"
        );
        for s in &r.startup {
            let _ = writeln!(
                m,
                "| {} | {:.0} ms | {:.0} ms | {:.1} ms | {} | {} |",
                s.binary,
                s.ready_ms,
                s.first_invoke_ms,
                s.warm_invoke_ms,
                s.arm64_release_bytes.map_or("-".to_owned(), mb),
                s.debug_bytes.map_or("-".to_owned(), mb),
            );
        }
    }
    m
}

/// The equal-load ladders, a table per scenario.
fn ladders(m: &mut String, r: &Results) {
    use std::fmt::Write;
    if r.ladder.is_empty() {
        return;
    }
    let _ = writeln!(
        m,
        "## Equal-load ladders\n\nEvery system at the same offered publishes/s to the same \
         subscribers, open loop (each publisher at its share of the rate, the publishers' ticks \
         staggered evenly), 2 s of warm-up then 5 s measured. Each step runs several times on the \
         same server (three unless `--repeat` says otherwise, once with `--smoke`); the row is \
         the run with the median p99, every run's p99 beside it. This is where latencies \
         compare: a system's p99 at a load it sustains against another's at the same \
         load. A step is *sustained* when at least 95% of the offered publishes were sent and \
         acknowledged and at least 99% of the deliveries they owe arrived (deliveries are counted in the same window as publishes, so the messages in flight at its edges move the share by up to a percent either way). CPU per delivery \
         is the server process's CPU time over the deliveries it made in the same window (the \
         baseline's includes redis-server): it holds far steadier than wall-clock figures on a \
         machine the generator shares. *Machine busy* is the server's CPU and the generator's \
         over every core's time: near 100%, each waits for a core, and its latencies measure \
         the machine as much as the system. The ratios are Echo's over the ceiling's at the \
         same step.\n"
    );
    for scenario in [HOT, CHAIN] {
        if !r.ladder.iter().any(|s| s.scenario == scenario) {
            continue;
        }
        let _ = writeln!(
            m,
            "### {scenario}\n\n| Offered/s | System | Publishes/s | Delivered | p50 ms | p99 ms | p99 of each run, ms | p99.9 ms | CPU per delivery | Machine busy | p99 / ceiling | CPU / ceiling |\n| ---: | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |"
        );
        for step in r.ladder.iter().filter(|s| s.scenario == scenario) {
            let o = &step.outcome;
            let ceiling = r.step(scenario, System::Ceiling, step.rate);
            let vs = |f: &dyn Fn(&crate::results::Step) -> Option<f64>| match o.system {
                System::Echo => fmt_ratio(ratio(f(step), ceiling.and_then(f))),
                _ => "-".into(),
            };
            let _ = writeln!(
                m,
                "| {:.0} | {} | {:.0} | {:.1}%{} | {:.2} | {:.2} | {} | {:.2} | {} | {:.0}% | {} | {} |",
                step.rate,
                o.system.label(),
                o.publishes_per_s,
                o.delivery_ratio * 100.0,
                if step.sustained() {
                    ""
                } else {
                    " (not sustained)"
                },
                o.latency.p50,
                o.latency.p99,
                step.p99_runs
                    .iter()
                    .map(|p| format!("{p:.1}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                o.latency.p999,
                step.cpu_us_per_delivery()
                    .map_or("-".into(), |c| format!("{c:.2} µs")),
                step.machine_busy_percent(),
                vs(&|s| Some(s.outcome.latency.p99)),
                vs(&|s| s.cpu_us_per_delivery()),
            );
        }
        let highest: Vec<String> = [System::Ceiling, System::Echo, System::Socketio]
            .into_iter()
            .filter(|&sys| {
                r.ladder
                    .iter()
                    .any(|s| s.scenario == scenario && s.outcome.system == sys)
            })
            .map(|sys| {
                let top = r
                    .highest_sustained(scenario, sys)
                    .map_or("none".to_owned(), |t| format!("{t:.0}/s"));
                format!("{} {top}", sys.label())
            })
            .collect();
        let _ = writeln!(
            m,
            "\nHighest step sustained: {}. A system stops climbing at the first step it does not \
             sustain, which leaves it a backlog that every higher step would only add to; its \
             next loads run on a new server.\n",
            highest.join(", ")
        );
    }
}

/// A small channel on the AWS path, through fan-out and delivered directly.
fn hop(m: &mut String, r: &Results) {
    use std::fmt::Write;
    if r.hop.is_empty() {
        return;
    }
    let _ = writeln!(
        m,
        "## One hop less on AWS: a small channel in faithful mode\n\n`echoctl dev --faithful`: the \
         real handler and fan-out Lambdas under `cargo lambda watch` against dynalite, the edge \
         in front as API Gateway. AWS publishes no latency for the management API or for an \
         asynchronous invocation's time in Lambda's queue, so both are emulated and stated: every \
         management API call waits {} ms (`--manage-latency`), every asynchronous invocation {} \
         ms (`--async-invoke-delay`). {} subscribers on one channel, one publisher at {}/s, \
         3 s of warm-up then 30 s measured, once with the message handler handing every message \
         to the fan-out Lambda (`ECHO_DIRECT_MAX_SUBSCRIBERS=0`, the path before) and once \
         delivering the small channel itself (the default, up to 100 subscribers). Latency is \
         publish to delivery at every subscriber. The Lambdas are built with optimizations, as \
         `sam build` builds them (`--release-lambdas`), and dynalite stands in for DynamoDB, so \
         the absolute figures are this machine's; the difference between the rows is the hop. \
         Large channels take the fan-out path in both, so the AWS delivery path above is the \
         same code as before.\n",
        crate::aws_hop::MANAGE_LATENCY_MS,
        crate::aws_hop::ASYNC_DELAY_MS,
        crate::aws_hop::SUBSCRIBERS,
        crate::aws_hop::RATE,
    );
    let _ = writeln!(
        m,
        "| Path | Publishes/s | Delivered | p50 ms | p90 ms | p99 ms | max ms |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for h in &r.hop {
        let o = &h.outcome;
        let _ = writeln!(
            m,
            "| {} | {:.1} | {:.1}% | {:.1} | {:.1} | {:.1} | {:.1} |",
            h.path,
            o.publishes_per_s,
            o.delivery_ratio * 100.0,
            o.latency.p50,
            o.latency.p90,
            o.latency.p99,
            o.latency.max
        );
    }
    let _ = writeln!(m);
}
