//! The connection store: every capability a connection needs kept, under one name.

use super::allowances::Allowances;
use super::app_allowances::AppAllowances;
use super::connections::ConnectionRecords;
use super::publish_orders::PublishOrders;
use super::refusals::ConnectRefusals;
use super::subscriptions::Subscriptions;

/// Connections, their subscriptions, publish orders, allowances and refused connects: what one backend (the
/// memory store, DynamoDB's connections table) keeps together. Each handler borrows the
/// capabilities it uses; on AWS its function's policy grants what those need.
pub trait ConnectionStore:
    ConnectionRecords + Subscriptions + PublishOrders + Allowances + AppAllowances + ConnectRefusals
{
}

impl<
    T: ConnectionRecords
        + Subscriptions
        + PublishOrders
        + Allowances
        + AppAllowances
        + ConnectRefusals,
> ConnectionStore for T
{
}
