//! Where the associations document is kept.

use async_trait::async_trait;

use super::error::StoreResult;

/// Where the current associations document is kept.
#[async_trait]
pub trait AssociationsStore: Send + Sync + 'static {
    async fn load_associations(&self) -> StoreResult<Option<String>>;

    async fn save_associations(&self, document: &str) -> StoreResult<()>;
}
