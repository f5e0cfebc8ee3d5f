//! Echo's local edge: what API Gateway and Lambda do on AWS, in one process on one machine.
//!
//! It accepts WebSockets, builds API Gateway-shaped `$connect`, `MESSAGE` and `$disconnect`
//! events and runs the very handlers the Lambdas run ([`connect_handler`], [`message_handler`],
//! [`fanout`]) in-process, over an embedded store. It also serves the @connections management API
//! (loopback only, with a bearer token), the static files it is given (`echoctl` gives it the chat
//! demo, and the demo's functions to run in-process), and in dev mode a token endpoint.
//!
//! - [`settings`]: [`Settings`], each user setting declared once (flag, file key, environment
//!   variable), with API Gateway's limits as defaults.
//! - [`config`]: [`EdgeConfig`], what the edge runs with.
//! - [`server`]: starting and shutting down: the store, the handlers, the listeners, the
//!   background tasks.
//! - [`state`]: what every request and connection shares.
//! - [`client_routes`]: what the client listener serves.
//! - [`upgrade`]: the WebSocket upgrade and `$connect`.
//! - [`connection`]: one WebSocket from upgrade to `$disconnect`.
//! - [`outbox`]: a connection's outbound queue.
//! - [`site`]: the static files it serves, as configured.
//! - [`dev_token`]: tokens for anyone, in dev mode.
//! - [`key_file`]: the key set in the data directory (`keys.json`), reloaded when it changes.
//! - [`jwks_fetch`]: fetching OIDC issuers' published keys.
//! - [`management`]: the management listener: the @connections API, associations, and the
//!   emulated management latency (`--manage-latency`).
//! - [`capacity`]: how many client connections the edge holds, and the open-file limit.
//! - [`departures`]: presence ending for connections fan-out finds gone.
//! - [`gateway`]: the connection table, the in-process [`Gateway`](echo_core::gateway::Gateway).
//! - [`events`]: API Gateway WebSocket events, built as API Gateway builds them.
//! - [`handlers`]: running the handlers in-process, or (faithful mode) as Lambdas.
//! - [`http_api`]: Echo's HTTP API for application servers, on the client port.
//! - [`http_events`]: API Gateway HTTP API events, built as API Gateway builds them.
//! - [`invoker`]: running functions in-process or through the Lambda Invoke API.
//! - [`associations`]: loading, validating, watching and replacing associations.
//! - [`retention`]: pruning history older than the retention.
//! - [`schedules`]: running apps' scheduled functions.
//! - [`metrics`]: Prometheus metrics of what the handlers, fan-out and the edge observe.
//! - [`store`]: the embedded store (redb).
//! - [`data_dir`]: the data directory and the store file, private to their owner.

pub mod associations;
pub mod capacity;
pub mod client_routes;
pub mod client_socket;
pub mod config;
pub mod connection;
pub mod data_dir;
pub mod departures;
pub mod dev_token;
pub mod events;
pub mod gateway;
pub mod handlers;
pub mod http_api;
pub mod http_events;
pub mod invoker;
pub mod jwks_fetch;
pub mod key_file;
pub mod management;
pub mod metrics;
pub mod outbox;
pub mod relay;
pub mod retention;
pub mod schedules;
pub mod server;
pub mod settings;
pub mod site;
pub mod state;
pub mod store;
pub mod upgrade;

pub use config::EdgeConfig;
pub use server::{RunningEdge, StartError, start, start_with};
pub use settings::Settings;
