//! The [`AssociationsStore`]: the associations document in the `meta` table.

use async_trait::async_trait;
use echo_core::store::{AssociationsStore, StoreError, StoreResult};
use redb::ReadableDatabase;

use super::{ASSOCIATIONS_KEY, META, RedbStore};

#[async_trait]
impl AssociationsStore for RedbStore {
    async fn load_associations(&self) -> StoreResult<Option<String>> {
        self.blocking(|db| {
            let txn = db.begin_read().map_err(StoreError::backend)?;
            let meta = txn.open_table(META).map_err(StoreError::backend)?;
            Ok(meta
                .get(ASSOCIATIONS_KEY)
                .map_err(StoreError::backend)?
                .map(|g| g.value().to_owned()))
        })
        .await
    }

    async fn save_associations(&self, document: &str) -> StoreResult<()> {
        let doc = document.to_owned();
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(StoreError::backend)?;
            txn.open_table(META)
                .map_err(StoreError::backend)?
                .insert(ASSOCIATIONS_KEY, doc.as_str())
                .map_err(StoreError::backend)?;
            txn.commit().map_err(StoreError::backend)?;
            Ok(())
        })
        .await
    }
}
