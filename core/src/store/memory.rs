//! Everything in memory: for tests, and for the local edge's connections and subscriptions (which
//! die with the process anyway). A connection whose record's `expires_at` has passed is gone, as
//! DynamoDB's TTL makes it on AWS: it is not returned and nothing is delivered to it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{
    Allowances, AppAllowances, AssociationsStore, ConnectRefusals, ConnectionRecord,
    ConnectionRecords, HistoryPage, HistoryStore, Member, MembersPage, PageBuilder, PageLimit,
    PresenceStore, PublishGrant, PublishOrders, StoreError, StoreResult, Subscribed, Subscriptions,
};
use crate::auth::Claims;
use crate::channel::{AppId, ChannelKey, ChannelName};
use crate::clock::{Clock, SystemClock};
use crate::connect_attempt::{AttemptId, Refusal};
use crate::ids::ConnectionId;
use crate::message::{NewMessage, StoredMessage};
use crate::rate::Allowance;

#[derive(Default)]
struct State {
    connections: HashMap<ConnectionId, (ConnectionRecord, HashSet<ChannelKey>)>,
    /// Connections counted against their app's `maxConnections`, and each app's count.
    counted: HashSet<ConnectionId>,
    app_counts: HashMap<AppId, u64>,
    /// Each app's publish window and its count.
    app_windows: HashMap<AppId, (u64, u32)>,
    /// Each channel's subscribers, with their records' `expires_at`.
    subscribers: HashMap<ChannelKey, HashMap<ConnectionId, u64>>,
    /// Each connection's highest settled publish `order` per channel.
    orders: HashMap<ConnectionId, HashMap<ChannelName, u64>>,
    /// Each connection's publish window and the publishes counted in it.
    windows: HashMap<ConnectionId, (u64, u32)>,
    seqs: HashMap<ChannelKey, u64>,
    history: HashMap<ChannelKey, BTreeMap<u64, StoredMessage>>,
    /// Publisher-given ids committed per channel, with their seq and `ts`.
    ids: HashMap<(ChannelKey, String), (u64, u64)>,
    /// Each channel's members: their connections there, with the connections' `expires_at`.
    members: HashMap<ChannelKey, BTreeMap<String, HashMap<ConnectionId, u64>>>,
    associations: Option<String>,
    /// Refused connects, with when each expires.
    refusals: HashMap<AttemptId, (Refusal, u64)>,
}

/// Most refusals kept in memory: past it, expired ones are dropped, then new ones are not kept.
const MAX_REFUSALS: usize = 100_000;

/// A store that keeps everything in one process's memory.
pub struct MemoryStore {
    state: Mutex<State>,
    clock: Arc<dyn Clock>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryStore { .. }")
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store that tells expired connections by `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            state: Mutex::new(State::default()),
            clock,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave State half-updated in a way that matters
        // more than losing the whole store, so a poisoned lock is used as is.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl ConnectionRecords for MemoryStore {
    async fn put_connection(&self, record: ConnectionRecord) -> StoreResult<()> {
        let mut s = self.state();
        let subs = s
            .connections
            .remove(&record.id)
            .map(|(_, subs)| subs)
            .unwrap_or_default();
        s.connections.insert(record.id.clone(), (record, subs));
        Ok(())
    }

    async fn put_connection_within(&self, record: ConnectionRecord, max: u64) -> StoreResult<bool> {
        let mut s = self.state();
        let app = record.claims.app.clone();
        let count = s.app_counts.get(&app).copied().unwrap_or(0);
        if count >= max {
            return Ok(false);
        }
        s.app_counts.insert(app, count + 1);
        s.counted.insert(record.id.clone());
        s.connections
            .insert(record.id.clone(), (record, HashSet::new()));
        Ok(true)
    }

    async fn get_connection(&self, id: &ConnectionId) -> StoreResult<Option<ConnectionRecord>> {
        let now = self.clock.now_secs();
        Ok(self
            .state()
            .connections
            .get(id)
            .filter(|(r, _)| r.expires_at > now)
            .map(|(r, _)| r.clone()))
    }

    async fn remove_connection(
        &self,
        id: &ConnectionId,
    ) -> StoreResult<Option<(ConnectionRecord, Vec<ChannelKey>)>> {
        let mut s = self.state();
        s.orders.remove(id);
        s.windows.remove(id);
        let Some((record, subs)) = s.connections.remove(id) else {
            return Ok(None);
        };
        if s.counted.remove(id)
            && let Some(n) = s.app_counts.get_mut(&record.claims.app)
        {
            *n = n.saturating_sub(1);
        }
        for key in &subs {
            if let Some(set) = s.subscribers.get_mut(key) {
                set.remove(id);
                if set.is_empty() {
                    s.subscribers.remove(key);
                }
            }
        }
        Ok(Some((record, subs.into_iter().collect())))
    }

    async fn renew(&self, id: &ConnectionId, claims: Claims, expires_at: u64) -> StoreResult<bool> {
        let now = self.clock.now_secs();
        let mut s = self.state();
        let State {
            connections,
            subscribers,
            ..
        } = &mut *s;
        let Some((record, subs)) = connections.get_mut(id).filter(|(r, _)| r.expires_at > now)
        else {
            return Ok(false);
        };
        record.claims = claims;
        record.expires_at = expires_at;
        for key in subs.iter() {
            if let Some(at) = subscribers.get_mut(key).and_then(|s| s.get_mut(id)) {
                *at = expires_at;
            }
        }
        Ok(true)
    }

    async fn lapsed(&self, now_secs: u64, limit: usize) -> StoreResult<Vec<ConnectionId>> {
        // A walk over every connection, once a sweep: 100,000 take a few milliseconds.
        Ok(self
            .state()
            .connections
            .iter()
            .filter(|(_, (r, _))| r.expires_at <= now_secs)
            .take(limit)
            .map(|(id, _)| id.clone())
            .collect())
    }

    async fn user_connections(
        &self,
        app: &AppId,
        sub: &str,
        limit: usize,
    ) -> StoreResult<Vec<ConnectionId>> {
        // A walk over every connection: ending a user's sessions is rare, and an edge holds tens
        // of thousands of connections at most.
        let now = self.clock.now_secs();
        Ok(self
            .state()
            .connections
            .iter()
            .filter(|(_, (r, _))| r.expires_at > now && &r.claims.app == app && r.claims.sub == sub)
            .take(limit)
            .map(|(id, _)| id.clone())
            .collect())
    }
}

#[async_trait]
impl Subscriptions for MemoryStore {
    async fn subscribe(
        &self,
        id: &ConnectionId,
        key: &ChannelKey,
        max: usize,
    ) -> StoreResult<Subscribed> {
        let now = self.clock.now_secs();
        let mut s = self.state();
        let Some((record, subs)) = s
            .connections
            .get_mut(id)
            .filter(|(r, _)| r.expires_at > now)
        else {
            return Err(StoreError::UnknownConnection(id.clone()));
        };
        if subs.contains(key) {
            return Ok(Subscribed::AlreadySubscribed);
        }
        if subs.len() >= max {
            return Err(StoreError::TooManySubscriptions { max });
        }
        subs.insert(key.clone());
        let expires_at = record.expires_at;
        s.subscribers
            .entry(key.clone())
            .or_default()
            .insert(id.clone(), expires_at);
        Ok(Subscribed::Added)
    }

    async fn unsubscribe(&self, id: &ConnectionId, key: &ChannelKey) -> StoreResult<bool> {
        let mut s = self.state();
        let existed = s
            .connections
            .get_mut(id)
            .is_some_and(|(_, subs)| subs.remove(key));
        if let Some(set) = s.subscribers.get_mut(key) {
            set.remove(id);
            if set.is_empty() {
                s.subscribers.remove(key);
            }
        }
        Ok(existed)
    }

    async fn subscribers(&self, key: &ChannelKey) -> StoreResult<Vec<ConnectionId>> {
        let now = self.clock.now_secs();
        Ok(self
            .state()
            .subscribers
            .get(key)
            .map(|s| {
                s.iter()
                    .filter(|&(_, &expires_at)| expires_at > now)
                    .map(|(id, _)| id.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn subscriptions(&self, id: &ConnectionId) -> StoreResult<Vec<ChannelKey>> {
        Ok(self
            .state()
            .connections
            .get(id)
            .map(|(_, subs)| subs.iter().cloned().collect())
            .unwrap_or_default())
    }
}

#[async_trait]
impl PublishOrders for MemoryStore {
    async fn get_publisher(
        &self,
        id: &ConnectionId,
        channel: &ChannelName,
    ) -> StoreResult<Option<(ConnectionRecord, u64)>> {
        let settled = self.settled_order(id, channel).await?;
        Ok(self.get_connection(id).await?.map(|r| (r, settled)))
    }

    async fn settled_order(&self, id: &ConnectionId, channel: &ChannelName) -> StoreResult<u64> {
        Ok(self
            .state()
            .orders
            .get(id)
            .and_then(|o| o.get(channel))
            .copied()
            .unwrap_or(0))
    }

    async fn settle_order(
        &self,
        id: &ConnectionId,
        channel: &ChannelName,
        order: u64,
    ) -> StoreResult<()> {
        let mut s = self.state();
        if !s.connections.contains_key(id) {
            return Ok(());
        }
        let settled = s
            .orders
            .entry(id.clone())
            .or_default()
            .entry(channel.clone())
            .or_insert(0);
        *settled = (*settled).max(order);
        Ok(())
    }
}

#[async_trait]
impl Allowances for MemoryStore {
    async fn take_publish(
        &self,
        id: &ConnectionId,
        channel: &ChannelName,
        now_ms: u64,
        allowance: Allowance,
    ) -> StoreResult<PublishGrant> {
        let Some(record) = self.get_connection(id).await? else {
            return Ok(PublishGrant::Unknown);
        };
        let settled = self.settled_order(id, channel).await?;
        let (window, retry_ms) = allowance.window(now_ms);
        let mut s = self.state();
        let counted = s.windows.entry(id.clone()).or_insert((window, 0));
        if counted.0 != window {
            *counted = (window, 0);
        }
        if counted.1 >= allowance.limit {
            return Ok(PublishGrant::Limited { retry_ms });
        }
        counted.1 += 1;
        Ok(PublishGrant::Granted { record, settled })
    }
}

#[async_trait]
impl AppAllowances for MemoryStore {
    async fn take_app_publish(
        &self,
        app: &AppId,
        allowance: Allowance,
        now_ms: u64,
    ) -> StoreResult<Result<(), u64>> {
        let (window, retry_ms) = allowance.window(now_ms);
        let mut s = self.state();
        let counted = s.app_windows.entry(app.clone()).or_insert((window, 0));
        if counted.0 != window {
            *counted = (window, 0);
        }
        if counted.1 >= allowance.limit {
            return Ok(Err(retry_ms));
        }
        counted.1 += 1;
        Ok(Ok(()))
    }
}

#[async_trait]
impl ConnectRefusals for MemoryStore {
    async fn keep_refusal(
        &self,
        attempt: &AttemptId,
        refusal: &Refusal,
        expires_at_ms: u64,
    ) -> StoreResult<()> {
        let now = self.clock.now_ms();
        let mut s = self.state();
        if s.refusals.len() >= MAX_REFUSALS {
            s.refusals.retain(|_, (_, expires)| *expires > now);
        }
        if s.refusals.len() < MAX_REFUSALS {
            s.refusals
                .insert(attempt.clone(), (refusal.clone(), expires_at_ms));
        }
        Ok(())
    }

    async fn refusal(&self, attempt: &AttemptId, now_ms: u64) -> StoreResult<Option<Refusal>> {
        Ok(self
            .state()
            .refusals
            .get(attempt)
            .filter(|(_, expires)| *expires > now_ms)
            .map(|(r, _)| r.clone()))
    }
}

#[async_trait]
impl HistoryStore for MemoryStore {
    async fn append(&self, key: &ChannelKey, message: NewMessage) -> StoreResult<StoredMessage> {
        let mut s = self.state();
        let once = message.dedup_window_ms.is_some();
        if once
            && let Some(&(seq, first_ts)) = s.ids.get(&(key.clone(), message.id.clone()))
            && message.repeats(first_ts)
        {
            return Err(StoreError::Duplicate {
                id: message.id,
                seq,
            });
        }
        let seq = s.seqs.entry(key.clone()).or_insert(0);
        *seq += 1;
        let seq = *seq;
        if once {
            s.ids
                .insert((key.clone(), message.id.clone()), (seq, message.ts));
        }
        let stored = StoredMessage::new(key.channel.clone(), seq, message);
        s.history
            .entry(key.clone())
            .or_default()
            .insert(stored.seq, stored.clone());
        Ok(stored)
    }

    async fn latest_seq(&self, key: &ChannelKey) -> StoreResult<u64> {
        Ok(self.state().seqs.get(key).copied().unwrap_or(0))
    }

    async fn page(
        &self,
        key: &ChannelKey,
        since: u64,
        limit: PageLimit,
    ) -> StoreResult<HistoryPage> {
        let mut page = PageBuilder::new(limit);
        if let Some(h) = self.state().history.get(key) {
            for m in h.range(since.saturating_add(1)..).map(|(_, m)| m) {
                let size = m.encoded_len();
                if !page.has_room(size) {
                    break;
                }
                page.push(m.clone(), size);
            }
        }
        Ok(page.finish())
    }

    async fn prune(&self, before_ts: u64) -> StoreResult<u64> {
        let mut s = self.state();
        let mut removed = 0;
        for h in s.history.values_mut() {
            let before = h.len();
            h.retain(|_, m| m.ts >= before_ts);
            removed += (before - h.len()) as u64;
        }
        s.ids.retain(|_, (_, ts)| *ts >= before_ts);
        Ok(removed)
    }
}

#[async_trait]
impl PresenceStore for MemoryStore {
    async fn join(
        &self,
        key: &ChannelKey,
        sub: &str,
        id: &ConnectionId,
        expires_at: u64,
    ) -> StoreResult<bool> {
        let now = self.clock.now_secs();
        let mut s = self.state();
        let connections = s
            .members
            .entry(key.clone())
            .or_default()
            .entry(sub.to_owned())
            .or_default();
        connections.retain(|_, expires| *expires > now);
        let first = connections.is_empty();
        Ok(connections.insert(id.clone(), expires_at).is_none() && first)
    }

    async fn leave(&self, key: &ChannelKey, sub: &str, id: &ConnectionId) -> StoreResult<bool> {
        let now = self.clock.now_secs();
        let mut s = self.state();
        let Some(users) = s.members.get_mut(key) else {
            return Ok(false);
        };
        let Some(connections) = users.get_mut(sub) else {
            return Ok(false);
        };
        let was_member = connections.remove(id).is_some();
        connections.retain(|_, expires| *expires > now);
        let last = connections.is_empty();
        if last {
            users.remove(sub);
            if users.is_empty() {
                s.members.remove(key);
            }
        }
        Ok(was_member && last)
    }

    async fn members(
        &self,
        key: &ChannelKey,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<MembersPage> {
        use std::ops::Bound;
        let now = self.clock.now_secs();
        let s = self.state();
        let Some(users) = s.members.get(key) else {
            return Ok(MembersPage::default());
        };
        let from = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.to_owned()));
        let mut live = users
            .range((from, Bound::Unbounded))
            .filter_map(|(sub, connections)| {
                let n = connections.values().filter(|e| **e > now).count();
                (n > 0).then(|| Member {
                    sub: sub.clone(),
                    connections: u32::try_from(n).unwrap_or(u32::MAX),
                })
            });
        let members: Vec<Member> = live.by_ref().take(limit).collect();
        let more = live.next().is_some();
        Ok(MembersPage { members, more })
    }
}

#[async_trait]
impl AssociationsStore for MemoryStore {
    async fn load_associations(&self) -> StoreResult<Option<String>> {
        Ok(self.state().associations.clone())
    }

    async fn save_associations(&self, document: &str) -> StoreResult<()> {
        self.state().associations = Some(document.to_owned());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance;

    #[tokio::test]
    async fn memory_store_conforms() {
        let store = MemoryStore::new();
        conformance::connection_store(&store).await;
        conformance::history_store(&store).await;
        conformance::associations_store(&store).await;
        conformance::presence_store(&store).await;
    }
}
