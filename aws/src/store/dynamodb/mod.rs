//! Connections, subscriptions, history and associations in DynamoDB.
//!
//! Two tables, both with a string-or-number composite key and a `ttl` attribute (DynamoDB's TTL
//! deletes expired items eventually, so every read also filters on it):
//!
//! **Connections** (`pk` S, `sk` S):
//!
//! | item | `pk` | `sk` | attributes |
//! | --- | --- | --- | --- |
//! | connection | `c#{connection id}` | `#meta` | `record` (JSON), `ttl`, `lapse`, `user` |
//! | its subscription | `c#{connection id}` | `s#{app}/{channel}` | `ttl` |
//! | channel's subscriber | `k#{app}/{channel}#{shard}` | `{connection id}` | `ttl` |
//! | channel's member | `p#{app}/{channel}` | `{sub}` | `conns` (its connection ids), `ttl` |
//! | associations | `#meta` | `associations` | `doc` |
//! | an app's counted connections | `a#{app}` | `#conns` | `n` |
//! | an app's publishes in a window | `a#{app}` | `r#{window}` | `n`, `ttl` |
//! | a refused connect's refusal | `x#{attempt}` | `refusal` | `refusal` (JSON), `until`, `ttl` |
//!
//! A channel's subscribers are spread over `shards` partitions (by a hash of the connection id) so
//! that subscribing to one busy channel does not exceed one partition's 1,000 writes per second;
//! fan-out queries every shard. Nothing on a hot path scans. The index `lapses` (partition
//! `lapse`, sort `ttl`) lists connection records by expiry, for the sweep that ends connections
//! whose `$disconnect` never came; the index `users` (partition `user`, `{app}/{sub}`) lists a
//! user's connections, for ending their sessions.
//!
//! **History** (`channel` S, `seq` N): the item at seq 0 holds the channel's counter (`last`),
//! incremented atomically with `ADD`; messages sit at their seq with `msg` (JSON), `ts` and `ttl`.
//! A publisher-given message id is claimed at `{app}/{channel}#{id}`, seq 0, with `until`,
//! `claimed`, `first` (the seq once committed) and `ttl` (see `message_ids`).
//!
//! This file holds the tables, their creation and the helpers the ports share; each port has a
//! file: `connections` ([`ConnectionRecords`](echo_core::store::ConnectionRecords)),
//! `subscriptions` ([`Subscriptions`](echo_core::store::Subscriptions)), `publish_orders`
//! ([`PublishOrders`](echo_core::store::PublishOrders)), `allowance`
//! ([`Allowances`](echo_core::store::Allowances): the publish rate on AWS), `history`
//! ([`HistoryStore`](echo_core::store::HistoryStore)) with `message_ids` (its dedup), `presence`
//! ([`PresenceStore`](echo_core::store::PresenceStore)), `associations`
//! ([`AssociationsStore`](echo_core::store::AssociationsStore)), `refusals`
//! ([`ConnectRefusals`](echo_core::store::ConnectRefusals)).

mod allowance;
mod app_allowance;
mod associations;
mod connections;
mod history;
mod message_ids;
mod presence;
mod publish_orders;
mod refusals;
mod subscriptions;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ReturnValue, ScalarAttributeType, TableStatus,
};
use echo_core::channel::{AppId, ChannelKey};
use echo_core::ids::ConnectionId;
use echo_core::store::{ConnectionRecord, StoreError, StoreResult};

type Item = HashMap<String, AttributeValue>;

/// Table names and tuning.
#[derive(Debug, Clone)]
pub struct Tables {
    pub connections: String,
    pub history: String,
    /// Partitions a channel's subscriber list is spread over.
    pub subscriber_shards: u32,
    /// How long stored messages live, in seconds (their `ttl`).
    pub history_ttl_secs: u64,
}

/// The DynamoDB store.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    tables: Tables,
    /// The publish window this process last counted each connection in: which of the two
    /// conditional writes of `take_publish` to try first (a guess; a wrong one costs a request).
    windows: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<ConnectionId, u64>>>,
}

/// Connections whose last publish window a process remembers; past this it forgets them all.
const REMEMBERED_WINDOWS: usize = 4096;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn get_n(item: &Item, name: &str) -> Option<u64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Whether an item's `ttl` has passed (TTL deletion lags; reads must not see such items).
fn expired(item: &Item, now: u64) -> bool {
    get_n(item, "ttl").is_some_and(|ttl| ttl <= now)
}

fn conn_pk(id: &ConnectionId) -> String {
    format!("c#{id}")
}

fn sub_sk(key: &ChannelKey) -> String {
    format!("s#{}", key.encode())
}

const META_SK: &str = "#meta";

/// The connections table's index of connection records by expiry: partition `lapse` (one of
/// [`LAPSE_SHARDS`], by a hash of the connection id), sort `ttl`, keys only. Only connection
/// records carry `lapse`, so the sweep reads nothing but the records that expired.
const LAPSES_INDEX: &str = "lapses";
/// Partitions of the lapses index: each takes 1,000 writes per second (a connect, a refresh and
/// a disconnect write it once each), beyond the 500 connects per second API Gateway allows.
const LAPSE_SHARDS: u64 = 4;

/// The connections table's index of connection records by user: partition `user`
/// (`{app}/{sub}`; an app id has no `/`), keys only. Ending a user's sessions reads it.
const USERS_INDEX: &str = "users";

/// The item counting an app's connections under its `maxConnections`.
fn app_count_key(app: &AppId) -> Vec<(&'static str, AttributeValue)> {
    vec![
        ("pk", s(format!("a#{}", app.as_str()))),
        ("sk", s("#conns")),
    ]
}

/// A connection record's `user`: its app and user id.
fn user_key(app: &AppId, sub: &str) -> String {
    format!("{}/{sub}", app.as_str())
}

/// The lapses index partition `shard`.
fn lapse_partition(shard: u64) -> String {
    format!("l#{shard}")
}

fn lapse_pk(id: &ConnectionId) -> String {
    lapse_partition(bucket(id, LAPSE_SHARDS))
}

/// Which of `n` partitions (at least 1) connection `id` falls in, by a hash of the id.
fn bucket(id: &ConnectionId, n: u64) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    h.finish() % n.max(1)
}

impl DynamoStore {
    pub fn new(client: Client, tables: Tables) -> Self {
        Self {
            client,
            tables,
            windows: Default::default(),
        }
    }

    /// Whether this process counted `id` in `window` already, and remembers it did now.
    fn counted_in(&self, id: &ConnectionId, window: u64) -> bool {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= REMEMBERED_WINDOWS && !windows.contains_key(id) {
            windows.clear();
        }
        windows.insert(id.clone(), window) == Some(window)
    }

    fn shard(&self, id: &ConnectionId) -> u32 {
        bucket(id, u64::from(self.tables.subscriber_shards)) as u32
    }

    fn channel_pk(&self, key: &ChannelKey, shard: u32) -> String {
        format!("k#{}#{shard}", key.encode())
    }

    /// Creates both tables (on-demand billing) and waits until they are active. For local
    /// development and tests; on AWS the template creates them.
    pub async fn create_tables(&self) -> StoreResult<()> {
        for (name, pk, pk_type, sk, sk_type) in [
            (
                &self.tables.connections,
                "pk",
                ScalarAttributeType::S,
                "sk",
                ScalarAttributeType::S,
            ),
            (
                &self.tables.history,
                "channel",
                ScalarAttributeType::S,
                "seq",
                ScalarAttributeType::N,
            ),
        ] {
            let def = |name: &str, t: ScalarAttributeType| {
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(t)
                    .build()
                    .map_err(StoreError::backend)
            };
            let key = |name: &str, t: KeyType| {
                KeySchemaElement::builder()
                    .attribute_name(name)
                    .key_type(t)
                    .build()
                    .map_err(StoreError::backend)
            };
            let mut create = self
                .client
                .create_table()
                .table_name(name)
                .attribute_definitions(def(pk, pk_type)?)
                .attribute_definitions(def(sk, sk_type)?)
                .key_schema(key(pk, KeyType::Hash)?)
                .key_schema(key(sk, KeyType::Range)?)
                .billing_mode(BillingMode::PayPerRequest);
            if name == &self.tables.connections {
                create = create
                    .attribute_definitions(def("lapse", ScalarAttributeType::S)?)
                    .attribute_definitions(def("ttl", ScalarAttributeType::N)?)
                    .attribute_definitions(def("user", ScalarAttributeType::S)?);
                // Both indexes list connection records by key only.
                let keys_only = |index: &str, schema: Vec<KeySchemaElement>| {
                    GlobalSecondaryIndex::builder()
                        .index_name(index)
                        .set_key_schema(Some(schema))
                        .projection(
                            Projection::builder()
                                .projection_type(ProjectionType::KeysOnly)
                                .build(),
                        )
                        .build()
                        .map_err(StoreError::backend)
                };
                create = create
                    .global_secondary_indexes(keys_only(
                        USERS_INDEX,
                        vec![key("user", KeyType::Hash)?],
                    )?)
                    .global_secondary_indexes(keys_only(
                        LAPSES_INDEX,
                        vec![key("lapse", KeyType::Hash)?, key("ttl", KeyType::Range)?],
                    )?);
            }
            let created = create.send().await;
            if let Err(e) = created {
                let exists = e
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception());
                if !exists {
                    return Err(StoreError::backend(e));
                }
            }
            for _ in 0..100 {
                let d = self
                    .client
                    .describe_table()
                    .table_name(name)
                    .send()
                    .await
                    .map_err(StoreError::backend)?;
                if d.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    /// Every item of a query, following pagination.
    async fn query_all(
        &self,
        table: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
        names: Vec<(&str, &str)>,
    ) -> StoreResult<Vec<Item>> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(table)
                .key_condition_expression(condition)
                .consistent_read(true)
                .set_exclusive_start_key(start.take());
            for (k, v) in &values {
                q = q.expression_attribute_values(*k, v.clone());
            }
            for (k, v) in &names {
                q = q.expression_attribute_names(*k, *v);
            }
            let out = q.send().await.map_err(StoreError::backend)?;
            items.extend(out.items().iter().cloned());
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(items),
            }
        }
    }

    async fn delete(
        &self,
        table: &str,
        key: Vec<(&str, AttributeValue)>,
    ) -> StoreResult<Option<Item>> {
        let mut d = self
            .client
            .delete_item()
            .table_name(table)
            .return_values(ReturnValue::AllOld);
        for (k, v) in key {
            d = d.key(k, v);
        }
        let out = d.send().await.map_err(StoreError::backend)?;
        Ok(out.attributes().filter(|a| !a.is_empty()).cloned())
    }

    async fn live_record(&self, id: &ConnectionId) -> StoreResult<Option<(ConnectionRecord, u64)>> {
        match self.live_item(id).await? {
            Some(item) => record_of(id, &item).map(Some),
            None => Ok(None),
        }
    }

    /// The connection's item (record, TTL, settled publish orders), unless it expired.
    async fn live_item(&self, id: &ConnectionId) -> StoreResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.connections)
            .key("pk", s(conn_pk(id)))
            .key("sk", s(META_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::backend)?;
        Ok(out.item.filter(|item| !expired(item, now_secs())))
    }
}

/// The answer to a conditional `UpdateItem`: `None` when its condition did not hold (nothing was
/// written), which the callers take as an answer rather than a failure.
fn condition_held(
    result: Result<
        aws_sdk_dynamodb::operation::update_item::UpdateItemOutput,
        aws_sdk_dynamodb::error::SdkError<
            aws_sdk_dynamodb::operation::update_item::UpdateItemError,
        >,
    >,
) -> StoreResult<Option<aws_sdk_dynamodb::operation::update_item::UpdateItemOutput>> {
    match result {
        Ok(out) => Ok(Some(out)),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(StoreError::backend(e)),
    }
}

/// The record in a connection's item, with its TTL.
fn record_of(id: &ConnectionId, item: &Item) -> StoreResult<(ConnectionRecord, u64)> {
    let record = get_s(item, "record")
        .ok_or_else(|| StoreError::Corrupt(format!("connection {id} has no record")))?;
    let record: ConnectionRecord =
        serde_json::from_str(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let ttl = get_n(item, "ttl").unwrap_or(record.expires_at);
    Ok((record, ttl))
}

/// The highest settled publish order on `channel` in a connection's item (its `ord` map).
fn settled_in(item: &Item, channel: &str) -> u64 {
    item.get("ord")
        .and_then(|o| o.as_m().ok())
        .and_then(|m| m.get(channel))
        .and_then(|n| n.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}
