//! Publisher-given ids committed per channel, so that a publish repeated within the dedup window
//! is answered with the first one's seq instead of being committed again.
//!
//! Tables: `ids` ((channel key, id) to (seq, when the entry expires)) for the lookup at commit,
//! and `id_expiries` ((expiry, channel key, id)) so that expired entries are found without
//! reading the rest.

use redb::{Database, ReadableTable, Table, TableDefinition};

use echo_core::message::NewMessage;
use echo_core::store::{StoreError, StoreResult};

pub(super) const IDS: TableDefinition<(&str, &str), (u64, u64)> = TableDefinition::new("ids");
pub(super) const ID_EXPIRIES: TableDefinition<(u64, &str, &str), ()> =
    TableDefinition::new("id_expiries");

/// The two tables, open in one write transaction.
pub(super) struct Ids<'txn> {
    ids: Table<'txn, (&'static str, &'static str), (u64, u64)>,
    expiries: Table<'txn, (u64, &'static str, &'static str), ()>,
}

impl<'txn> Ids<'txn> {
    pub(super) fn open(txn: &'txn redb::WriteTransaction) -> StoreResult<Self> {
        Ok(Self {
            ids: txn.open_table(IDS).map_err(StoreError::backend)?,
            expiries: txn.open_table(ID_EXPIRIES).map_err(StoreError::backend)?,
        })
    }

    /// The seq `message` repeats on channel `key`, if its id was committed there within its
    /// window.
    pub(super) fn first(&self, key: &str, message: &NewMessage) -> StoreResult<Option<u64>> {
        if message.dedup_window_ms.is_none() {
            return Ok(None);
        }
        let found = self
            .ids
            .get((key, message.id.as_str()))
            .map_err(StoreError::backend)?
            .map(|g| g.value());
        Ok(found.and_then(|(seq, expires)| (message.ts < expires).then_some(seq)))
    }

    /// Remembers `message`'s id as committed at `seq`, for its window.
    pub(super) fn remember(
        &mut self,
        key: &str,
        message: &NewMessage,
        seq: u64,
    ) -> StoreResult<()> {
        let Some(window) = message.dedup_window_ms else {
            return Ok(());
        };
        let expires = message.ts.saturating_add(window);
        let id = message.id.as_str();
        if let Some(old) = self
            .ids
            .insert((key, id), (seq, expires))
            .map_err(StoreError::backend)?
        {
            // An expired entry replaced: its expiry no longer stands for anything.
            let (_, old_expires) = old.value();
            self.expiries
                .remove((old_expires, key, id))
                .map_err(StoreError::backend)?;
        }
        self.expiries
            .insert((expires, key, id), ())
            .map_err(StoreError::backend)?;
        Ok(())
    }
}

/// Forgets ids whose window ended by `now_ms`, at most `chunk` per transaction; returns
/// how many.
pub(super) fn forget_expired(db: &Database, now_ms: u64, chunk: usize) -> StoreResult<u64> {
    let mut forgotten = 0;
    loop {
        let txn = db.begin_write().map_err(StoreError::backend)?;
        let done = {
            let mut ids = txn.open_table(IDS).map_err(StoreError::backend)?;
            let mut expiries = txn.open_table(ID_EXPIRIES).map_err(StoreError::backend)?;
            let mut expired = Vec::new();
            for entry in expiries
                .range::<(u64, &str, &str)>(..(now_ms.saturating_add(1), "", ""))
                .map_err(StoreError::backend)?
                .take(chunk.max(1))
            {
                let (k, _) = entry.map_err(StoreError::backend)?;
                let (expires, key, id) = k.value();
                expired.push((expires, key.to_owned(), id.to_owned()));
            }
            for (expires, key, id) in &expired {
                expiries
                    .remove((*expires, key.as_str(), id.as_str()))
                    .map_err(StoreError::backend)?;
                ids.remove((key.as_str(), id.as_str()))
                    .map_err(StoreError::backend)?;
            }
            forgotten += expired.len() as u64;
            expired.len() < chunk.max(1)
        };
        txn.commit().map_err(StoreError::backend)?;
        if done {
            return Ok(forgotten);
        }
    }
}
