//! Echo's local edge: what API Gateway and Lambda do on AWS, in one process on one machine.
//!
//! It accepts WebSockets, builds API Gateway-shaped `$connect`, `MESSAGE` and `$disconnect`
//! events and runs the very handlers the Lambdas run ([`connect_handler`], [`message_handler`],
//! [`fanout`]) in-process, over an embedded store. It also serves the @connections management API
//! (loopback only, with a bearer token), the chat demo, and in dev mode a token endpoint.
//!
//! - [`config`]: [`EdgeConfig`], with API Gateway's limits as defaults.
//! - [`server`]: starting, serving and shutting down; the HTTP routes.
//! - [`capacity`]: how many client connections the edge holds, and the open-file limit.
//! - [`connection`]: one WebSocket from upgrade to `$disconnect`.
//! - [`delay`]: waits that end close to their deadline (`manage_latency`).
//! - [`gateway`]: the connection table, the in-process [`Gateway`](echo_core::gateway::Gateway).
//! - [`events`]: API Gateway WebSocket events, built as API Gateway builds them.
//! - [`handlers`]: running the handlers in-process, or (faithful mode) as Lambdas.
//! - [`invoker`]: running functions in-process or through the Lambda Invoke API.
//! - [`associations`]: loading, validating, watching and replacing associations.
//! - [`store`]: the embedded store (redb).

pub mod associations;
pub mod capacity;
pub mod config;
pub mod connection;
pub mod delay;
pub mod events;
pub mod gateway;
pub mod handlers;
pub mod invoker;
pub mod outbox;
pub mod server;
pub mod store;

pub use config::EdgeConfig;
pub use server::{RunningEdge, StartError, start, start_with};
