//! API keys: stored hashed (BLAKE3) in `<index dir>/keys.json`; a builder's
//! key may change only that builder's models, an admin key anything.
//! Create one with `hubsearch keys create --builder NAME` (or `--admin`);
//! the key is printed once and only its hash is kept.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use rand::RngCore;
use serde::{Deserialize, Serialize};

/// Who a key belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// The builder the key acts for (None for admin keys).
    pub builder: Option<String>,
    pub admin: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredKey {
    hash: String,
    #[serde(flatten)]
    principal: Principal,
    created_unix: u64,
}

/// The key file, reloaded when it changes on disk.
pub struct KeyStore {
    path: PathBuf,
    cache: Mutex<(Option<SystemTime>, Vec<StoredKey>)>,
}

fn hash(key: &str) -> String {
    blake3::hash(key.as_bytes()).to_hex().to_string()
}

impl KeyStore {
    pub fn new(index_dir: &Path) -> KeyStore {
        KeyStore {
            path: index_dir.join("keys.json"),
            cache: Mutex::new((None, Vec::new())),
        }
    }

    fn load(&self) -> Vec<StoredKey> {
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if c.0 != mtime || mtime.is_none() {
            c.1 = std::fs::read_to_string(&self.path)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default();
            c.0 = mtime;
        }
        c.1.clone()
    }

    /// Create a key; returns the key itself (shown once).
    pub fn create(&self, principal: Principal) -> std::io::Result<String> {
        let mut bytes = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let key = format!(
            "hs_{}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let mut keys = self.load();
        keys.push(StoredKey {
            hash: hash(&key),
            principal,
            created_unix: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        });
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(&keys)?)?;
        std::fs::rename(&tmp, &self.path)?;
        Ok(key)
    }

    /// Who holds `key`, if anyone.
    pub fn verify(&self, key: &str) -> Option<Principal> {
        let h = hash(key);
        self.load()
            .into_iter()
            .find(|k| k.hash == h)
            .map(|k| k.principal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stored_hashed_and_verified() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path());
        let k = store
            .create(Principal {
                builder: Some("acme".into()),
                admin: false,
            })
            .unwrap();
        let text = std::fs::read_to_string(dir.path().join("keys.json")).unwrap();
        assert!(!text.contains(&k), "the key itself must not be stored");
        assert_eq!(store.verify(&k).unwrap().builder.as_deref(), Some("acme"));
        assert!(store.verify("hs_wrong").is_none());
        // A second store (another process) sees it too.
        assert!(KeyStore::new(dir.path()).verify(&k).is_some());
    }
}
