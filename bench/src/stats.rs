//! What a run measures: latency histograms, counts, and the server's CPU and memory from /proc.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Publish-to-delivery latencies in microseconds, up to a minute.
#[allow(clippy::expect_used)]
pub fn histogram() -> Histogram<u64> {
    // Constant, valid bounds: creation cannot fail.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Self {
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        Self {
            p50: ms(0.5),
            p90: ms(0.9),
            p99: ms(0.99),
            p999: ms(0.999),
            max: h.max() as f64 / 1000.0,
        }
    }
}

/// CPU time the calling thread has used, from the scheduler's own accounting in nanoseconds
/// (`/proc/thread-self/schedstat`); `None` where the kernel does not keep it.
pub fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace()
        .next()?
        .parse()
        .ok()
        .map(Duration::from_nanos)
}

/// CPU time (user + system) and resident memory of a set of processes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub cpu_ticks: u64,
    pub rss_kb: u64,
}

/// Clock ticks per second for /proc/PID/stat times (USER_HZ; 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

pub fn usage(pids: &[u32]) -> Usage {
    let mut total = Usage::default();
    for pid in pids {
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            // Fields after the command name (which may contain spaces) start at ") ".
            if let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) {
                let fields: Vec<&str> = rest.split_whitespace().collect();
                // utime and stime are fields 14 and 15 of the full line: 11 and 12 here.
                let tick = |i: usize| {
                    fields
                        .get(i)
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0)
                };
                total.cpu_ticks += tick(11) + tick(12);
            }
        }
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            total.rss_kb += status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    total
}

/// CPU use between two samples, in percent of one core.
pub fn cpu_percent(before: Usage, after: Usage, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64().max(1e-9);
    after.cpu_ticks.saturating_sub(before.cpu_ticks) as f64 / TICKS_PER_SEC / secs * 100.0
}

/// Finds the `"t":NUMBER` field a publisher put in the data: the publish time, in microseconds
/// since the run started.
pub fn sent_at(frame: &str) -> Option<u64> {
    let start = frame.find("\"t\":")? + 4;
    let digits: &str = &frame[start..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_timestamp() {
        assert_eq!(
            sent_at(r#"{"type":"message","data":{"text":"xx","t":12345},"seq":1}"#),
            Some(12345)
        );
        assert_eq!(sent_at(r#"42["message",{"data":{"t":7}}]"#), Some(7));
        assert_eq!(sent_at(r#"{"text":"no"}"#), None);
    }

    #[test]
    fn percentiles_in_milliseconds() {
        let mut h = histogram();
        for v in 1..=1000u64 {
            h.record(v * 1000).unwrap();
        }
        let l = Latency::of(&h);
        assert!((l.p50 - 500.0).abs() < 1.0, "{l:?}");
        assert!((l.p99 - 990.0).abs() < 1.0, "{l:?}");
    }
}
