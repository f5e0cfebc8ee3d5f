//! Where handlers read the associations in force: the port, and the document held in memory.

use std::sync::Arc;

use super::Associations;

/// Where handlers read the associations in force.
///
/// Locally a [`LiveAssociations`] swapped on reload; on AWS a short-lived cache over DynamoDB. An
/// update is seen by the next message after the source returns it.
#[async_trait::async_trait]
pub trait AssociationsSource: Send + Sync + 'static {
    async fn current(&self) -> Result<Arc<Associations>, crate::store::StoreError>;
}

/// Associations held in memory and replaced atomically: readers see the old or the new document,
/// never a mix.
#[derive(Debug)]
pub struct LiveAssociations(std::sync::RwLock<Arc<Associations>>);

impl LiveAssociations {
    pub fn new(a: Associations) -> Self {
        Self(std::sync::RwLock::new(Arc::new(a)))
    }

    pub fn get(&self) -> Arc<Associations> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn replace(&self, a: Associations) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(a);
    }
}

#[async_trait::async_trait]
impl AssociationsSource for LiveAssociations {
    async fn current(&self) -> Result<Arc<Associations>, crate::store::StoreError> {
        Ok(self.get())
    }
}
