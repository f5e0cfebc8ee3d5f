//! The edge's configuration: its [`Settings`] as the edge runs with them, and what only a
//! program sets (the secrets, dev mode, functions served elsewhere).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use echo_core::limits::Limits;

use crate::settings::Settings;
use crate::site::Site;

/// Everything the edge needs to start. The fields a user sets are documented where they are
/// declared, on [`Settings`].
#[derive(Clone)]
pub struct EdgeConfig {
    /// Client WebSockets, the site and (in dev mode) the dev-token endpoint.
    pub listen: SocketAddr,
    /// The @connections management API and associations API. Refused unless loopback.
    pub manage_listen: SocketAddr,
    /// [`Settings::data_dir`].
    pub data_dir: PathBuf,
    /// [`Settings::associations`].
    pub associations_file: Option<PathBuf>,
    /// How often the associations file is checked for changes.
    pub associations_poll: Duration,
    /// The associations to start with when neither a file nor the store has any: none by
    /// default (`{"apps":{}}`); `echoctl` starts with the chat demo's.
    pub starting_associations: String,
    /// The static files the client listener serves (none by default; `echoctl`: the chat demo).
    pub site: Site,
    /// [`Settings::functions_endpoint`].
    pub functions_endpoint: Option<String>,
    /// Functions served at a Lambda Invoke API endpoint of their own, by name: a project's
    /// JavaScript functions, which echoctl runs in Node.js. They come before the built-in ones
    /// and `functions_endpoint`, so a project's function may take a built-in function's name.
    pub function_endpoints: BTreeMap<String, String>,
    /// The instance secret: HS256, for tokens without a `kid` of apps that have no keys of
    /// their own (`keys.json` in the data directory). Empty: there is none.
    pub jwt_secret: Vec<u8>,
    /// The fewest seconds between two fetches of one OIDC issuer's keys
    /// ([`echo_core::auth::jwks`]).
    pub jwks_min_refetch: Duration,
    /// Bearer token the management API requires.
    pub manage_token: String,
    /// Serves `/dev/token`, which hands out tokens to anyone who asks: for a laptop only.
    pub dev_mode: bool,
    /// [`Settings::dev_tokens_for_network`].
    pub dev_tokens_for_network: bool,
    pub limits: Limits,
    /// [`Settings::idle_timeout`].
    pub idle_timeout: Duration,
    /// [`Settings::max_connection_age`].
    pub max_connection_age: Duration,
    /// [`Settings::outbound_queue`].
    pub outbound_queue: usize,
    /// [`Settings::outbound_queue_bytes`].
    pub outbound_queue_bytes: usize,
    /// [`Settings::history_retention`].
    pub history_retention: Duration,
    /// [`Settings::faithful`].
    pub faithful: Option<String>,
    /// [`Settings::concurrent_frames`].
    pub concurrent_frames: bool,
    /// [`Settings::lose_disconnects`].
    pub lose_disconnects: bool,
    /// [`Settings::sweep_every`].
    pub sweep_every: Duration,
    /// [`Settings::manage_latency`].
    pub manage_latency: Duration,
    /// [`Settings::publish_rate`].
    pub publish_rate: u32,
    /// [`Settings::publish_burst`].
    pub publish_burst: u32,
    /// [`Settings::handshake_timeout`].
    pub handshake_timeout: Duration,
    /// [`Settings::max_connections`].
    pub max_connections: Option<usize>,
}

impl std::fmt::Debug for EdgeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeConfig")
            .field("listen", &self.listen)
            .field("manage_listen", &self.manage_listen)
            .field("data_dir", &self.data_dir)
            .field("associations_file", &self.associations_file)
            .field("site", &self.site)
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
    /// The declared defaults ([`Settings::default`]) for everything but the secrets and the data
    /// directory.
    pub fn new(data_dir: PathBuf, jwt_secret: Vec<u8>, manage_token: String) -> Self {
        let mut config = Self::from_settings(Settings::default(), jwt_secret, manage_token, false);
        config.data_dir = data_dir;
        config
    }

    /// What the edge runs with for `settings`, the secrets, and whether it runs in dev mode.
    pub fn from_settings(
        settings: Settings,
        jwt_secret: Vec<u8>,
        manage_token: String,
        dev_mode: bool,
    ) -> Self {
        let limits = Limits {
            max_message_bytes: settings.max_message_bytes,
            max_subscriptions: settings.max_subscriptions,
            max_connection_age_secs: settings.max_connection_age.as_secs(),
            dedup_window_secs: settings
                .dedup_window
                .unwrap_or_else(|| {
                    Duration::from_secs(echo_core::limits::DEFAULT_DEDUP_WINDOW_SECS)
                        .min(settings.history_retention)
                })
                .as_secs(),
            ..Limits::default()
        };
        Self {
            listen: SocketAddr::new(settings.host, settings.port),
            manage_listen: SocketAddr::from(([127, 0, 0, 1], settings.manage_port)),
            data_dir: settings.data_dir,
            associations_file: settings.associations,
            associations_poll: Duration::from_secs(1),
            starting_associations: r#"{"apps":{}}"#.to_owned(),
            site: Site::default(),
            functions_endpoint: settings.functions_endpoint,
            function_endpoints: BTreeMap::new(),
            jwt_secret,
            jwks_min_refetch: echo_core::auth::jwks::MIN_REFETCH,
            manage_token,
            dev_mode,
            dev_tokens_for_network: dev_mode && settings.dev_tokens_for_network,
            idle_timeout: settings.idle_timeout,
            max_connection_age: settings.max_connection_age,
            limits,
            outbound_queue: settings.outbound_queue,
            outbound_queue_bytes: settings.outbound_queue_bytes,
            history_retention: settings.history_retention,
            faithful: settings.faithful,
            concurrent_frames: settings.concurrent_frames,
            lose_disconnects: settings.lose_disconnects,
            sweep_every: settings.sweep_every,
            manage_latency: settings.manage_latency,
            publish_rate: settings.publish_rate,
            publish_burst: settings.publish_burst,
            max_connections: settings.max_connections,
            handshake_timeout: settings.handshake_timeout,
        }
    }
}
