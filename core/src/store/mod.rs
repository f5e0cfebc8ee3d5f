//! Storage ports: connections and subscriptions, channel history, presence, associations.
//!
//! Each capability a handler needs is a trait of its own, so that a handler borrows only what it
//! uses (and, on AWS, its function's policy grants only what those need):
//!
//! - [`connections`]: [`ConnectionRecords`], who is connected with which claims.
//! - [`subscriptions`]: [`Subscriptions`], both ways.
//! - [`publish_orders`]: [`PublishOrders`], numbered publishes settled in order.
//! - [`allowances`]: [`Allowances`], frames counted with the record.
//! - [`app_allowances`]: [`AppAllowances`], publishes counted per app.
//! - [`refusals`]: [`ConnectRefusals`], refused connects kept for their clients.
//! - [`connection_store`]: [`ConnectionStore`], the six together, as one backend keeps them.
//! - [`history`]: [`HistoryStore`], sequence numbers and stored messages; [`page`]: its pages.
//! - [`presence`]: [`PresenceStore`], who is on each channel.
//! - [`associations`]: [`AssociationsStore`], where the associations document is kept.
//! - [`error`]: [`StoreError`], what an operation can fail with.
//! - [`memory`]: every port in one process's memory.
//!
//! Every implementation (in memory, the embedded store, DynamoDB) passes the same suite,
//! `conformance`, compiled for tests and for crates that turn on the `conformance` feature.

pub mod allowances;
pub mod app_allowances;
pub mod associations;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod connection_store;
pub mod connections;
pub mod error;
pub mod history;
pub mod memory;
pub mod page;
pub mod presence;
pub mod publish_orders;
pub mod refusals;
pub mod subscriptions;

pub use crate::member::Member;
pub use allowances::{Allowances, PublishGrant};
pub use app_allowances::AppAllowances;
pub use associations::AssociationsStore;
pub use connection_store::ConnectionStore;
pub use connections::{ConnectionRecord, ConnectionRecords};
pub use error::{StoreError, StoreResult};
pub use history::HistoryStore;
pub use memory::MemoryStore;
pub use page::{HistoryPage, PageBuilder, PageLimit};
pub use presence::{MembersPage, PresenceStore};
pub use publish_orders::PublishOrders;
pub use refusals::ConnectRefusals;
pub use subscriptions::{Subscribed, Subscriptions};
