//! What the message handler needs: the ports and the limits, given once per process.

use std::sync::Arc;

use echo_core::admission::Admission;
use echo_core::associations::AssociationsSource;
use echo_core::auth::TokenVerifier;
use echo_core::clock::Clock;
use echo_core::function::FunctionInvoker;
use echo_core::gateway::Gateway;
use echo_core::limits::Limits;
use echo_core::metrics::Metrics;
use echo_core::presence::Presence;
use echo_core::publish::Publisher;
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
    /// Whether a frame may be handled: the connection's record, its allowance, an ordered
    /// publish's turn. In process on the local edge, in the store on AWS.
    pub admission: Arc<dyn Admission>,
    /// Checks the tokens `refresh` presents (the secret the connect handler verifies with).
    pub verifier: TokenVerifier,
    /// How after-publish functions are handed their messages.
    pub after_publish: crate::AfterPublish,
}
