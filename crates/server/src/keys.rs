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
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // One writer at a time, across processes (`keys create` while a
        // server runs): an exclusive lock on a file beside the store, and
        // the store read fresh under it, so no concurrent key is lost.
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.path.with_extension("json.lock"))?;
        lock.lock()?;
        let mut keys: Vec<StoredKey> = match std::fs::read_to_string(&self.path) {
            Ok(t) => serde_json::from_str(&t).map_err(std::io::Error::other)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        keys.push(StoredKey {
            hash: hash(&key),
            principal,
            created_unix: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        });
        // A temp file of this process only, readable by its owner only.
        let tmp = self
            .path
            .with_extension(format!("json.{}.tmp", std::process::id()));
        let mut opts = std::fs::OpenOptions::new();
        opts.create(true).write(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        std::io::Write::write_all(&mut f, serde_json::to_string_pretty(&keys)?.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).0 = None;
        drop(lock);
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

    #[test]
    fn concurrent_creates_keep_every_key_and_the_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let keys: Vec<String> = std::thread::scope(|sc| {
            let handles: Vec<_> = (0..16)
                .map(|i| {
                    let path = dir.path();
                    sc.spawn(move || {
                        // A store per thread: as separate processes would.
                        KeyStore::new(path)
                            .create(Principal {
                                builder: Some(format!("b{i}")),
                                admin: false,
                            })
                            .unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let store = KeyStore::new(dir.path());
        for (i, k) in keys.iter().enumerate() {
            assert!(store.verify(k).is_some(), "key {i} was lost");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("keys.json"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "keys.json is readable by others: {mode:o}");
        }
    }
}
