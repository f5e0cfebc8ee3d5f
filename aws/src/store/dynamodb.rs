//! Connections, subscriptions, history and associations in DynamoDB.
//!
//! Two tables, both with a string-or-number composite key and a `ttl` attribute (DynamoDB's TTL
//! deletes expired items eventually, so every read also filters on it):
//!
//! **Connections** (`pk` S, `sk` S):
//!
//! | item | `pk` | `sk` | attributes |
//! | --- | --- | --- | --- |
//! | connection | `c#{connection id}` | `#meta` | `record` (JSON), `ttl` |
//! | its subscription | `c#{connection id}` | `s#{app}/{channel}` | `ttl` |
//! | channel's subscriber | `k#{app}/{channel}#{shard}` | `{connection id}` | `ttl` |
//! | associations | `#meta` | `associations` | `doc` |
//!
//! A channel's subscribers are spread over `shards` partitions (by a hash of the connection id) so
//! that subscribing to one busy channel does not exceed one partition's 1,000 writes per second;
//! fan-out queries every shard. Nothing on a hot path scans.
//!
//! **History** (`channel` S, `seq` N): the item at seq 0 holds the channel's counter (`last`),
//! incremented atomically with `ADD`; messages sit at their seq with `msg` (JSON), `ts` and `ttl`.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ReturnValue,
    ScalarAttributeType, Select, TableStatus,
};
use echo_core::channel::ChannelKey;
use echo_core::ids::ConnectionId;
use echo_core::message::{NewMessage, StoredMessage};
use echo_core::store::{
    AssociationsStore, ConnectionRecord, ConnectionStore, HistoryStore, StoreError, StoreResult,
    Subscribed,
};

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
}

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

impl DynamoStore {
    pub fn new(client: Client, tables: Tables) -> Self {
        Self { client, tables }
    }

    fn shard(&self, id: &ConnectionId) -> u32 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        id.hash(&mut h);
        (h.finish() % u64::from(self.tables.subscriber_shards.max(1))) as u32
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
            let created = self
                .client
                .create_table()
                .table_name(name)
                .attribute_definitions(def(pk, pk_type)?)
                .attribute_definitions(def(sk, sk_type)?)
                .key_schema(key(pk, KeyType::Hash)?)
                .key_schema(key(sk, KeyType::Range)?)
                .billing_mode(BillingMode::PayPerRequest)
                .send()
                .await;
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
        let Some(item) = out.item() else {
            return Ok(None);
        };
        if expired(item, now_secs()) {
            return Ok(None);
        }
        let record = get_s(item, "record")
            .ok_or_else(|| StoreError::Corrupt(format!("connection {id} has no record")))?;
        let record: ConnectionRecord =
            serde_json::from_str(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let ttl = get_n(item, "ttl").unwrap_or(record.expires_at);
        Ok(Some((record, ttl)))
    }
}

#[async_trait]
impl ConnectionStore for DynamoStore {
    async fn put_connection(&self, record: ConnectionRecord) -> StoreResult<()> {
        let json = serde_json::to_string(&record).map_err(StoreError::backend)?;
        self.client
            .put_item()
            .table_name(&self.tables.connections)
            .item("pk", s(conn_pk(&record.id)))
            .item("sk", s(META_SK))
            .item("record", s(json))
            .item("ttl", n(record.expires_at))
            .send()
            .await
            .map_err(StoreError::backend)?;
        Ok(())
    }

    async fn get_connection(&self, id: &ConnectionId) -> StoreResult<Option<ConnectionRecord>> {
        Ok(self.live_record(id).await?.map(|(r, _)| r))
    }

    async fn remove_connection(
        &self,
        id: &ConnectionId,
    ) -> StoreResult<Option<(ConnectionRecord, Vec<ChannelKey>)>> {
        let items = self
            .query_all(
                &self.tables.connections,
                "pk = :pk",
                vec![(":pk", s(conn_pk(id)))],
                vec![],
            )
            .await?;
        let mut channels = Vec::new();
        for item in &items {
            let Some(key) = get_s(item, "sk")
                .and_then(|sk| sk.strip_prefix("s#"))
                .and_then(ChannelKey::decode)
            else {
                continue;
            };
            // The channel's item first: a crash in between leaves a harmless own-side leftover
            // rather than a subscriber fan-out would keep posting to.
            self.delete(
                &self.tables.connections,
                vec![
                    ("pk", s(self.channel_pk(&key, self.shard(id)))),
                    ("sk", s(id.as_str())),
                ],
            )
            .await?;
            self.delete(
                &self.tables.connections,
                vec![("pk", s(conn_pk(id))), ("sk", s(sub_sk(&key)))],
            )
            .await?;
            channels.push(key);
        }
        let Some(meta) = self
            .delete(
                &self.tables.connections,
                vec![("pk", s(conn_pk(id))), ("sk", s(META_SK))],
            )
            .await?
        else {
            return Ok(None);
        };
        let record: ConnectionRecord = get_s(&meta, "record")
            .and_then(|r| serde_json::from_str(r).ok())
            .ok_or_else(|| StoreError::Corrupt(format!("connection {id} has no record")))?;
        Ok(Some((record, channels)))
    }

    async fn subscribe(
        &self,
        id: &ConnectionId,
        key: &ChannelKey,
        max: usize,
    ) -> StoreResult<Subscribed> {
        let Some((_, ttl)) = self.live_record(id).await? else {
            return Err(StoreError::UnknownConnection(id.clone()));
        };
        let existing = self
            .client
            .get_item()
            .table_name(&self.tables.connections)
            .key("pk", s(conn_pk(id)))
            .key("sk", s(sub_sk(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::backend)?;
        if existing.item().is_some() {
            return Ok(Subscribed::AlreadySubscribed);
        }
        let count = self
            .client
            .query()
            .table_name(&self.tables.connections)
            .key_condition_expression("pk = :pk AND begins_with(sk, :s)")
            .expression_attribute_values(":pk", s(conn_pk(id)))
            .expression_attribute_values(":s", s("s#"))
            .select(Select::Count)
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::backend)?
            .count();
        if count as usize >= max {
            return Err(StoreError::TooManySubscriptions { max });
        }
        // The connection's side first: a crash in between leaves no subscriber fan-out would
        // deliver to without the connection knowing, and removal cleans both sides.
        for (pk, sk) in [
            (conn_pk(id), sub_sk(key)),
            (self.channel_pk(key, self.shard(id)), id.to_string()),
        ] {
            self.client
                .put_item()
                .table_name(&self.tables.connections)
                .item("pk", s(pk))
                .item("sk", s(sk))
                .item("ttl", n(ttl))
                .send()
                .await
                .map_err(StoreError::backend)?;
        }
        Ok(Subscribed::Added)
    }

    async fn unsubscribe(&self, id: &ConnectionId, key: &ChannelKey) -> StoreResult<bool> {
        self.delete(
            &self.tables.connections,
            vec![
                ("pk", s(self.channel_pk(key, self.shard(id)))),
                ("sk", s(id.as_str())),
            ],
        )
        .await?;
        let own = self
            .delete(
                &self.tables.connections,
                vec![("pk", s(conn_pk(id))), ("sk", s(sub_sk(key)))],
            )
            .await?;
        Ok(own.is_some())
    }

    async fn subscribers(&self, key: &ChannelKey) -> StoreResult<Vec<ConnectionId>> {
        let now = now_secs();
        let mut ids = Vec::new();
        for shard in 0..self.tables.subscriber_shards.max(1) {
            let items = self
                .query_all(
                    &self.tables.connections,
                    "pk = :pk",
                    vec![(":pk", s(self.channel_pk(key, shard)))],
                    vec![],
                )
                .await?;
            ids.extend(
                items
                    .iter()
                    .filter(|i| !expired(i, now))
                    .filter_map(|i| get_s(i, "sk"))
                    .map(ConnectionId::from),
            );
        }
        Ok(ids)
    }

    async fn subscriptions(&self, id: &ConnectionId) -> StoreResult<Vec<ChannelKey>> {
        let now = now_secs();
        let items = self
            .query_all(
                &self.tables.connections,
                "pk = :pk AND begins_with(sk, :s)",
                vec![(":pk", s(conn_pk(id))), (":s", s("s#"))],
                vec![],
            )
            .await?;
        Ok(items
            .iter()
            .filter(|i| !expired(i, now))
            .filter_map(|i| {
                get_s(i, "sk")?
                    .strip_prefix("s#")
                    .and_then(ChannelKey::decode)
            })
            .collect())
    }
}

#[async_trait]
impl HistoryStore for DynamoStore {
    async fn append(&self, key: &ChannelKey, message: NewMessage) -> StoreResult<StoredMessage> {
        let channel = key.encode();
        let counter = self
            .client
            .update_item()
            .table_name(&self.tables.history)
            .key("channel", s(&channel))
            .key("seq", n(0))
            .update_expression("ADD #last :one")
            .expression_attribute_names("#last", "last")
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(StoreError::backend)?;
        let seq = counter
            .attributes()
            .and_then(|a| get_n(a, "last"))
            .ok_or_else(|| StoreError::Corrupt(format!("no counter returned for {channel}")))?;
        let stored = StoredMessage::new(key.channel.clone(), seq, message);
        let json = serde_json::to_string(&stored).map_err(StoreError::backend)?;
        self.client
            .put_item()
            .table_name(&self.tables.history)
            .item("channel", s(channel))
            .item("seq", n(seq))
            .item("msg", s(json))
            .item("ts", n(stored.ts))
            .item("ttl", n(stored.ts / 1000 + self.tables.history_ttl_secs))
            .send()
            .await
            .map_err(StoreError::backend)?;
        Ok(stored)
    }

    async fn latest_seq(&self, key: &ChannelKey) -> StoreResult<u64> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.history)
            .key("channel", s(key.encode()))
            .key("seq", n(0))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::backend)?;
        Ok(out.item().and_then(|i| get_n(i, "last")).unwrap_or(0))
    }

    async fn range(
        &self,
        key: &ChannelKey,
        since: u64,
        limit: usize,
    ) -> StoreResult<Vec<StoredMessage>> {
        let now = now_secs();
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        while out.len() < limit {
            let page = self
                .client
                .query()
                .table_name(&self.tables.history)
                .key_condition_expression("#c = :c AND #s > :since")
                .expression_attribute_names("#c", "channel")
                .expression_attribute_names("#s", "seq")
                .expression_attribute_values(":c", s(key.encode()))
                .expression_attribute_values(":since", n(since))
                .limit((limit - out.len()).min(1000) as i32)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(StoreError::backend)?;
            for item in page.items() {
                if expired(item, now) {
                    continue;
                }
                let json = get_s(item, "msg")
                    .ok_or_else(|| StoreError::Corrupt("history item without msg".into()))?;
                out.push(
                    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                );
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    /// On AWS, DynamoDB's TTL expires history and this is not needed; it exists for stores without
    /// TTL (and the conformance suite). It scans the table: a maintenance operation, never called
    /// on a request path.
    async fn prune(&self, before_ts: u64) -> StoreResult<u64> {
        let mut removed = 0;
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.tables.history)
                .filter_expression("#s > :zero AND ts < :before")
                .expression_attribute_names("#s", "seq")
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(":before", n(before_ts))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(StoreError::backend)?;
            for item in page.items() {
                let (Some(channel), Some(seq)) = (item.get("channel"), item.get("seq")) else {
                    continue;
                };
                self.delete(
                    &self.tables.history,
                    vec![("channel", channel.clone()), ("seq", seq.clone())],
                )
                .await?;
                removed += 1;
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(removed),
            }
        }
    }
}

#[async_trait]
impl AssociationsStore for DynamoStore {
    async fn load_associations(&self) -> StoreResult<Option<String>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.connections)
            .key("pk", s("#meta"))
            .key("sk", s("associations"))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::backend)?;
        Ok(out.item().and_then(|i| get_s(i, "doc")).map(str::to_owned))
    }

    async fn save_associations(&self, document: &str) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.tables.connections)
            .item("pk", s("#meta"))
            .item("sk", s("associations"))
            .item("doc", s(document))
            .send()
            .await
            .map_err(StoreError::backend)?;
        Ok(())
    }
}
