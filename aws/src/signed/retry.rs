//! How often and how patiently a post is tried.
//!
//! The settings are the SDK's ([`RetryConfig`], as `aws-config` loads it: `AWS_MAX_ATTEMPTS`, the
//! profile, or the standard mode's defaults), with Echo's bound on an attempt. The SDK's standard
//! strategy itself runs only inside the SDK's request pipeline, which posts skip, so
//! [`SignedPoster::post`](super::SignedPoster::post) applies them: exponential backoff with full
//! jitter, as that strategy does.

use std::time::Duration;

use aws_config::retry::RetryConfig;

#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub max_attempts: u32,
    /// The first backoff's ceiling; each further one doubles it, up to `max_backoff`. The wait
    /// is drawn uniformly below the ceiling (full jitter).
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// The longest one attempt may take, response body included.
    pub attempt_timeout: Duration,
}

impl Retry {
    /// The SDK's standard retry mode, with Echo's bound on an attempt.
    pub fn standard(attempt_timeout: Duration) -> Self {
        Self::from_config(&RetryConfig::standard(), attempt_timeout)
    }

    /// `config`'s attempts and backoff, with Echo's bound on an attempt.
    pub fn from_config(config: &RetryConfig, attempt_timeout: Duration) -> Self {
        Self {
            max_attempts: config.max_attempts().max(1),
            initial_backoff: config.initial_backoff(),
            max_backoff: config.max_backoff(),
            attempt_timeout,
        }
    }

    /// The wait after `failed_attempts` attempts.
    pub(super) fn backoff(&self, failed_attempts: u32) -> Duration {
        let ceiling = self
            .initial_backoff
            .saturating_mul(1 << failed_attempts.saturating_sub(1).min(16))
            .min(self.max_backoff);
        ceiling.mul_f64(rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_sdk_settings() {
        let standard = Retry::standard(Duration::from_secs(2));
        assert_eq!(standard.max_attempts, 3);
        assert_eq!(standard.initial_backoff, Duration::from_secs(1));
        assert_eq!(standard.max_backoff, Duration::from_secs(20));
        let config = RetryConfig::standard()
            .with_max_attempts(5)
            .with_initial_backoff(Duration::from_millis(10))
            .with_max_backoff(Duration::from_millis(30));
        let retry = Retry::from_config(&config, Duration::from_secs(1));
        assert_eq!(retry.max_attempts, 5);
        for attempt in 1..10 {
            assert!(retry.backoff(attempt) <= Duration::from_millis(30));
        }
        assert!(retry.backoff(1) <= Duration::from_millis(10));
        assert_eq!(
            Retry::from_config(&RetryConfig::disabled(), Duration::ZERO).max_attempts,
            1
        );
    }
}
