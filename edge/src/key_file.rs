//! The key set kept in the data directory (`keys.json`, 0600): what `echoctl keys` writes and
//! the edge verifies tokens with.
//!
//! The edge looks at the file's modification time and size before every verification (one
//! `stat`), so a key added or revoked with `echoctl keys` is in force for the next connect
//! or `refresh`. A file that stops parsing leaves the last good set in force, logged; at start
//! it refuses the start.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use echo_core::auth::{KeySet, KeySource, Keyring, KeysError, TokenIssuer};
use echo_core::channel::AppId;

/// The file's name in the data directory.
pub const KEYS_FILE: &str = "keys.json";

/// Reads the key set at `path`; an absent file is an empty set.
pub fn read(path: &Path) -> Result<KeySet, KeysError> {
    match std::fs::read(path) {
        Ok(bytes) => KeySet::parse(&bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KeySet::default()),
        Err(e) => Err(KeysError::Read(Box::new(e))),
    }
}

/// Writes the key set to `path`, readable by its owner only, replacing the file in one rename
/// so that the edge never reads half of it.
pub fn write(path: &Path, set: &KeySet) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        crate::data_dir::create_private(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp)?;
    file.write_all(&serde_json::to_vec_pretty(set).map_err(std::io::Error::other)?)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Who signs Echo's own tokens for `app` (dev tokens, `echoctl jwt`): its newest HS256 key, or
/// the instance secret when the app has no keys of its own.
pub fn signer(
    set: &KeySet,
    app: &AppId,
    instance: Option<&TokenIssuer>,
) -> Result<TokenIssuer, String> {
    if let Some(key) = set.signing_key(app) {
        let secret = key.secret.as_deref().unwrap_or_default();
        return TokenIssuer::with_kid(secret.as_bytes(), &key.kid).map_err(|e| e.to_string());
    }
    if set.owns(app) {
        return Err(format!(
            "app {app} has no HS256 key to sign with (its tokens are signed by its RS256/ES256 key holders or OIDC issuers): add one with `echoctl keys create {app}`"
        ));
    }
    instance.cloned().ok_or_else(|| {
        format!("no key signs tokens of app {app}: add one with `echoctl keys create {app}`")
    })
}

/// The key set in `keys.json` plus the instance secret, reloaded when the file changes.
pub struct KeyFile {
    path: PathBuf,
    instance: Option<Vec<u8>>,
    /// The file's stamp when last read, and the keyring in force.
    loaded: Mutex<(Option<Stamp>, Arc<Keyring>)>,
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A file's modification time and size: when either changes, it is read again.
type Stamp = (SystemTime, u64);

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

impl KeyFile {
    /// Loads `path` (with the instance secret, when there is one); an error names what is wrong.
    pub fn open(path: PathBuf, instance: Option<Vec<u8>>) -> Result<Self, KeysError> {
        let seen = stamp(&path);
        let keyring = Keyring::compile(&read(&path)?, instance.as_deref())?;
        Ok(Self {
            path,
            instance,
            loaded: Mutex::new((seen, Arc::new(keyring))),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait]
impl KeySource for KeyFile {
    async fn keyring(&self) -> Result<Arc<Keyring>, KeysError> {
        let seen = stamp(&self.path);
        let mut loaded = self
            .loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if loaded.0 != seen {
            loaded.0 = seen;
            match read(&self.path).and_then(|set| Keyring::compile(&set, self.instance.as_deref()))
            {
                Ok(keyring) => {
                    tracing::info!(path = %self.path.display(), "key set reloaded");
                    loaded.1 = Arc::new(keyring);
                }
                Err(e) => {
                    tracing::error!(path = %self.path.display(), error = %e, "the key set does not parse; the last good one stays in force");
                }
            }
        }
        Ok(loaded.1.clone())
    }
}
