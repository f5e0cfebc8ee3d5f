//! Configuration from the environment, as `template.yaml` sets it.

use std::time::Duration;

pub use aws_config::SdkConfig;
use thiserror::Error;

/// A variable that is missing or does not parse; the message names it.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is {value:?}: {expected}")]
    Invalid {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
}

/// Everything the Echo Lambdas read from their environment. Each Lambda reads only the parts it
/// uses (see the `for_*` constructors); unset optional values take the defaults documented here.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// `ECHO_CONNECTIONS_TABLE`.
    pub connections_table: String,
    /// `ECHO_HISTORY_TABLE`.
    pub history_table: String,
    /// `ECHO_SUBSCRIBER_SHARDS` (default 8): partitions a channel's subscribers are spread over.
    pub subscriber_shards: u32,
    /// `ECHO_HISTORY_TTL_SECS` (default 86400).
    pub history_ttl_secs: u64,
    /// `ECHO_DEDUP_WINDOW_SECS` (default 120, at most `ECHO_HISTORY_TTL_SECS`): how long a
    /// publisher-given message id is remembered per channel.
    pub dedup_window_secs: u64,
    /// `ECHO_FANOUT_FUNCTION`: the fan-out Lambda's name.
    pub fanout_function: String,
    /// `ECHO_RELAY_FUNCTION`: the message handler Lambda's name, where the connect handler hands
    /// what `onConnect` functions publish.
    pub relay_function: String,
    /// `ECHO_MANAGEMENT_ENDPOINT`: `https://{api}.execute-api.{region}.amazonaws.com/{stage}`.
    pub management_endpoint: String,
    /// `ECHO_FUNCTION_PREFIX` (default empty): prepended to function names from associations to
    /// get Lambda function names.
    pub function_prefix: String,
    /// `ECHO_ASSOCIATIONS_CACHE_SECS` (default 5): how stale a Lambda's associations may be.
    pub associations_cache: Duration,
    /// `ECHO_FANOUT_CONCURRENCY` (default 64): posts in flight per fan-out invocation.
    pub fanout_concurrency: usize,
    /// `ECHO_FANOUT_BATCH_SIZE` (default 1000): subscribers one fan-out invocation posts to.
    pub fanout_batch_size: usize,
    /// `ECHO_DIRECT_MAX_SUBSCRIBERS` (default 100): the message handler delivers a message of a
    /// channel with at most this many subscribers itself, beside its answer, instead of handing it
    /// to the fan-out Lambda; 0 hands every message over.
    pub direct_max_subscribers: usize,
    /// `ECHO_DIRECT_BUDGET_MS` (default 1000): how long the message handler may spend delivering
    /// itself; what is left then goes to the fan-out Lambda.
    pub direct_budget: Duration,
    /// `ECHO_KEYS_SECRET`: the Secrets Manager secret (name or ARN) holding the key set: the
    /// apps' keys, trusted issuers and the instance secret.
    pub keys_secret: String,
    /// `ECHO_KEYS_CACHE_SECS` (default 10): how stale a container's key set may be, so how long
    /// a revocation takes to be in force everywhere.
    pub keys_cache: Duration,
    /// `ECHO_JWT_SECRET` (optional, for stacks and tests that still set it): the instance
    /// secret, over the key set's `instanceSecret`.
    pub jwt_secret: String,
    /// `ECHO_PUBLISH_RATE` (default 100, 0 for no limit): publishes per second one connection
    /// may sustain.
    pub publish_rate: u32,
    /// `ECHO_PUBLISH_BURST` (default 200): publishes one connection may make at once.
    pub publish_burst: u32,
}

/// Reads variables through a function, so tests need not touch the process environment.
pub struct Env<F: Fn(&str) -> Option<String>>(pub F);

impl<F: Fn(&str) -> Option<String>> Env<F> {
    fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        match (self.0)(name) {
            Some(v) if !v.trim().is_empty() => Ok(v),
            _ => Err(ConfigError::Missing(name)),
        }
    }

    fn number<T: std::str::FromStr>(
        &self,
        name: &'static str,
        default: T,
        valid: impl Fn(&T) -> bool,
        expected: &'static str,
    ) -> Result<T, ConfigError> {
        match (self.0)(name) {
            None => Ok(default),
            Some(v) => match v.trim().parse::<T>() {
                Ok(n) if valid(&n) => Ok(n),
                _ => Err(ConfigError::Invalid {
                    name,
                    value: v,
                    expected,
                }),
            },
        }
    }
}

impl std::fmt::Debug for Secret<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "<unset>"
        } else {
            "<redacted>"
        })
    }
}

struct Secret<'a>(&'a str);

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from(&Env(|name: &str| std::env::var(name).ok()))
    }

    pub fn from<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let history_ttl_secs = env.number(
            "ECHO_HISTORY_TTL_SECS",
            86_400,
            |n| *n > 0,
            "a positive number of seconds",
        )?;
        Ok(Self {
            connections_table: env.required("ECHO_CONNECTIONS_TABLE")?,
            history_table: env.required("ECHO_HISTORY_TABLE")?,
            subscriber_shards: env.number(
                "ECHO_SUBSCRIBER_SHARDS",
                8,
                |n| (1..=64).contains(n),
                "a number from 1 to 64",
            )?,
            history_ttl_secs,
            dedup_window_secs: env.number(
                "ECHO_DEDUP_WINDOW_SECS",
                echo_core::limits::DEFAULT_DEDUP_WINDOW_SECS.min(history_ttl_secs),
                |n| *n <= history_ttl_secs,
                "seconds, at most ECHO_HISTORY_TTL_SECS (an id must not outlive its message)",
            )?,
            fanout_function: (env.0)("ECHO_FANOUT_FUNCTION").unwrap_or_default(),
            relay_function: (env.0)("ECHO_RELAY_FUNCTION").unwrap_or_default(),
            management_endpoint: (env.0)("ECHO_MANAGEMENT_ENDPOINT").unwrap_or_default(),
            function_prefix: (env.0)("ECHO_FUNCTION_PREFIX").unwrap_or_default(),
            associations_cache: Duration::from_secs(env.number(
                "ECHO_ASSOCIATIONS_CACHE_SECS",
                5,
                |n: &u64| *n <= 300,
                "0 to 300 seconds",
            )?),
            fanout_concurrency: env.number(
                "ECHO_FANOUT_CONCURRENCY",
                64,
                |n| (1..=1000).contains(n),
                "a number from 1 to 1000",
            )?,
            fanout_batch_size: env.number(
                "ECHO_FANOUT_BATCH_SIZE",
                1000,
                |n| (1..=100_000).contains(n),
                "a number from 1 to 100000",
            )?,
            direct_max_subscribers: env.number(
                "ECHO_DIRECT_MAX_SUBSCRIBERS",
                100,
                |n| (0..=10_000).contains(n),
                "a number from 0 to 10000",
            )?,
            direct_budget: Duration::from_millis(env.number(
                "ECHO_DIRECT_BUDGET_MS",
                1000,
                |n: &u64| (1..=20_000).contains(n),
                "1 to 20000 milliseconds",
            )?),
            keys_secret: (env.0)("ECHO_KEYS_SECRET").unwrap_or_default(),
            keys_cache: Duration::from_secs(env.number(
                "ECHO_KEYS_CACHE_SECS",
                10,
                |n: &u64| *n <= 300,
                "0 to 300 seconds",
            )?),
            jwt_secret: (env.0)("ECHO_JWT_SECRET").unwrap_or_default(),
            publish_rate: env.number(
                "ECHO_PUBLISH_RATE",
                100,
                |n: &u32| *n <= 100_000,
                "0 to 100000 publishes a second",
            )?,
            publish_burst: env.number(
                "ECHO_PUBLISH_BURST",
                200,
                |n: &u32| (1..=100_000).contains(n),
                "1 to 100000 publishes",
            )?,
        })
    }

    /// Fails unless the named optional variables are set: each Lambda requires what it uses.
    pub fn require(&self, names: &[&'static str]) -> Result<(), ConfigError> {
        for name in names {
            let value = match *name {
                "ECHO_FANOUT_FUNCTION" => &self.fanout_function,
                "ECHO_RELAY_FUNCTION" => &self.relay_function,
                "ECHO_MANAGEMENT_ENDPOINT" => &self.management_endpoint,
                "ECHO_JWT_SECRET" => &self.jwt_secret,
                // Either holds the keys tokens verify with.
                "ECHO_KEYS_SECRET" if !self.jwt_secret.is_empty() => continue,
                "ECHO_KEYS_SECRET" => &self.keys_secret,
                _ => continue,
            };
            if value.is_empty() {
                return Err(ConfigError::Missing(name));
            }
        }
        Ok(())
    }

    /// Clients for the services the Lambdas use, from the default credential chain.
    pub async fn sdk() -> aws_config::SdkConfig {
        aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
    }

    /// The management API at `ECHO_MANAGEMENT_ENDPOINT`, with `ECHO_FANOUT_CONCURRENCY` posts
    /// in flight.
    pub fn management_api(&self, sdk: &aws_config::SdkConfig) -> crate::gateway::ManagementApi {
        crate::gateway::ManagementApi::new(sdk, &self.management_endpoint, self.fanout_concurrency)
    }

    pub fn tables(&self) -> crate::store::dynamodb::Tables {
        crate::store::dynamodb::Tables {
            connections: self.connections_table.clone(),
            history: self.history_table.clone(),
            subscriber_shards: self.subscriber_shards,
            history_ttl_secs: self.history_ttl_secs,
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("connections_table", &self.connections_table)
            .field("history_table", &self.history_table)
            .field("subscriber_shards", &self.subscriber_shards)
            .field("history_ttl_secs", &self.history_ttl_secs)
            .field("dedup_window_secs", &self.dedup_window_secs)
            .field("fanout_function", &self.fanout_function)
            .field("relay_function", &self.relay_function)
            .field("management_endpoint", &self.management_endpoint)
            .field("function_prefix", &self.function_prefix)
            .field("associations_cache", &self.associations_cache)
            .field("fanout_concurrency", &self.fanout_concurrency)
            .field("fanout_batch_size", &self.fanout_batch_size)
            .field("direct_max_subscribers", &self.direct_max_subscribers)
            .field("direct_budget", &self.direct_budget)
            .field("publish_rate", &self.publish_rate)
            .field("publish_burst", &self.publish_burst)
            .field("keys_secret", &self.keys_secret)
            .field("keys_cache", &self.keys_cache)
            .field("jwt_secret", &Secret(&self.jwt_secret))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from(&Env(move |name: &str| map.get(name).cloned()))
    }

    #[test]
    fn names_what_is_missing_or_wrong() {
        assert_eq!(
            env(&[]),
            Err(ConfigError::Missing("ECHO_CONNECTIONS_TABLE"))
        );
        let base = [("ECHO_CONNECTIONS_TABLE", "c"), ("ECHO_HISTORY_TABLE", "h")];
        let c = env(&base).unwrap();
        assert_eq!((c.subscriber_shards, c.fanout_batch_size), (8, 1000));
        assert_eq!(
            c.require(&["ECHO_FANOUT_FUNCTION"]),
            Err(ConfigError::Missing("ECHO_FANOUT_FUNCTION"))
        );
        let mut bad = base.to_vec();
        bad.push(("ECHO_SUBSCRIBER_SHARDS", "zero"));
        assert!(matches!(
            env(&bad),
            Err(ConfigError::Invalid {
                name: "ECHO_SUBSCRIBER_SHARDS",
                ..
            })
        ));
        // The dedup window never outlives history.
        let mut long_window = base.to_vec();
        long_window.extend([
            ("ECHO_HISTORY_TTL_SECS", "60"),
            ("ECHO_DEDUP_WINDOW_SECS", "120"),
        ]);
        assert!(matches!(
            env(&long_window),
            Err(ConfigError::Invalid {
                name: "ECHO_DEDUP_WINDOW_SECS",
                ..
            })
        ));
        assert_eq!(env(&base).unwrap().dedup_window_secs, 120);
        let mut with_secret = base.to_vec();
        with_secret.push(("ECHO_JWT_SECRET", "hunter2-hunter2-hunter2-hunter2-hunter2"));
        let c = env(&with_secret).unwrap();
        assert!(
            !format!("{c:?}").contains("hunter2"),
            "the secret never reaches logs"
        );
    }
}
