//! Associations read from the store and cached for a short, configured time: an update made with
//! `echoctl associations push` reaches every Lambda container within that time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use echo_core::associations::{Associations, AssociationsSource};
use echo_core::store::{AssociationsStore, StoreError};
use tokio::sync::Mutex;

/// A cache over an [`AssociationsStore`]. Documents that no longer validate are logged and the
/// previous ones kept.
pub struct CachedAssociations {
    store: Arc<dyn AssociationsStore>,
    ttl: Duration,
    known: Box<dyn Fn(&str) -> bool + Send + Sync>,
    cached: Mutex<Option<(Instant, Arc<Associations>)>>,
}

impl CachedAssociations {
    pub fn new(
        store: Arc<dyn AssociationsStore>,
        ttl: Duration,
        known: impl Fn(&str) -> bool + Send + Sync + 'static,
    ) -> Self {
        Self {
            store,
            ttl,
            known: Box::new(known),
            cached: Mutex::new(None),
        }
    }
}

#[async_trait]
impl AssociationsSource for CachedAssociations {
    async fn current(&self) -> Result<Arc<Associations>, StoreError> {
        let mut cached = self.cached.lock().await;
        if let Some((at, a)) = cached.as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(a.clone());
        }
        let fresh = match self.store.load_associations().await? {
            None => Arc::new(Associations::empty()),
            Some(text) => match Associations::parse(&text, &*self.known) {
                Ok(a) => Arc::new(a),
                Err(e) => {
                    tracing::error!(error = %e, "stored associations are invalid; keeping the previous ones");
                    cached
                        .as_ref()
                        .map(|(_, a)| a.clone())
                        .unwrap_or_else(|| Arc::new(Associations::empty()))
                }
            },
        };
        *cached = Some((Instant::now(), fresh.clone()));
        Ok(fresh)
    }
}
