//! The log's Ed25519 key: a file holding the 32-byte secret seed as one
//! line of standard base64, owner-only (mode 0600). A ledger creates its
//! own beside its database on first start; a cluster supplies one file to
//! every replica (`index.transparency_key`), which must then exist.

use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use rand::RngCore;

use crate::LedgerError;

fn key_err(path: &Path, e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Db(format!("transparency key {}: {e}", path.display()))
}

/// A fresh random key (an in-memory ledger's).
pub fn generate() -> SigningKey {
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    SigningKey::from_bytes(&seed)
}

/// Read the key at `path`; when it does not exist and `create` is set,
/// make one there (mode 0600, written with `create_new`: two processes
/// cannot both create it).
pub fn load_or_create(path: &Path, create: bool) -> Result<SigningKey, LedgerError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            let key = generate();
            match write_new(path, &key) {
                Ok(()) => Ok(key),
                // Somebody made it meanwhile: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text = std::fs::read_to_string(path).map_err(|e| key_err(path, e))?;
                    parse(path, &text)
                }
                Err(e) => Err(key_err(path, e)),
            }
        }
        Err(e) => Err(key_err(path, e)),
    }
}

fn parse(path: &Path, text: &str) -> Result<SigningKey, LedgerError> {
    let raw = B64
        .decode(text.trim())
        .map_err(|e| key_err(path, format!("not base64: {e}")))?;
    let seed: [u8; 32] = raw
        .try_into()
        .map_err(|_| key_err(path, "not a 32-byte Ed25519 secret key"))?;
    warn_if_readable(path);
    Ok(SigningKey::from_bytes(&seed))
}

#[cfg(unix)]
fn warn_if_readable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(path) {
        if m.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                "transparency key {} is readable by others (chmod 600 it)",
                path.display()
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable(_: &Path) {}

fn write_new(path: &Path, key: &SigningKey) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(format!("{}\n", B64.encode(key.to_bytes())).as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_created_owner_only_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        assert!(
            load_or_create(&path, false).is_err(),
            "a supplied key must exist"
        );
        let a = load_or_create(&path, true).unwrap();
        let b = load_or_create(&path, true).unwrap();
        assert_eq!(a.to_bytes(), b.to_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "not a key").unwrap();
        assert!(load_or_create(&path, true).is_err());
    }
}
