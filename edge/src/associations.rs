//! Loading associations at start and replacing them while running.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use echo_core::associations::{Associations, AssociationsError, LiveAssociations};
use echo_core::function::FunctionInvoker;
use echo_core::store::AssociationsStore;
use thiserror::Error;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Invalid {
        path: String,
        #[source]
        source: AssociationsError,
    },
    #[error("could not store associations: {0}")]
    Store(#[from] echo_core::store::StoreError),
}

/// Parses `text` against the functions `invoker` can run.
pub fn parse(text: &str, invoker: &dyn FunctionInvoker) -> Result<Associations, AssociationsError> {
    Associations::parse(text, &|name| invoker.knows(name))
}

/// The associations to start with: the file if one is given (an invalid file stops the start),
/// else what the store kept, else `starting` (the edge's configured starting associations).
pub async fn initial(
    file: Option<&Path>,
    starting: &str,
    store: &dyn AssociationsStore,
    invoker: &dyn FunctionInvoker,
) -> Result<Associations, LoadError> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let a = parse(&text, invoker).map_err(|source| LoadError::Invalid {
            path: path.display().to_string(),
            source,
        })?;
        store.save_associations(a.source()).await?;
        return Ok(a);
    }
    if let Some(text) = store.load_associations().await? {
        match parse(&text, invoker) {
            Ok(a) => return Ok(a),
            Err(e) => {
                tracing::error!(error = %e, "stored associations are no longer valid; using the starting associations")
            }
        }
    }
    let a = parse(starting, invoker).map_err(|source| LoadError::Invalid {
        path: "starting associations".into(),
        source,
    })?;
    store.save_associations(a.source()).await?;
    Ok(a)
}

/// Validates `text`, stores it and puts it in force. On error nothing changes.
pub async fn replace(
    text: &str,
    live: &LiveAssociations,
    store: &dyn AssociationsStore,
    invoker: &dyn FunctionInvoker,
) -> Result<Arc<Associations>, LoadError> {
    let a = parse(text, invoker).map_err(|source| LoadError::Invalid {
        path: "associations".into(),
        source,
    })?;
    store.save_associations(a.source()).await?;
    live.replace(a);
    Ok(live.get())
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Reloads `path` whenever it changes, until `stop`. An invalid file is reported and ignored: the
/// associations in force stay.
pub async fn watch(
    path: std::path::PathBuf,
    every: Duration,
    live: Arc<LiveAssociations>,
    store: Arc<dyn AssociationsStore>,
    invoker: Arc<dyn FunctionInvoker>,
    stop: CancellationToken,
) {
    let mut last = stamp(&path);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let now = stamp(&path);
        if now == last {
            continue;
        }
        last = now;
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "cannot read associations; keeping the current ones");
                continue;
            }
        };
        match replace(&text, &live, store.as_ref(), invoker.as_ref()).await {
            Ok(a) => {
                tracing::info!(path = %path.display(), functions = ?a.function_names(), "associations reloaded")
            }
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "associations rejected; keeping the current ones")
            }
        }
    }
}
