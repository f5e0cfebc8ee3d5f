//! The edge's settings, each declared once: its name, default and documentation here become the
//! flag (`--name`), the `echo.toml` `[edge]` key (`name`), the environment variable
//! (`ECHO_NAME`) and the row `echoctl config` prints.
//!
//! [`EdgeConfig::from_settings`](crate::EdgeConfig::from_settings) turns them into what the edge
//! runs with; [`Settings::default`] is every default.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, FromArgMatches};

/// Where the embedded store, the dev secret and the management token live, by default: what
/// every echoctl command that reads them looks at.
pub const DEFAULT_DATA_DIR: &str = ".echo";

/// Bytes of frames queued per connection before it is dropped as a slow consumer, by default:
/// 32 frames at the 128 KB message limit.
pub const DEFAULT_OUTBOUND_QUEUE_BYTES: usize = 4 * 1024 * 1024;

/// Every setting of the local edge a user may set.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Port for client WebSockets and the chat demo (0 picks a free one).
    #[arg(long, env = "ECHO_PORT", default_value_t = 8080)]
    pub port: u16,
    /// Address to listen on for clients; 0.0.0.0 exposes the edge to the network.
    #[arg(long, env = "ECHO_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port for the @connections management API, on 127.0.0.1 only (0 picks a free one).
    #[arg(long, env = "ECHO_MANAGE_PORT", default_value_t = 8081)]
    pub manage_port: u16,
    /// Where the embedded store, the dev secret and the management token live.
    #[arg(long, env = "ECHO_DATA_DIR", default_value = DEFAULT_DATA_DIR, value_hint = clap::ValueHint::DirPath)]
    pub data_dir: PathBuf,
    /// Associations file, reloaded when it changes (default: what the store kept, else the demo).
    #[arg(long, env = "ECHO_ASSOCIATIONS", value_hint = clap::ValueHint::FilePath)]
    pub associations: Option<PathBuf>,
    /// Lambda Invoke API for functions that are not built in, e.g. http://127.0.0.1:9000 for
    /// `cargo lambda watch`.
    #[arg(long, env = "ECHO_FUNCTIONS_ENDPOINT", value_name = "URL")]
    pub functions_endpoint: Option<String>,
    /// Largest message, in bytes (API Gateway: 131072).
    #[arg(long, env = "ECHO_MAX_MESSAGE_BYTES", default_value_t = echo_core::limits::DEFAULT_MAX_MESSAGE_BYTES)]
    pub max_message_bytes: usize,
    /// Subscriptions one connection may hold.
    #[arg(long, env = "ECHO_MAX_SUBSCRIPTIONS", default_value_t = echo_core::limits::DEFAULT_MAX_SUBSCRIPTIONS)]
    pub max_subscriptions: usize,
    /// Close connections idle this long (API Gateway: 10m).
    #[arg(long, env = "ECHO_IDLE_TIMEOUT", default_value = "10m", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,
    /// Close connections this old (API Gateway: 2h).
    #[arg(long, env = "ECHO_MAX_CONNECTION_AGE", default_value = "2h", value_parser = humantime::parse_duration)]
    pub max_connection_age: Duration,
    /// How long stored messages are kept.
    #[arg(long, env = "ECHO_HISTORY_RETENTION", default_value = "24h", value_parser = humantime::parse_duration)]
    pub history_retention: Duration,
    /// How long a publisher-given message id is remembered per channel: a publish repeating it
    /// within this time is acknowledged with the first one's seq and not stored again. At most
    /// the history retention [default: 2m, or the history retention if shorter]
    #[arg(long, env = "ECHO_DEDUP_WINDOW", value_parser = humantime::parse_duration)]
    pub dedup_window: Option<Duration>,
    /// Faithful mode: send API Gateway events to the handler Lambdas instead of running them
    /// in-process. `--faithful` alone (`start`): echoctl starts dynalite, the handler Lambdas
    /// under `cargo lambda watch` and the project's functions, and hands a connection's frames
    /// over concurrently. A URL: the Lambda Invoke API where the handler Lambdas already run.
    #[arg(
        long,
        value_name = "URL",
        env = "ECHO_FAITHFUL",
        num_args = 0..=1,
        default_missing_value = "start"
    )]
    pub faithful: Option<String>,
    /// Faithful mode started by echoctl: how long an asynchronous Lambda invocation waits before
    /// it runs, standing in for its time in Lambda's internal queue (which AWS does not bound).
    #[arg(long, env = "ECHO_ASYNC_INVOKE_DELAY", default_value = "0s", value_parser = humantime::parse_duration, requires = "faithful")]
    pub async_invoke_delay: Duration,
    /// Faithful mode started by echoctl: build the handler Lambdas and the project's Rust
    /// functions with optimizations, as `sam build` does for AWS (a longer first build; their
    /// work then takes about what it takes deployed).
    #[arg(long, env = "ECHO_RELEASE_LAMBDAS", requires = "faithful")]
    pub release_lambdas: bool,
    /// Faithful mode: hand a connection's frames to the handler Lambdas as they come, without
    /// waiting for the previous answer, as API Gateway may (publishes keep their `order`).
    #[arg(long, env = "ECHO_CONCURRENT_FRAMES", requires = "faithful")]
    pub concurrent_frames: bool,
    /// Send no `$disconnect` when a connection ends, as API Gateway may (it is best effort):
    /// to see connections that vanished cleaned up by fan-out and expiry.
    #[arg(long, env = "ECHO_LOSE_DISCONNECTS")]
    pub lose_disconnects: bool,
    /// How often connections whose records expired without a `$disconnect` are ended (and leave
    /// their channels); the AWS stack sweeps every minute.
    #[arg(long, env = "ECHO_SWEEP_EVERY", default_value = "1m", value_parser = humantime::parse_duration)]
    pub sweep_every: Duration,
    /// Frames queued per connection before it is dropped as a slow consumer.
    #[arg(long, env = "ECHO_OUTBOUND_QUEUE", default_value_t = 4096)]
    pub outbound_queue: usize,
    /// Bytes of frames queued per connection before it is dropped as a slow consumer.
    #[arg(long, env = "ECHO_OUTBOUND_QUEUE_BYTES", default_value_t = DEFAULT_OUTBOUND_QUEUE_BYTES)]
    pub outbound_queue_bytes: usize,
    /// Delay every management API request this long, as API Gateway's management API takes tens
    /// of milliseconds per post (for measuring the AWS delivery path locally).
    #[arg(long, env = "ECHO_MANAGE_LATENCY", default_value = "0s", value_parser = humantime::parse_duration)]
    pub manage_latency: Duration,
    /// Publishes, subscribes and unsubscribes per second one connection may sustain; more get
    /// `rate_limited` (0: no limit).
    #[arg(long, env = "ECHO_PUBLISH_RATE", default_value_t = 100)]
    pub publish_rate: u32,
    /// Publishes, subscribes and unsubscribes one connection may make at once after a quiet
    /// period.
    #[arg(long, env = "ECHO_PUBLISH_BURST", default_value_t = 200)]
    pub publish_burst: u32,
    /// Client connections held at once; further upgrades get HTTP 503 (default: as many as the
    /// open-file limit leaves room for, which also caps a larger value).
    #[arg(long, env = "ECHO_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// In dev mode on an address beyond loopback, also hand `/dev/token` tokens (admin ones
    /// included) to other machines, by IP address; otherwise only this machine gets them.
    #[arg(long, env = "ECHO_DEV_TOKENS_FOR_NETWORK")]
    pub dev_tokens_for_network: bool,
    /// Close a client socket that is not a WebSocket this long after it was accepted (a silent
    /// or slow request, an idle keep-alive).
    #[arg(long, env = "ECHO_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub handshake_timeout: Duration,
}

impl Settings {
    /// A command that parses these settings alone (no binary name): what the defaults, the
    /// config file's keys and the tests read the declarations through.
    pub fn command() -> clap::Command {
        Self::augment_args(clap::Command::new("edge").no_binary_name(true))
    }
}

impl Default for Settings {
    /// Every default, as declared. Environment variables are not read.
    fn default() -> Self {
        let command = Self::command()
            .mut_args(|a| a.env(None::<&str>))
            // Nothing is required, so parsing no arguments cannot fail.
            .try_get_matches_from(std::iter::empty::<String>());
        match command.and_then(|m| Self::from_arg_matches(&m)) {
            Ok(settings) => settings,
            Err(e) => unreachable!("the edge's settings declare a default for each: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_setting_has_a_flag_an_environment_variable_and_help() {
        for arg in Settings::command().get_arguments() {
            let long = arg.get_long().expect("a flag");
            assert_eq!(long, arg.get_id().as_str().replace('_', "-"));
            let env = format!("ECHO_{}", long.replace('-', "_").to_uppercase());
            assert_eq!(
                arg.get_env().and_then(|e| e.to_str()),
                Some(env.as_str()),
                "{long}"
            );
            assert!(arg.get_help().is_some(), "{long} has no help");
        }
    }

    #[test]
    fn defaults_are_the_declared_ones() {
        let s = Settings::default();
        assert_eq!(s.port, 8080);
        assert_eq!(s.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(s.idle_timeout, Duration::from_secs(600));
        assert_eq!(s.max_connection_age, Duration::from_secs(7200));
        assert_eq!(s.publish_rate, 100);
        assert!(s.faithful.is_none() && !s.lose_disconnects);
    }

    #[test]
    fn the_dedup_window_is_two_minutes_or_the_retention_if_shorter() {
        let window = |args: &[&str]| {
            let m = Settings::command().try_get_matches_from(args).unwrap();
            let settings = Settings::from_arg_matches(&m).unwrap();
            crate::EdgeConfig::from_settings(settings, vec![], String::new(), false)
                .limits
                .dedup_window_secs
        };
        assert_eq!(window(&[]), 120);
        assert_eq!(window(&["--history-retention", "30s"]), 30);
        assert_eq!(window(&["--dedup-window", "5m"]), 300);
    }
}
