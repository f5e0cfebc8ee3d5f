//! Associations as one item of the connections table, as the [`AssociationsStore`].

use async_trait::async_trait;
use echo_core::store::{AssociationsStore, StoreError, StoreResult};

use super::{DynamoStore, get_s, s};

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
