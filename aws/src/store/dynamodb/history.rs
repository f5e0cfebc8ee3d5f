//! The history table as the [`HistoryStore`]: the channel's counter at seq 0, messages at
//! their seq.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;
use echo_core::channel::ChannelKey;
use echo_core::message::{NewMessage, StoredMessage};
use echo_core::store::{
    HistoryPage, HistoryStore, PageBuilder, PageLimit, StoreError, StoreResult,
};

use super::message_ids::Claim;
use super::{DynamoStore, Item, expired, get_n, get_s, n, now_secs, s};

#[async_trait]
impl HistoryStore for DynamoStore {
    async fn append(&self, key: &ChannelKey, message: NewMessage) -> StoreResult<StoredMessage> {
        let channel = key.encode();
        let Some(window) = message.dedup_window_ms else {
            let stored = self.next_message(key, &channel, message).await?;
            self.client
                .put_item()
                .table_name(&self.tables.history)
                .set_item(Some(self.history_item(&channel, &stored)?))
                .send()
                .await
                .map_err(StoreError::backend)?;
            return Ok(stored);
        };
        let until = message.ts.saturating_add(window);
        let id = message.id.clone();
        if let Claim::Repeats(seq) = self.claim_id(&channel, &message, window).await? {
            return Err(StoreError::Duplicate { id, seq });
        }
        let committed = async {
            let stored = self.next_message(key, &channel, message).await?;
            let claim = Self::committed_claim(&channel, &id, stored.seq, until);
            self.put_history_batch(vec![self.history_item(&channel, &stored)?, claim])
                .await?;
            Ok(stored)
        }
        .await;
        if committed.is_err() {
            self.release_claim(&channel, &id).await;
        }
        committed
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

    async fn page(
        &self,
        key: &ChannelKey,
        since: u64,
        limit: PageLimit,
    ) -> StoreResult<HistoryPage> {
        let now = now_secs();
        let mut page = PageBuilder::new(limit);
        let mut start: Option<Item> = None;
        // One more than the limit is asked for, so that a page cut by count knows whether more
        // follow; DynamoDB pages its answer at 1 MB and the walk goes on until the limit is met.
        let mut wanted = limit.messages.saturating_add(1);
        'pages: while wanted > 0 {
            let answer = self
                .client
                .query()
                .table_name(&self.tables.history)
                .key_condition_expression("#c = :c AND #s > :since")
                .expression_attribute_names("#c", "channel")
                .expression_attribute_names("#s", "seq")
                .expression_attribute_values(":c", s(key.encode()))
                .expression_attribute_values(":since", n(since))
                .limit(wanted.min(1000) as i32)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(StoreError::backend)?;
            for item in answer.items() {
                if expired(item, now) {
                    continue;
                }
                wanted -= 1;
                let json = get_s(item, "msg")
                    .ok_or_else(|| StoreError::Corrupt("history item without msg".into()))?;
                if !page.has_room(json.len()) {
                    break 'pages;
                }
                let message =
                    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                page.push(message, json.len());
            }
            match answer.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        Ok(page.finish())
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

impl DynamoStore {
    /// `message` with the channel's next seq, counted up in the channel's counter item.
    async fn next_message(
        &self,
        key: &ChannelKey,
        channel: &str,
        message: NewMessage,
    ) -> StoreResult<StoredMessage> {
        let counter = self
            .client
            .update_item()
            .table_name(&self.tables.history)
            .key("channel", s(channel))
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
        Ok(StoredMessage::new(key.channel.clone(), seq, message))
    }

    /// The history item of a stored message.
    fn history_item(&self, channel: &str, stored: &StoredMessage) -> StoreResult<Item> {
        let json = serde_json::to_string(stored).map_err(StoreError::backend)?;
        Ok(Item::from([
            ("channel".to_owned(), s(channel)),
            ("seq".to_owned(), n(stored.seq)),
            ("msg".to_owned(), s(json)),
            ("ts".to_owned(), n(stored.ts)),
            (
                "ttl".to_owned(),
                n(stored.ts / 1000 + self.tables.history_ttl_secs),
            ),
        ]))
    }
}
