//! What the benchmarks measured: the outcomes each one produces and the report prints, and the
//! names of the suite's series.

use serde::Serialize;

use crate::load::{IdleOutcome, Outcome};
use crate::target::System;

/// Everything the suite measured.
#[derive(Debug, Default, Serialize)]
pub struct Results {
    pub idle: Vec<IdleOutcome>,
    /// (scenario, outcome)
    pub loads: Vec<(String, Outcome)>,
    /// Every run of a repeated load, in run order; `loads` has the median one.
    pub repeats: Vec<Repeat>,
    /// The equal-load ladders: every system at the same offered rates.
    pub ladder: Vec<Step>,
    pub fanout: Vec<FanoutOutcome>,
    /// Subscriber counts of the AWS path this machine's open-file limit did not allow.
    pub fanout_skipped: Vec<Skipped>,
    pub startup: Vec<StartupOutcome>,
    /// A small channel in faithful mode, through fan-out and delivered directly.
    pub hop: Vec<HopOutcome>,
    pub started: String,
    pub took_secs: f64,
}

/// An AWS-path subscriber count left out: the edge and the generator would each need more open
/// files than this machine allows a process.
#[derive(Debug, Serialize)]
pub struct Skipped {
    pub latency_ms: f64,
    pub subscribers: usize,
    pub files_needed: u64,
    pub open_files: u64,
}

/// The runs of a repeated peak load, deliveries/s each (a ladder step keeps its runs' p99 in
/// [`Step::p99_runs`]).
#[derive(Debug, Serialize)]
pub struct Repeat {
    pub scenario: String,
    pub system: System,
    pub values: Vec<f64>,
}

impl Results {
    pub fn find(&self, scenario: &str, system: System) -> Option<&Outcome> {
        self.loads
            .iter()
            .find(|(s, o)| s == scenario && o.system == system)
            .map(|(_, o)| o)
    }

    /// Adds a load's reported run, and all its runs when there were several.
    pub fn record(&mut self, scenario: &str, (outcome, values): (Outcome, Vec<f64>)) {
        if values.len() > 1 {
            self.repeats.push(Repeat {
                scenario: scenario.into(),
                system: outcome.system,
                values,
            });
        }
        self.loads.push((scenario.into(), outcome));
    }
}

pub const PEAK: &str = "hot channel, no functions, peak";
pub const CHAIN_PEAK: &str = "hot channel, angry + emojify, peak";
pub const MANY: &str = "100 channels, no functions, peak";
/// The ladders' scenarios.
pub const HOT: &str = "hot channel, no functions";
pub const CHAIN: &str = "hot channel, angry + emojify";

/// The offered publishes/s of the ladders' steps, the same for every system.
pub const LADDER: [f64; 4] = [50.0, 200.0, 500.0, 1000.0];
/// With `--smoke`.
pub const SMOKE_LADDER: [f64; 2] = [50.0, 200.0];

/// One step of a ladder: a system at an offered rate, open loop.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub scenario: &'static str,
    /// Offered publishes/s.
    pub rate: f64,
    /// The run with the median p99.
    pub outcome: Outcome,
    /// Every run's p99, ms, in run order.
    pub p99_runs: Vec<f64>,
}

impl Step {
    /// Whether the system kept up: nearly every publish sent at the offered rate and
    /// acknowledged, and the deliveries they owe made. Deliveries are counted in the same
    /// window as publishes, so the messages in flight at its edges move the share by up to a
    /// percent either way: 99% is the bar.
    pub fn sustained(&self) -> bool {
        self.outcome.publishes_per_s >= 0.95 * self.rate
            && self.outcome.delivery_ratio >= 0.99
            && self.outcome.errors == 0
    }

    /// How busy the machine's cores were over the run: the server's CPU and the generator's,
    /// over every core's time, percent.
    pub fn machine_busy_percent(&self) -> f64 {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (self.outcome.cpu_percent + self.outcome.generator_cpu_percent) / cores as f64
    }

    /// The server's CPU time per delivery, microseconds: CPU seconds over deliveries in the same
    /// window, which holds steadier across runs than any wall-clock figure on a shared machine.
    pub fn cpu_us_per_delivery(&self) -> Option<f64> {
        let o = &self.outcome;
        (o.deliveries_per_s > 0.0).then(|| o.cpu_percent / 100.0 / o.deliveries_per_s * 1e6)
    }
}

impl Results {
    pub fn step(&self, scenario: &str, system: System, rate: f64) -> Option<&Step> {
        self.ladder
            .iter()
            .find(|s| s.scenario == scenario && s.outcome.system == system && s.rate == rate)
    }

    /// The highest offered rate `system` sustained in `scenario`, climbing from the lowest; none
    /// when it did not sustain the first.
    pub fn highest_sustained(&self, scenario: &str, system: System) -> Option<f64> {
        self.ladder
            .iter()
            .filter(|s| s.scenario == scenario && s.outcome.system == system)
            .take_while(|s| s.sustained())
            .map(|s| s.rate)
            .last()
    }
}
/// The management API's latency per post in the AWS path's main series, milliseconds.
pub const FANOUT_LATENCY_MS: f64 = 20.0;
/// The second series: slow enough that this machine's CPU is not what limits delivery.
pub const FANOUT_SLOW_MS: f64 = 200.0;
/// Rounds per subscriber count in the main series, whose times vary with this machine's CPU
/// from round to round; and in the second, which keeps up and varies less.
pub const FANOUT_ROUNDS: u64 = 7;
pub const FANOUT_SLOW_ROUNDS: u64 = 3;

/// What one subscriber count measured.
#[derive(Debug, Clone, Serialize)]
pub struct FanoutOutcome {
    pub subscribers: usize,
    pub invocations: usize,
    /// Median over rounds, milliseconds.
    pub delivery_ms: f64,
    /// Every round's delivery time, fastest first, milliseconds.
    pub rounds_ms: Vec<f64>,
    /// `ceil(subscribers / (invocations x concurrency)) x latency`: every post in flight all the
    /// time.
    pub ideal_ms: f64,
    /// One invocation alone: `subscribers x latency / concurrency`.
    pub single_invocation_ms: f64,
    pub per_invocation_mean_ms: f64,
    pub per_invocation_max_ms: f64,
    pub posts_per_invocation_max: usize,
    pub delivered: usize,
    /// The latency the edge injected per post, milliseconds.
    pub latency_ms: f64,
    /// One post alone, end to end through the same client (median of [`LONE_POSTS`]): the
    /// injected latency as the edge keeps it, plus the request's own time.
    pub post_alone_ms: f64,
    /// Posts in flight per invocation.
    pub concurrency: usize,
    /// CPU used by the edge and this process (the invocations and the subscribers) while the
    /// rounds ran, in percent of one core. Near all of the machine's cores, the figures measure
    /// this machine's CPU, not the path: on AWS every invocation has its own.
    pub cpu_percent: f64,
    /// One invocation of `posts` alone on a thread of its own: the CPU it used, milliseconds.
    pub invocation: Option<InvocationCpu>,
}

/// One invocation's own CPU: everything the fan-out code, the client and the kernel did on its
/// thread, the invocation's side of the path only.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct InvocationCpu {
    pub posts: usize,
    /// A new client: every connection to the management API is opened (a cold container).
    pub cold_ms: f64,
    /// The same client again: connections reused (a warm container).
    pub warm_ms: f64,
}

impl FanoutOutcome {
    /// Delivery time over the ideal; `None` when no wait per post makes the ideal zero.
    pub fn ratio(&self) -> Option<f64> {
        (self.ideal_ms > 0.0).then(|| self.delivery_ms / self.ideal_ms)
    }

    /// Delivery time over the ideal with one post alone in place of the injected latency.
    pub fn ratio_to_post_alone(&self) -> Option<f64> {
        let ideal = self.ideal_ms / self.latency_ms * self.post_alone_ms;
        (self.latency_ms > 0.0 && ideal > 0.0).then(|| self.delivery_ms / ideal)
    }
}

/// Posts timed one at a time for [`FanoutOutcome::post_alone_ms`].
pub const LONE_POSTS: usize = 9;

#[derive(Debug, Clone, Serialize)]
pub struct StartupOutcome {
    pub binary: String,
    /// The emulator's start, until it accepts invocations (the same for every binary).
    pub ready_ms: f64,
    pub first_invoke_ms: f64,
    pub warm_invoke_ms: f64,
    /// arm64 release `bootstrap` from `sam build`, when present.
    pub arm64_release_bytes: Option<u64>,
    /// The binary `cargo lambda watch` runs (debug).
    pub debug_bytes: Option<u64>,
}

/// A small channel on the AWS path in faithful mode.
#[derive(Debug, Clone, Serialize)]
pub struct HopOutcome {
    /// `through fan-out` or `direct`.
    pub path: &'static str,
    /// The message handler's `ECHO_DIRECT_MAX_SUBSCRIBERS`.
    pub direct_max_subscribers: usize,
    pub outcome: Outcome,
}
