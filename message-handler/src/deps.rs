//! What the message handler needs: the ports and the limits, given once per process.

use std::sync::Arc;

use echo_core::associations::AssociationsSource;
use echo_core::auth::TokenVerifier;
use echo_core::clock::Clock;
use echo_core::function::FunctionInvoker;
use echo_core::gateway::Gateway;
use echo_core::limits::Limits;
use echo_core::metrics::Metrics;
use echo_core::presence::Presence;
use echo_core::publish::Publisher;
use echo_core::rate::{Allowance, RateLimiter};
use echo_core::store::ConnectionStore;

/// What the message handler needs.
pub struct Deps {
    pub connections: Arc<dyn ConnectionStore>,
    pub publisher: Arc<Publisher>,
    /// Joins, leaves and member lists (committing through `publisher`).
    pub presence: Arc<Presence>,
    pub associations: Arc<dyn AssociationsSource>,
    pub invoker: Arc<dyn FunctionInvoker>,
    pub gateway: Arc<dyn Gateway>,
    pub clock: Arc<dyn Clock>,
    pub limits: Limits,
    pub metrics: Arc<dyn Metrics>,
    /// Publishes per connection, counted in this process (the local edge, whose connection
    /// lives in one process).
    pub limiter: Arc<dyn RateLimiter>,
    /// Publishes per connection, counted in the connection store, so that the allowance holds
    /// across concurrent invocations (AWS). `None`: only `limiter` counts.
    pub store_rate: Option<Allowance>,
    /// Checks the tokens `refresh` presents (the secret the connect handler verifies with).
    pub verifier: TokenVerifier,
    /// Whether the gateway hands a connection's frames over one at a time, in the order sent
    /// (the local edge does). API Gateway may hand them to concurrent invocations; then a
    /// publish's `order` is kept through the store.
    pub frames_in_order: bool,
    /// How after-publish functions are handed their messages.
    pub after_publish: crate::AfterPublish,
}
