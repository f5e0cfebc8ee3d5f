//! Rate limits per connection: publishes, subscribes and unsubscribes count against one
//! allowance (each is store work; the latter two a `$status` event too), refilled at `rate` per
//! second up to `burst`. A frame over the limit is refused with `rate_limited` and the time after
//! which one will be accepted; the connection stays open.
//!
//! Two ways of counting, one per environment ([`crate::admission`]): [`TokenBuckets`] in the local
//! edge's memory, and on AWS, where each frame may be handled by another invocation, an
//! [`Allowance`] kept with the connection's record (fixed windows of `burst / rate` seconds
//! holding `burst` frames each: the same sustained rate and burst, counted in one conditional
//! write that also reads the record).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::ids::ConnectionId;

/// A connection's allowance as a store counts it: at most `limit` frames in each fixed
/// window of `window_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    pub limit: u32,
    pub window_ms: u64,
}

impl Allowance {
    /// `rate` frames per second sustained, `burst` at once: windows of `burst / rate`
    /// seconds (at least one) holding `burst` each. `None` when `rate` is 0 (no limit).
    pub fn new(rate: u32, burst: u32) -> Option<Self> {
        if rate == 0 {
            return None;
        }
        let limit = burst.max(rate);
        Some(Self {
            limit,
            window_ms: (u64::from(limit) * 1000)
                .div_ceil(u64::from(rate))
                .max(1000),
        })
    }

    /// The window `now_ms` falls in, and the milliseconds until the next one.
    pub fn window(&self, now_ms: u64) -> (u64, u64) {
        let w = now_ms / self.window_ms;
        (w, (w + 1) * self.window_ms - now_ms)
    }
}

/// A token bucket per connection, in memory.
#[derive(Debug)]
pub struct TokenBuckets {
    /// Publishes per second, sustained.
    rate: f64,
    /// Publishes allowed at once after a quiet period.
    burst: f64,
    buckets: Mutex<HashMap<ConnectionId, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at_ms: u64,
}

impl TokenBuckets {
    /// `rate` frames per second, up to `burst` at once (at least 1 each).
    pub fn new(rate: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(rate.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }
}

impl TokenBuckets {
    /// `Ok` takes one frame from the connection's allowance; `Err` carries how many
    /// milliseconds until one is available.
    pub fn take(&self, id: &ConnectionId, now_ms: u64) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = buckets.entry(id.clone()).or_insert(Bucket {
            tokens: self.burst,
            at_ms: now_ms,
        });
        let elapsed = now_ms.saturating_sub(bucket.at_ms) as f64 / 1000.0;
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.at_ms = now_ms;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - bucket.tokens) / self.rate * 1000.0).ceil() as u64)
        }
    }

    /// Forgets a connection that is gone.
    pub fn forget(&self, id: &ConnectionId) {
        self.buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_allowance_keeps_the_rate_and_the_burst() {
        let a = Allowance::new(100, 200).unwrap();
        assert_eq!((a.limit, a.window_ms), (200, 2000));
        assert_eq!(a.window(5_500), (2, 500));
        assert_eq!(
            Allowance::new(10, 3).unwrap(),
            Allowance {
                limit: 10,
                window_ms: 1000
            }
        );
        assert_eq!(Allowance::new(0, 10), None);
    }

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let limiter = TokenBuckets::new(10, 3);
        let a = ConnectionId("a".into());
        for _ in 0..3 {
            assert_eq!(limiter.take(&a, 1_000), Ok(()));
        }
        assert_eq!(limiter.take(&a, 1_000), Err(100));
        // Other connections have their own allowance.
        assert_eq!(limiter.take(&ConnectionId("b".into()), 1_000), Ok(()));
        // 100 ms later one more is allowed, and no more.
        assert_eq!(limiter.take(&a, 1_100), Ok(()));
        assert!(limiter.take(&a, 1_100).is_err());
        // After a long pause, only the burst.
        for _ in 0..3 {
            assert_eq!(limiter.take(&a, 60_000), Ok(()));
        }
        assert!(limiter.take(&a, 60_000).is_err());
        limiter.forget(&a);
        assert_eq!(limiter.take(&a, 60_000), Ok(()));
    }
}
