//! The JWT secret and the management token: from the environment, or kept in the data directory.

use std::path::{Path, PathBuf};

use rand::Rng;

pub const JWT_SECRET_ENV: &str = "ECHO_JWT_SECRET";
pub const MANAGE_TOKEN_ENV: &str = "ECHO_MANAGE_TOKEN";
/// Dev mode's generated secret, kept so tokens survive a restart.
pub const DEV_SECRET_FILE: &str = "dev-secret";
pub const MANAGE_TOKEN_FILE: &str = "manage-token";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot use {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn random_token() -> String {
    let mut rng = rand::rng();
    (0..32)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

fn read_or_create(path: &Path) -> Result<(String, bool), SecretError> {
    let err = |source| SecretError::File {
        path: path.to_owned(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(s) if !s.trim().is_empty() => return Ok((s.trim().to_owned(), false)),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    if let Some(dir) = path.parent() {
        echo_edge::data_dir::create_private(dir).map_err(err)?;
    }
    let token = random_token();
    write_private(path, &token).map_err(err)?;
    Ok((token, true))
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}

/// The instance secret: `ECHO_JWT_SECRET`, else (in dev mode) the data directory's dev secret,
/// created on first use, else none (empty: the apps' keys in `keys.json` alone verify tokens).
/// The flag says whether it was just generated.
pub fn jwt_secret(data_dir: &Path, dev: bool) -> Result<(String, bool), SecretError> {
    if let Ok(s) = std::env::var(JWT_SECRET_ENV) {
        return Ok((s, false));
    }
    if !dev {
        return Ok((String::new(), false));
    }
    read_or_create(&data_dir.join(DEV_SECRET_FILE))
}

/// Who signs `echoctl`'s tokens for `app`: the app's newest HS256 key in `keys.json`, else the
/// instance secret (`ECHO_JWT_SECRET`, or the dev secret, created on first use as `echoctl dev`
/// would).
pub fn signer(
    data_dir: &Path,
    app: &echo_core::channel::AppId,
) -> Result<echo_core::auth::TokenIssuer, Box<dyn std::error::Error>> {
    let set = echo_edge::key_file::read(&data_dir.join(echo_edge::key_file::KEYS_FILE))?;
    let instance = match set.owns(app) {
        true => None,
        false => {
            let (secret, _) = jwt_secret(data_dir, true)?;
            Some(echo_core::auth::TokenIssuer::new(secret.as_bytes())?)
        }
    };
    Ok(echo_edge::key_file::signer(&set, app, instance.as_ref())?)
}

/// The management token: `ECHO_MANAGE_TOKEN`, else the data directory's, created on first use.
pub fn manage_token(data_dir: &Path) -> Result<String, SecretError> {
    if let Ok(s) = std::env::var(MANAGE_TOKEN_ENV) {
        let path = data_dir.join(MANAGE_TOKEN_FILE);
        echo_edge::data_dir::create_private(data_dir)
            .and_then(|_| write_private(&path, &s))
            .map_err(|source| SecretError::File { path, source })?;
        return Ok(s);
    }
    read_or_create(&data_dir.join(MANAGE_TOKEN_FILE)).map(|(t, _)| t)
}

/// Where the JWT secret would come from, without showing it.
pub fn describe(data_dir: &Path) -> String {
    if let Ok(s) = std::env::var(JWT_SECRET_ENV) {
        return format!("from {JWT_SECRET_ENV} ({} bytes)", s.len());
    }
    let file = data_dir.join(DEV_SECRET_FILE);
    if file.is_file() {
        format!("dev secret in {}", file.display())
    } else {
        format!("not set ({JWT_SECRET_ENV}; `echoctl dev` would generate one)")
    }
}

/// The management token: `ECHO_MANAGE_TOKEN`, else the one the edge keeps in `data_dir`.
pub fn existing_manage_token(data_dir: &Path) -> Option<String> {
    if let Ok(t) = std::env::var(MANAGE_TOKEN_ENV) {
        return Some(t);
    }
    std::fs::read_to_string(data_dir.join(MANAGE_TOKEN_FILE))
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}
