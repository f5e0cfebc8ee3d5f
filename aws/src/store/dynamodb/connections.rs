//! The connections table's connection records ([`ConnectionRecords`]). Its subscriptions, publish
//! orders and allowances are in `subscriptions`, `publish_orders` and `allowance`.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use echo_core::auth::Claims;
use echo_core::channel::{AppId, ChannelKey};
use echo_core::ids::ConnectionId;
use echo_core::store::{
    ConnectionRecord, ConnectionRecords, StoreError, StoreResult, Subscriptions,
};

use super::{
    DynamoStore, LAPSE_SHARDS, LAPSES_INDEX, META_SK, USERS_INDEX, app_count_key, condition_held,
    conn_pk, get_s, lapse_partition, lapse_pk, n, s, sub_sk, user_key,
};

#[async_trait]
impl ConnectionRecords for DynamoStore {
    async fn put_connection(&self, record: ConnectionRecord) -> StoreResult<()> {
        self.put_record(record, false).await
    }

    /// Counted first, with one conditional update of the app's counter, then recorded, marked
    /// `counted` so that its removal gives the place back. A record that then fails to be
    /// written gives it back at once.
    async fn put_connection_within(&self, record: ConnectionRecord, max: u64) -> StoreResult<bool> {
        let app = record.claims.app.clone();
        let mut update = self
            .client
            .update_item()
            .table_name(&self.tables.connections)
            .update_expression("ADD #n :one")
            .condition_expression("attribute_not_exists(#n) OR #n < :max")
            .expression_attribute_names("#n", "n")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(max));
        for (k, v) in app_count_key(&app) {
            update = update.key(k, v);
        }
        if condition_held(update.send().await)?.is_none() {
            return Ok(false);
        }
        if let Err(e) = self.put_record(record, true).await {
            self.uncount(&app).await;
            return Err(e);
        }
        Ok(true)
    }

    async fn get_connection(&self, id: &ConnectionId) -> StoreResult<Option<ConnectionRecord>> {
        Ok(self.live_record(id).await?.map(|(r, _)| r))
    }

    async fn remove_connection(
        &self,
        id: &ConnectionId,
    ) -> StoreResult<Option<(ConnectionRecord, Vec<ChannelKey>)>> {
        let removed = self.remove_items(id).await?;
        if let Some((record, _, true)) = &removed {
            self.uncount(&record.claims.app).await;
        }
        Ok(removed.map(|(record, channels, _)| (record, channels)))
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

    async fn lapsed(&self, now_secs: u64, limit: usize) -> StoreResult<Vec<ConnectionId>> {
        let mut ids = Vec::new();
        for shard in 0..LAPSE_SHARDS {
            self.index_ids(
                LAPSES_INDEX,
                "lapse = :l AND #ttl <= :now",
                ("#ttl", "ttl"),
                vec![(":l", s(lapse_partition(shard))), (":now", n(now_secs))],
                &mut ids,
                limit,
            )
            .await?;
        }
        Ok(ids)
    }

    async fn user_connections(
        &self,
        app: &AppId,
        sub: &str,
        limit: usize,
    ) -> StoreResult<Vec<ConnectionId>> {
        let mut ids = Vec::new();
        self.index_ids(
            USERS_INDEX,
            "#user = :u",
            ("#user", "user"),
            vec![(":u", s(user_key(app, sub)))],
            &mut ids,
            limit,
        )
        .await?;
        Ok(ids)
    }
}

impl DynamoStore {
    /// Adds to `ids` the connections a keys-only index of connection records lists under
    /// `condition`, page after page, until there are `limit`.
    async fn index_ids(
        &self,
        index: &str,
        condition: &str,
        name: (&str, &str),
        values: Vec<(&str, AttributeValue)>,
        ids: &mut Vec<ConnectionId>,
        limit: usize,
    ) -> StoreResult<()> {
        let mut start = None;
        while ids.len() < limit {
            let mut query = self
                .client
                .query()
                .table_name(&self.tables.connections)
                .index_name(index)
                .key_condition_expression(condition)
                .expression_attribute_names(name.0, name.1)
                .limit(i32::try_from(limit - ids.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start);
            for (k, v) in &values {
                query = query.expression_attribute_values(*k, v.clone());
            }
            let out = query.send().await.map_err(StoreError::backend)?;
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
        Ok(())
    }

    async fn put_record(&self, record: ConnectionRecord, counted: bool) -> StoreResult<()> {
        let json = serde_json::to_string(&record).map_err(StoreError::backend)?;
        let put = self
            .client
            .put_item()
            .table_name(&self.tables.connections)
            .item("pk", s(conn_pk(&record.id)))
            .item("sk", s(META_SK))
            .item("record", s(json))
            .item("ttl", n(record.expires_at))
            .item("lapse", s(lapse_pk(&record.id)))
            .item("user", s(user_key(&record.claims.app, &record.claims.sub)))
            // Settled publish orders by channel, filled in by `settle_order`.
            .item("ord", AttributeValue::M(Default::default()));
        let put = match counted {
            true => put.item("counted", AttributeValue::Bool(true)),
            false => put,
        };
        put.send().await.map_err(StoreError::backend)?;
        Ok(())
    }

    /// Gives an app's counted place back (best effort: logged when it fails).
    async fn uncount(&self, app: &AppId) {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.tables.connections)
            .update_expression("ADD #n :minus")
            .expression_attribute_names("#n", "n")
            .expression_attribute_values(":minus", AttributeValue::N("-1".into()));
        for (k, v) in app_count_key(app) {
            update = update.key(k, v);
        }
        if let Err(e) = update.send().await {
            tracing::error!(app = %app, error = %StoreError::backend(e), "could not give back a counted connection's place");
        }
    }

    /// Deletes the connection's items: its record, its subscriptions, and whether it was counted.
    async fn remove_items(
        &self,
        id: &ConnectionId,
    ) -> StoreResult<Option<(ConnectionRecord, Vec<ChannelKey>, bool)>> {
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
        let counted = matches!(meta.get("counted"), Some(AttributeValue::Bool(true)));
        Ok(Some((record, channels, counted)))
    }
}
