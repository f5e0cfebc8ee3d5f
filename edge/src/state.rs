//! What every request and connection of the edge shares.

use std::sync::Arc;

use echo_core::admission::Admission;
use echo_core::associations::LiveAssociations;
use echo_core::auth::TokenIssuer;
use echo_core::clock::Clock;
use echo_core::function::FunctionInvoker;
use echo_core::store::AssociationsStore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::capacity::Capacity;
use crate::config::EdgeConfig;
use crate::gateway::LocalGateway;
use crate::handlers::Handlers;
use crate::management::latency::DelayLine;

/// Shared by every request and connection.
pub struct State {
    pub config: EdgeConfig,
    pub clock: Arc<dyn Clock>,
    pub gateway: Arc<LocalGateway>,
    pub handlers: Handlers,
    pub associations: Arc<LiveAssociations>,
    pub associations_store: Arc<dyn AssociationsStore>,
    pub invoker: Arc<dyn FunctionInvoker>,
    /// Signs dev tokens of apps without keys of their own; `None` without an instance secret.
    pub issuer: Option<TokenIssuer>,
    pub shutdown: CancellationToken,
    /// What the handlers, fan-out and the edge observe, for `GET /metrics`.
    pub metrics: Arc<crate::metrics::Prometheus>,
    pub connections: TaskTracker,
    /// Whether a connection's frame may be handled; what it counted is forgotten when the
    /// connection ends.
    pub admission: Arc<dyn Admission>,
    /// Client connections held, against the most allowed.
    pub capacity: Arc<Capacity>,
    /// Times `manage_latency`'s waits (emulation only); `None` when there is none.
    pub manage_delay: Option<DelayLine>,
}
