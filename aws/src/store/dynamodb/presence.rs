//! Members in the connections table as the [`PresenceStore`]: one item per user and channel,
//! `pk` `p#{app}/{channel}`, `sk` the user's `sub`, with `conns` (the set of its subscribed
//! connection ids) and `ttl`.
//!
//! A join adds its connection to the set and moves `ttl` to the connection's expiry if that is
//! later; a leave takes it out, and deletes the item once the set is empty. `ADD` and `DELETE` on
//! a set are atomic, and the previous item (`ALL_OLD`) tells whether the set was empty before
//! (the user's join) or held only this connection (its leave). An item whose `ttl` passed (its
//! connections all vanished without a leave) is no member, and the user's next join starts it
//! afresh; until then the sweep's leave of its last connection is still the user's leave.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use echo_core::channel::ChannelKey;
use echo_core::ids::ConnectionId;
use echo_core::store::{Member, MembersPage, PresenceStore, StoreError, StoreResult};

use super::{DynamoStore, Item, condition_held, expired, get_s, n, now_secs, s};

fn members_pk(key: &ChannelKey) -> String {
    format!("p#{}", key.encode())
}

fn connections_in(item: &Item) -> &[String] {
    item.get("conns")
        .and_then(|c| c.as_ss().ok())
        .map_or(&[], Vec::as_slice)
}

#[async_trait]
impl PresenceStore for DynamoStore {
    async fn join(
        &self,
        key: &ChannelKey,
        sub: &str,
        id: &ConnectionId,
        expires_at: u64,
    ) -> StoreResult<bool> {
        let update = |expression: &str, later_only: bool| {
            let u = self
                .client
                .update_item()
                .table_name(&self.tables.connections)
                .key("pk", s(members_pk(key)))
                .key("sk", s(sub))
                .update_expression(expression)
                .expression_attribute_values(":c", AttributeValue::Ss(vec![id.to_string()]))
                .return_values(ReturnValue::AllOld);
            if later_only {
                u.condition_expression("attribute_not_exists(#ttl) OR #ttl <= :t")
                    .expression_attribute_names("#ttl", "ttl")
                    .expression_attribute_values(":t", n(expires_at))
            } else {
                u
            }
        };
        // One write: the set and a later expiry together; the set alone when the item already
        // lives longer.
        let out = match condition_held(update("ADD conns :c SET #ttl = :t", true).send().await)? {
            Some(out) => out,
            None => update("ADD conns :c", false)
                .send()
                .await
                .map_err(StoreError::backend)?,
        };
        let Some(old) = out.attributes().filter(|a| !a.is_empty()) else {
            return Ok(true);
        };
        if expired(old, now_secs()) {
            // Connections that vanished: the user starts afresh with this one.
            self.client
                .put_item()
                .table_name(&self.tables.connections)
                .item("pk", s(members_pk(key)))
                .item("sk", s(sub))
                .item("conns", AttributeValue::Ss(vec![id.to_string()]))
                .item("ttl", n(expires_at))
                .send()
                .await
                .map_err(StoreError::backend)?;
            return Ok(true);
        }
        Ok(connections_in(old).is_empty())
    }

    async fn leave(&self, key: &ChannelKey, sub: &str, id: &ConnectionId) -> StoreResult<bool> {
        let out = condition_held(
            self.client
                .update_item()
                .table_name(&self.tables.connections)
                .key("pk", s(members_pk(key)))
                .key("sk", s(sub))
                .update_expression("DELETE conns :c")
                .condition_expression("contains(conns, :id)")
                .expression_attribute_values(":c", AttributeValue::Ss(vec![id.to_string()]))
                .expression_attribute_values(":id", s(id.as_str()))
                .return_values(ReturnValue::AllOld)
                .send()
                .await,
        )?;
        let Some(old) = out.as_ref().and_then(|o| o.attributes()) else {
            return Ok(false);
        };
        if connections_in(old).len() > 1 {
            return Ok(false);
        }
        // The set is empty now (DynamoDB removes an emptied set): the item goes, unless a join
        // came in between.
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.tables.connections)
            .key("pk", s(members_pk(key)))
            .key("sk", s(sub))
            .condition_expression("attribute_not_exists(conns)")
            .send()
            .await;
        if let Err(e) = deleted
            && !e
                .as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception())
        {
            return Err(StoreError::backend(e));
        }
        Ok(true)
    }

    async fn members(
        &self,
        key: &ChannelKey,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<MembersPage> {
        let now = now_secs();
        let mut members = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.tables.connections)
                .consistent_read(true)
                .expression_attribute_values(":pk", s(members_pk(key)))
                .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take());
            q = match after {
                Some(after) => q
                    .key_condition_expression("pk = :pk AND sk > :after")
                    .expression_attribute_values(":after", s(after)),
                None => q.key_condition_expression("pk = :pk"),
            };
            let out = q.send().await.map_err(StoreError::backend)?;
            for item in out.items() {
                let count = connections_in(item).len();
                if expired(item, now) || count == 0 {
                    continue;
                }
                if members.len() == limit {
                    return Ok(MembersPage {
                        members,
                        more: true,
                    });
                }
                let Some(sub) = get_s(item, "sk") else {
                    continue;
                };
                members.push(Member {
                    sub: sub.to_owned(),
                    connections: u32::try_from(count).unwrap_or(u32::MAX),
                });
            }
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => {
                    return Ok(MembersPage {
                        members,
                        more: false,
                    });
                }
            }
        }
    }
}
