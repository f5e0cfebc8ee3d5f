//! Echo's core: everything Echo decides, with no knowledge of where it runs.
//!
//! The Lambdas on AWS and the local edge are thin shells around this crate and the handler crates
//! built on it. Nothing here names an AWS type: the world is reached through the ports below, which
//! the AWS adapters (DynamoDB, the @connections API, Lambda Invoke) and the local adapters (embedded
//! store, in-process gateway, in-process or HTTP invoker) implement.
//!
//! - [`protocol`]: the JSON frames clients and Echo exchange, error codes and close codes.
//! - [`channel`]: app and channel names, channel patterns, and the key a channel is stored under.
//! - [`auth`]: JWT claims, roles and channel permissions; verifying and issuing tokens.
//! - [`associations`]: which functions run on which channel, parsed and validated.
//! - [`function`]: the contract an Echo function implements, and the chain that runs them.
//! - [`message`]: messages as published, stored and delivered.
//! - [`envelope`]: the shape of end-to-end encrypted data, which encrypted channels require.
//! - [`store`]: the connection, history, presence and associations ports, an in-memory implementation and
//!   the conformance suite every implementation must pass.
//! - [`gateway`]: the port that sends frames to connections and closes them.
//! - [`publish`]: committing a message to a channel (sequence, history, delivery) in order.
//! - [`member`]: a user on a channel, as presence lists it.
//! - [`presence`]: who is on a channel, and its `join` and `leave` events.
//! - [`disconnection`]: ending a connection, and the sweep that ends those whose records expired.
//! - [`status`]: connect, disconnect, subscribe and unsubscribe events on `$status`.
//! - [`admission`]: whether a connection's frame may be handled (its record, its allowance, its
//!   turn), in process on the local edge and in the store on AWS.
//! - [`rate`]: the rate limits per connection, as token buckets and as store windows.
//! - [`clock`]: time as a port, so time-dependent logic is testable.
//! - [`metrics`]: what the handlers observe, as a port.
//! - [`limits`]: the limits Echo enforces, with API Gateway's as defaults.
//! - [`locate`]: where a value named by a path sits in a JSON text, for precise errors.
//! - [`ids`]: connection, request and message identifiers.

pub mod admission;
pub mod after_presence;
pub mod app_limits;
pub mod associations;
pub mod auth;
pub mod channel;
pub mod clock;
pub mod connect_attempt;
pub mod disconnection;
pub mod envelope;
pub mod function;
pub mod gateway;
pub mod hook;
pub mod ids;
pub mod limits;
pub mod locate;
pub mod member;
pub mod message;
pub mod metrics;
pub mod presence;
pub mod protocol;
pub mod publish;
pub mod rate;
pub mod status;
pub mod store;
