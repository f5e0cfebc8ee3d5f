//! The connections table's subscriptions, both ways: the connection's items and the channel's
//! subscriber shards ([`Subscriptions`]).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::Select;
use echo_core::channel::ChannelKey;
use echo_core::ids::ConnectionId;
use echo_core::store::{StoreError, StoreResult, Subscribed, Subscriptions};

use super::{DynamoStore, conn_pk, expired, get_s, n, now_secs, s, sub_sk};

#[async_trait]
impl Subscriptions for DynamoStore {
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
