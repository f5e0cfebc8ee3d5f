//! The edge's configuration.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use echo_core::limits::Limits;

/// API Gateway's idle timeout: 10 minutes without a frame from the client.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Frames queued for one connection before it counts as a slow consumer.
pub const DEFAULT_OUTBOUND_QUEUE: usize = 4096;
/// Bytes of frames queued per connection before it is dropped as a slow consumer: 32 frames at
/// the 128 KB message limit.
pub const DEFAULT_OUTBOUND_QUEUE_BYTES: usize = 4 * 1024 * 1024;
/// How long stored messages are kept.
/// Publishes per second one connection may sustain by default.
pub const DEFAULT_PUBLISH_RATE: u32 = 100;
/// Publishes one connection may make at once by default.
pub const DEFAULT_PUBLISH_BURST: u32 = 200;
/// How long a client socket may take to become a WebSocket.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_HISTORY_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
/// How often connections whose records expired are ended: the AWS stack's sweep schedule.
pub const DEFAULT_SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Everything the edge needs to start.
#[derive(Clone)]
pub struct EdgeConfig {
    /// Client WebSockets, the demo page and (in dev mode) the dev-token endpoint.
    pub listen: SocketAddr,
    /// The @connections management API and associations API. Refused unless loopback.
    pub manage_listen: SocketAddr,
    /// Where the embedded store lives.
    pub data_dir: PathBuf,
    /// An associations file to load and watch; `None` keeps what the store has, or the demo
    /// associations on first start.
    pub associations_file: Option<PathBuf>,
    /// How often the associations file is checked for changes.
    pub associations_poll: Duration,
    /// Lambda Invoke API endpoint for functions not built in (`cargo lambda watch`: port 9000).
    pub functions_endpoint: Option<String>,
    /// Functions served at a Lambda Invoke API endpoint of their own, by name: a project's
    /// JavaScript functions, which echoctl runs in Node.js. They come before the built-in ones
    /// and `functions_endpoint`, so a project's function may take a demo function's name.
    pub function_endpoints: BTreeMap<String, String>,
    /// HS256 secret tokens are signed with.
    pub jwt_secret: Vec<u8>,
    /// Bearer token the management API requires.
    pub manage_token: String,
    /// Serves `/dev/token`, which hands out tokens to anyone who asks: for a laptop only.
    pub dev_mode: bool,
    /// In dev mode, also serves dev tokens to peers on the network (when listening beyond
    /// loopback); otherwise only this machine gets them.
    pub dev_tokens_for_network: bool,
    pub limits: Limits,
    /// Closes a connection that sent nothing for this long (API Gateway: 10 minutes).
    pub idle_timeout: Duration,
    /// Closes a connection this old (API Gateway: 2 hours).
    pub max_connection_age: Duration,
    pub outbound_queue: usize,
    /// Bytes of frames queued per connection before it is dropped as a slow consumer.
    pub outbound_queue_bytes: usize,
    pub history_retention: Duration,
    /// Faithful mode: send API Gateway events to the handler Lambdas at this Lambda Invoke API
    /// endpoint (`cargo lambda watch`) instead of running the handlers in-process.
    pub faithful: Option<String>,
    /// Faithful mode: hand a connection's frames to the handler Lambdas as they come, without
    /// waiting for the previous one's answer, as API Gateway may; otherwise one at a time.
    pub concurrent_frames: bool,
    /// Emulation: send no `$disconnect` when a connection ends, as API Gateway may (its
    /// `$disconnect` is best effort), so that what cleans up after such connections (fan-out
    /// finding them gone, record expiry) can be seen working.
    pub lose_disconnects: bool,
    /// How often the sweep ends connections whose records expired without a `$disconnect`
    /// ([`echo_core::disconnection`]); in faithful mode the edge invokes the connect handler
    /// Lambda with the sweep schedule's event, as EventBridge does on AWS.
    pub sweep_every: Duration,
    /// How long each management API request waits before it is served, to emulate API
    /// Gateway's management API, whose posts take tens of milliseconds (benchmarks of the AWS
    /// delivery path use it). Zero by default. A thread of its own ends each wait
    /// ([`crate::management::latency::DelayLine`]): a post takes the wait and a few tenths of a millisecond.
    pub manage_latency: Duration,
    /// Publishes per second one connection may sustain (0: no limit); more get `rate_limited`.
    pub publish_rate: u32,
    /// Publishes one connection may make at once after a quiet period.
    pub publish_burst: u32,
    /// How long a client socket may take to become a WebSocket (a request in full, or an idle
    /// keep-alive after the demo page) before it is closed.
    pub handshake_timeout: Duration,
    /// Client connections held at once; further upgrades get 503. `None`: as many as the
    /// process's open-file limit leaves room for ([`crate::capacity::connections_for`]), which is
    /// also the most a set value is allowed.
    pub max_connections: Option<usize>,
}

impl std::fmt::Debug for EdgeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeConfig")
            .field("listen", &self.listen)
            .field("manage_listen", &self.manage_listen)
            .field("data_dir", &self.data_dir)
            .field("associations_file", &self.associations_file)
            .field("functions_endpoint", &self.functions_endpoint)
            .field("function_endpoints", &self.function_endpoints)
            .field("dev_mode", &self.dev_mode)
            .field("limits", &self.limits)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_connection_age", &self.max_connection_age)
            .field("outbound_queue", &self.outbound_queue)
            .field("outbound_queue_bytes", &self.outbound_queue_bytes)
            .field("history_retention", &self.history_retention)
            .field("faithful", &self.faithful)
            .field("concurrent_frames", &self.concurrent_frames)
            .field("lose_disconnects", &self.lose_disconnects)
            .field("sweep_every", &self.sweep_every)
            .field("manage_latency", &self.manage_latency)
            .field("publish_rate", &self.publish_rate)
            .field("publish_burst", &self.publish_burst)
            .field("max_connections", &self.max_connections)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl EdgeConfig {
    /// Defaults for everything but the secrets and the data directory.
    pub fn new(data_dir: PathBuf, jwt_secret: Vec<u8>, manage_token: String) -> Self {
        let limits = Limits::default();
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            manage_listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            data_dir,
            associations_file: None,
            associations_poll: Duration::from_secs(1),
            functions_endpoint: None,
            function_endpoints: BTreeMap::new(),
            jwt_secret,
            manage_token,
            dev_mode: false,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connection_age: Duration::from_secs(limits.max_connection_age_secs),
            limits,
            outbound_queue: DEFAULT_OUTBOUND_QUEUE,
            outbound_queue_bytes: DEFAULT_OUTBOUND_QUEUE_BYTES,
            history_retention: DEFAULT_HISTORY_RETENTION,
            faithful: None,
            concurrent_frames: false,
            lose_disconnects: false,
            sweep_every: DEFAULT_SWEEP_EVERY,
            dev_tokens_for_network: false,
            manage_latency: Duration::ZERO,
            publish_rate: DEFAULT_PUBLISH_RATE,
            publish_burst: DEFAULT_PUBLISH_BURST,
            max_connections: None,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }
}
