//! The connections table as the [`ConnectionStore`]: connection records, subscriptions both
//! ways, the channel's subscriber shards.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, Select};
use echo_core::auth::Claims;
use echo_core::channel::{ChannelKey, ChannelName};
use echo_core::ids::ConnectionId;
use echo_core::rate::Allowance;
use echo_core::store::{
    ConnectionRecord, ConnectionStore, PublishGrant, StoreError, StoreResult, Subscribed,
};

use super::{
    DynamoStore, LAPSE_SHARDS, LAPSES_INDEX, META_SK, condition_held, conn_pk, expired, get_s,
    lapse_partition, lapse_pk, n, now_secs, record_of, s, settled_in, sub_sk,
};

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
            .item("lapse", s(lapse_pk(&record.id)))
            // Settled publish orders by channel, filled in by `settle_order`.
            .item("ord", AttributeValue::M(Default::default()))
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

    async fn lapsed(&self, now_secs: u64, limit: usize) -> StoreResult<Vec<ConnectionId>> {
        let mut ids = Vec::new();
        for shard in 0..LAPSE_SHARDS {
            let mut start = None;
            while ids.len() < limit {
                let out = self
                    .client
                    .query()
                    .table_name(&self.tables.connections)
                    .index_name(LAPSES_INDEX)
                    .key_condition_expression("lapse = :l AND #ttl <= :now")
                    .expression_attribute_names("#ttl", "ttl")
                    .expression_attribute_values(":l", s(lapse_partition(shard)))
                    .expression_attribute_values(":now", n(now_secs))
                    .limit(i32::try_from(limit - ids.len()).unwrap_or(i32::MAX))
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(StoreError::backend)?;
                ids.extend(
                    out.items()
                        .iter()
                        .filter_map(|item| get_s(item, "pk")?.strip_prefix("c#"))
                        .map(ConnectionId::from),
                );
                match out.last_evaluated_key() {
                    Some(k) if !k.is_empty() => start = Some(k.clone()),
                    _ => break,
                }
            }
        }
        Ok(ids)
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

    /// The record is replaced only while it exists (a conditional update), then each subscription's
    /// two items get the new TTL: 1 + 2 × subscriptions writes, once per refresh.
    async fn renew(&self, id: &ConnectionId, claims: Claims, expires_at: u64) -> StoreResult<bool> {
        let Some((mut record, _)) = self.live_record(id).await? else {
            return Ok(false);
        };
        record.claims = claims;
        record.expires_at = expires_at;
        let json = serde_json::to_string(&record).map_err(StoreError::backend)?;
        // An update, not a put: the item's settled publish orders stay.
        let put = self
            .client
            .update_item()
            .table_name(&self.tables.connections)
            .key("pk", s(conn_pk(id)))
            .key("sk", s(META_SK))
            .update_expression("SET #r = :r, #t = :t")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#r", "record")
            .expression_attribute_names("#t", "ttl")
            .expression_attribute_values(":r", s(json))
            .expression_attribute_values(":t", n(expires_at))
            .send()
            .await;
        if condition_held(put)?.is_none() {
            return Ok(false);
        }
        for key in self.subscriptions(id).await? {
            for (pk, sk) in [
                (conn_pk(id), sub_sk(&key)),
                (self.channel_pk(&key, self.shard(id)), id.to_string()),
            ] {
                // Conditional: an update would otherwise bring back a subscription removed
                // meanwhile.
                let updated = self
                    .client
                    .update_item()
                    .table_name(&self.tables.connections)
                    .key("pk", s(pk))
                    .key("sk", s(sk))
                    .update_expression("SET #t = :t")
                    .condition_expression("attribute_exists(pk)")
                    .expression_attribute_names("#t", "ttl")
                    .expression_attribute_values(":t", n(expires_at))
                    .send()
                    .await;
                condition_held(updated)?;
            }
        }
        Ok(true)
    }

    async fn get_publisher(
        &self,
        id: &ConnectionId,
        channel: &ChannelName,
    ) -> StoreResult<Option<(ConnectionRecord, u64)>> {
        let Some(item) = self.live_item(id).await? else {
            return Ok(None);
        };
        let (record, _) = record_of(id, &item)?;
        Ok(Some((record, settled_in(&item, channel.as_str()))))
    }

    /// A conditional update of the connection's item counts the publish in the current window
    /// and returns the item. There are two: one that adds to the window's count, one that starts
    /// a window; which is tried first follows what this process last saw of the connection, so
    /// a publish usually costs one request, two when the guess is wrong (another invocation
    /// counted the connection meanwhile), and a read to tell a refusal from a connection that
    /// is gone. Concurrent invocations cannot both take the last publish: the count is checked
    /// and raised in the same write.
    async fn take_publish(
        &self,
        id: &ConnectionId,
        channel: &ChannelName,
        now_ms: u64,
        allowance: Allowance,
    ) -> StoreResult<PublishGrant> {
        let (window, retry_ms) = allowance.window(now_ms);
        // This window's publishes so far, under the limit.
        let same = (
            "SET rc = rc + :one",
            "attribute_exists(pk) AND rw = :w AND rc < :max",
        );
        // The first publish of a window; when a concurrent one started it meanwhile, the count
        // is tried again.
        let first = (
            "SET rw = :w, rc = :one",
            "attribute_exists(pk) AND (attribute_not_exists(rw) OR rw < :w)",
        );
        let attempts = if self.counted_in(id, window) {
            vec![same, first, same]
        } else {
            vec![first, same]
        };
        for (update, condition) in attempts {
            let mut request = self
                .client
                .update_item()
                .table_name(&self.tables.connections)
                .key("pk", s(conn_pk(id)))
                .key("sk", s(META_SK))
                .update_expression(update)
                .condition_expression(condition)
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":w", n(window))
                .return_values(ReturnValue::AllNew);
            if condition.contains(":max") {
                request = request.expression_attribute_values(":max", n(allowance.limit.into()));
            }
            if let Some(out) = condition_held(request.send().await)? {
                let item = out.attributes.unwrap_or_default();
                if expired(&item, now_secs()) {
                    return Ok(PublishGrant::Unknown);
                }
                let (record, _) = record_of(id, &item)?;
                let settled = settled_in(&item, channel.as_str());
                return Ok(PublishGrant::Granted { record, settled });
            }
        }
        Ok(match self.live_item(id).await? {
            Some(_) => PublishGrant::Limited { retry_ms },
            None => PublishGrant::Unknown,
        })
    }

    async fn settled_order(&self, id: &ConnectionId, channel: &ChannelName) -> StoreResult<u64> {
        Ok(self
            .live_item(id)
            .await?
            .map_or(0, |item| settled_in(&item, channel.as_str())))
    }

    /// One conditional update of the connection's item: the order only ever rises, and a
    /// connection that is gone is not brought back.
    async fn settle_order(
        &self,
        id: &ConnectionId,
        channel: &ChannelName,
        order: u64,
    ) -> StoreResult<()> {
        let updated = self
            .client
            .update_item()
            .table_name(&self.tables.connections)
            .key("pk", s(conn_pk(id)))
            .key("sk", s(META_SK))
            .update_expression("SET ord.#c = :n")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(ord.#c) OR ord.#c < :n)",
            )
            .expression_attribute_names("#c", channel.as_str())
            .expression_attribute_values(":n", n(order))
            .send()
            .await;
        condition_held(updated).map(|_| ())
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
