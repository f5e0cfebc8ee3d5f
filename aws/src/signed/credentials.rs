//! The credentials posts are signed with, kept until shortly before they expire.
//!
//! The SDK's identity cache serves only its own request pipeline (it resolves through the
//! client's runtime components), which posts skip; this is the same policy for the one provider
//! posts use.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use tokio::sync::Mutex as AsyncMutex;

use super::PostError;

/// Credentials are fetched again this long before they expire.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

/// Credentials kept until shortly before they expire; one refresh at a time.
#[derive(Debug)]
pub(super) struct CachedIdentity {
    provider: SharedCredentialsProvider,
    current: Mutex<Option<Credentials>>,
    refreshing: AsyncMutex<()>,
}

impl CachedIdentity {
    fn fresh(&self, now: SystemTime) -> Option<Credentials> {
        let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        current
            .as_ref()
            .filter(|c| c.expiry().is_none_or(|e| now + REFRESH_BEFORE_EXPIRY < e))
            .cloned()
    }

    pub(super) async fn get(&self, now: SystemTime) -> Result<Credentials, PostError> {
        if let Some(identity) = self.fresh(now) {
            return Ok(identity);
        }
        let _one = self.refreshing.lock().await;
        if let Some(identity) = self.fresh(now) {
            return Ok(identity);
        }
        let credentials = self
            .provider
            .provide_credentials()
            .await
            .map_err(|e| PostError::Credentials(Box::new(e)))?;
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(credentials.clone());
        Ok(credentials)
    }

    pub(super) fn new(provider: SharedCredentialsProvider) -> Self {
        Self {
            provider,
            current: Mutex::new(None),
            refreshing: AsyncMutex::new(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn time() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000)
    }

    #[tokio::test]
    async fn credentials_are_fetched_again_before_they_expire() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let cache = CachedIdentity::new(SharedCredentialsProvider::new(
            aws_credential_types::credential_fn::provide_credentials_fn(move || {
                let n = counted.fetch_add(1, Ordering::SeqCst);
                async move {
                    Ok(Credentials::new(
                        format!("AKID{n}"),
                        "secret",
                        None,
                        Some(time() + Duration::from_secs(600)),
                        "tests",
                    ))
                }
            }),
        ));
        let key = |c: &Credentials| c.access_key_id().to_owned();
        assert_eq!(key(&cache.get(time()).await.unwrap()), "AKID0");
        assert_eq!(
            key(&cache.get(time() + Duration::from_secs(60)).await.unwrap()),
            "AKID0"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1, "kept while fresh");
        // Within five minutes of expiry: fetched again.
        assert_eq!(
            key(&cache.get(time() + Duration::from_secs(360)).await.unwrap()),
            "AKID1"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
