//! What the message handler needs: the ports and the limits, given once per process.

use std::sync::Arc;

use echo_core::associations::AssociationsSource;
use echo_core::auth::TokenVerifier;
use echo_core::clock::Clock;
use echo_core::function::FunctionInvoker;
use echo_core::gateway::Gateway;
use echo_core::limits::Limits;
use echo_core::metrics::Metrics;
use echo_core::publish::Publisher;
use echo_core::rate::RateLimiter;
use echo_core::store::ConnectionStore;

/// What the message handler needs.
pub struct Deps {
    pub connections: Arc<dyn ConnectionStore>,
    pub publisher: Arc<Publisher>,
    pub associations: Arc<dyn AssociationsSource>,
    pub invoker: Arc<dyn FunctionInvoker>,
    pub gateway: Arc<dyn Gateway>,
    pub clock: Arc<dyn Clock>,
    pub limits: Limits,
    pub metrics: Arc<dyn Metrics>,
    /// Publishes per connection (the local edge); API Gateway's stage throttling on AWS.
    pub limiter: Arc<dyn RateLimiter>,
    /// Checks the tokens `refresh` presents (the secret the connect handler verifies with).
    pub verifier: TokenVerifier,
    /// Whether the gateway hands a connection's frames over one at a time, in the order sent
    /// (the local edge does). API Gateway may hand them to concurrent invocations; then a
    /// publish's `order` is kept through the store.
    pub frames_in_order: bool,
}
