//! The data directory: history, sequences, associations and secrets, readable by their owner
//! only. A directory Echo creates is 0700; the store file is 0600 (the secrets are written 0600
//! by whoever writes them). A directory that already exists keeps its mode: it may be one the
//! user shares with other things.

use std::io;
use std::path::Path;

/// Creates `path` (and missing parents) readable by this user only.
pub fn create_private(path: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

/// Makes the file at `path` readable and writable by this user only.
pub fn make_private(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
