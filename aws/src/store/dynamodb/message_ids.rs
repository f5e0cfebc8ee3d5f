//! Publisher-given message ids, claimed per channel in the history table so that a publish
//! repeated within the dedup window is answered with the first one's seq.
//!
//! A claim is the item `channel` = `{app}/{channel}#{id}`, `seq` = 0 (`#` is in no channel
//! key, and history reads query the channel's own partition only). It is put, in one conditional
//! write, before the channel's counter is counted up, so that racing publishes of one id take
//! one seq between them; the seq is written into it with the message (one batch), and
//! whoever finds the claim taken waits for that seq. Its `ttl` ends the window; reads judge by
//! `until` (milliseconds), since TTL deletion lags.

use std::time::Duration;

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use echo_core::message::NewMessage;
use echo_core::store::{StoreError, StoreResult};

use super::{DynamoStore, Item, get_n, n, s};

/// A claim whose first publish has not written its seq after this long was abandoned (its
/// invocation ended mid-commit): another publish of the id may take it over.
const ABANDONED_MS: u64 = 30_000;

/// How long a publish waits for the seq of a claim that another publish is committing.
const PATIENCE: Duration = Duration::from_secs(10);

/// The outcome of claiming an id.
pub(super) enum Claim {
    /// This publish commits the message.
    Won,
    /// The id was committed within the window, at this seq.
    Repeats(u64),
}

fn claim_key(channel: &str, id: &str) -> String {
    format!("{channel}#{id}")
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl DynamoStore {
    /// Claims `message`'s id on `channel` (an encoded channel key) for `window_ms`; waits while
    /// another publish of the id is committing it.
    pub(super) async fn claim_id(
        &self,
        channel: &str,
        message: &NewMessage,
        window_ms: u64,
    ) -> StoreResult<Claim> {
        let key = claim_key(channel, &message.id);
        let until = message.ts.saturating_add(window_ms);
        let mut wait = Duration::from_millis(20);
        let started = tokio::time::Instant::now();
        loop {
            let claimed_at = now_ms();
            let put = self
                .client
                .put_item()
                .table_name(&self.tables.history)
                .item("channel", s(&key))
                .item("seq", n(0))
                .item("until", n(until))
                .item("claimed", n(claimed_at))
                .item("ttl", n(until / 1000 + 1))
                .condition_expression(
                    "attribute_not_exists(#c) OR #until <= :ts \
                     OR (attribute_not_exists(#first) AND #claimed < :abandoned)",
                )
                .expression_attribute_names("#c", "channel")
                .expression_attribute_names("#until", "until")
                .expression_attribute_names("#first", "first")
                .expression_attribute_names("#claimed", "claimed")
                .expression_attribute_values(":ts", n(message.ts))
                .expression_attribute_values(
                    ":abandoned",
                    n(claimed_at.saturating_sub(ABANDONED_MS)),
                )
                .send()
                .await;
            match put {
                Ok(_) => return Ok(Claim::Won),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                Err(e) => return Err(StoreError::backend(e)),
            }
            // Taken: committed (its seq is the answer), or still being committed.
            let held = self
                .client
                .get_item()
                .table_name(&self.tables.history)
                .key("channel", s(&key))
                .key("seq", n(0))
                .consistent_read(true)
                .send()
                .await
                .map_err(StoreError::backend)?;
            if let Some(item) = held.item() {
                let live = get_n(item, "until").is_some_and(|u| message.ts < u);
                if let (true, Some(first)) = (live, get_n(item, "first")) {
                    return Ok(Claim::Repeats(first));
                }
            }
            if started.elapsed() >= PATIENCE {
                return Err(StoreError::Backend(
                    format!(
                        "message {} is still being committed by another publish; retry",
                        message.id
                    )
                    .into(),
                ));
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_millis(250));
        }
    }

    /// The claim of `message`'s id, now committed at `seq`: written with the message.
    pub(super) fn committed_claim(channel: &str, message_id: &str, seq: u64, until: u64) -> Item {
        Item::from([
            ("channel".to_owned(), s(claim_key(channel, message_id))),
            ("seq".to_owned(), n(0)),
            ("until".to_owned(), n(until)),
            ("first".to_owned(), n(seq)),
            ("ttl".to_owned(), n(until / 1000 + 1)),
        ])
    }

    /// Gives up a claim whose commit failed, so that a retry is judged afresh (best effort: an
    /// abandoned claim is taken over after [`ABANDONED_MS`]).
    pub(super) async fn release_claim(&self, channel: &str, message_id: &str) {
        let released = self
            .client
            .delete_item()
            .table_name(&self.tables.history)
            .key("channel", s(claim_key(channel, message_id)))
            .key("seq", n(0))
            .condition_expression("attribute_not_exists(#first)")
            .expression_attribute_names("#first", "first")
            .send()
            .await;
        if let Err(e) = released {
            tracing::warn!(channel, message_id, error = %e, "could not release a message id claim");
        }
    }

    /// Puts `items` into the history table in one batch, again for what DynamoDB left
    /// unprocessed (a few times, backing off).
    pub(super) async fn put_history_batch(&self, items: Vec<Item>) -> StoreResult<()> {
        let mut requests = items
            .into_iter()
            .map(|item| {
                PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map(|put| WriteRequest::builder().put_request(put).build())
                    .map_err(StoreError::backend)
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let mut wait = Duration::from_millis(20);
        for _ in 0..6 {
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.tables.history, requests)
                .send()
                .await
                .map_err(StoreError::backend)?;
            requests = out
                .unprocessed_items()
                .and_then(|u| u.get(&self.tables.history))
                .cloned()
                .unwrap_or_default();
            if requests.is_empty() {
                return Ok(());
            }
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
        Err(StoreError::Backend(
            "DynamoDB left part of the message's batch unprocessed".into(),
        ))
    }
}
