//! API keys: stored hashed (BLAKE3) in `<index dir>/keys.json`; a builder's
//! key may change only that builder's models, an admin key anything.
//! Create one with `hubsearch keys create --builder NAME` (or `--admin`);
//! the key is printed once and only its hash (and its first characters, to
//! name it in `keys list`) is kept. `keys revoke PREFIX` revokes a key and
//! `keys rotate PREFIX` replaces it with a new one for the same holder; a
//! running server reads the file again when it changes, so a revocation
//! holds from the next request on (401 `key_revoked`). The admin routes
//! (`/v1/keys`) make the same changes as [`KeyChange`]s, which in cluster
//! mode go through the log to every replica's store.

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

/// Characters of a key kept in the clear to name it (`hs_` and 8 of its
/// 48 random hex digits: 32 bits, as GitHub keeps of its tokens' heads).
const PREFIX_CHARS: usize = 11;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredKey {
    hash: String,
    #[serde(flatten)]
    principal: Principal,
    created_unix: u64,
    /// The key's first characters (keys made before names were kept have
    /// none: they are revoked by the whole key).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revoked_unix: Option<u64>,
    /// When this hub last took the key, to the hour ([`USE_GRAIN_S`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_used_unix: Option<u64>,
}

/// How stale a key's `last_used_unix` may get: its use is written at most
/// once an hour, so a busy key costs one small write an hour, not one a
/// request.
const USE_GRAIN_S: u64 = 3600;

/// What a key is worth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Valid(Principal),
    /// A key that was revoked.
    Revoked,
    /// No key of this hub.
    Unknown,
}

/// A key as `keys list` shows it (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct KeyInfo {
    /// Its first characters, or "" for a key made before they were kept.
    pub prefix: String,
    pub builder: Option<String>,
    pub admin: bool,
    pub created_unix: u64,
    pub revoked_unix: Option<u64>,
    /// When a request with it was last taken on this machine (to the hour;
    /// none if never since uses were kept).
    pub last_used_unix: Option<u64>,
}

/// Why a key could not be revoked or rotated.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("no key starts with {0:?} (hubsearch keys list shows them)")]
    NoSuchKey(String),
    #[error("{count} keys start with {prefix:?}: give more of the key")]
    Ambiguous { prefix: String, count: usize },
    #[error("the key {0:?} is revoked already")]
    AlreadyRevoked(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

use hubsearch_core::now_unix;

fn new_key() -> String {
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "hs_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// A change to the keys: what `keys` commands and the admin routes make,
/// and what every replica applies from the cluster log (docs/cluster.md),
/// so a key made or revoked on one replica holds on all. Carries hashes,
/// never keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyChange {
    /// A key made.
    Add {
        hash: String,
        builder: Option<String>,
        admin: bool,
        created_unix: u64,
        prefix: String,
    },
    /// A key revoked.
    Revoke { hash: String, revoked_unix: u64 },
}

impl KeyChange {
    /// Whether this change revokes `key` (a whole key).
    pub fn revokes(&self, key: &str) -> bool {
        matches!(self, KeyChange::Revoke { hash: h, .. } if *h == hash(key))
    }
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
    pub fn create(&self, principal: Principal) -> Result<String, KeyError> {
        let (key, add) = KeyStore::make(principal);
        self.apply(&[add])?;
        Ok(key)
    }

    /// A new key for `principal`, not yet stored: the key (shown once) and
    /// the change that stores it.
    pub fn make(principal: Principal) -> (String, KeyChange) {
        let key = new_key();
        let k = StoredKey::new(&key, principal);
        let change = KeyChange::Add {
            hash: k.hash,
            builder: k.principal.builder,
            admin: k.principal.admin,
            created_unix: k.created_unix,
            prefix: k.prefix,
        };
        (key, change)
    }

    /// The change that revokes the one live key `prefix` names, with the
    /// key as listed (its holder, for a rotation).
    pub fn revocation(&self, prefix: &str) -> Result<(KeyInfo, KeyChange), KeyError> {
        let mut keys = self.load();
        let k = find_one(&mut keys, prefix)?;
        let change = KeyChange::Revoke {
            hash: k.hash.clone(),
            revoked_unix: now_unix(),
        };
        Ok((k.info(), change))
    }

    /// Apply changes in order (each once: adding a key that is there, or
    /// revoking one that is revoked, changes nothing).
    pub fn apply(&self, changes: &[KeyChange]) -> Result<(), KeyError> {
        self.modify_keys(|keys| {
            for c in changes {
                match c {
                    KeyChange::Add {
                        hash,
                        builder,
                        admin,
                        created_unix,
                        prefix,
                    } => {
                        if !keys.iter().any(|k| &k.hash == hash) {
                            keys.push(StoredKey {
                                hash: hash.clone(),
                                principal: Principal {
                                    builder: builder.clone(),
                                    admin: *admin,
                                },
                                created_unix: *created_unix,
                                prefix: prefix.clone(),
                                revoked_unix: None,
                                last_used_unix: None,
                            });
                        }
                    }
                    KeyChange::Revoke { hash, revoked_unix } => {
                        if let Some(k) = keys.iter_mut().find(|k| &k.hash == hash) {
                            k.revoked_unix.get_or_insert(*revoked_unix);
                        }
                    }
                }
            }
            Ok(())
        })
    }

    /// Revoke the one key that starts with `prefix` (or is `prefix`).
    pub fn revoke(&self, prefix: &str) -> Result<KeyInfo, KeyError> {
        let (mut info, revoke) = self.revocation(prefix)?;
        if let KeyChange::Revoke { revoked_unix, .. } = &revoke {
            info.revoked_unix = Some(*revoked_unix);
        }
        self.apply(&[revoke])?;
        Ok(info)
    }

    /// Replace the one key that starts with `prefix` by a new key for the
    /// same holder: the old one is revoked in the same write. Returns the
    /// new key (shown once).
    pub fn rotate(&self, prefix: &str) -> Result<String, KeyError> {
        let (old, revoke) = self.revocation(prefix)?;
        let (key, add) = KeyStore::make(Principal {
            builder: old.builder,
            admin: old.admin,
        });
        self.apply(&[revoke, add])?;
        Ok(key)
    }

    /// How `key` is listed, if it is stored.
    pub fn info_of(&self, key: &str) -> Option<KeyInfo> {
        let h = hash(key);
        self.load()
            .iter()
            .find(|k| k.hash == h)
            .map(StoredKey::info)
    }

    /// Every key, oldest first.
    pub fn list(&self) -> Vec<KeyInfo> {
        self.load().iter().map(StoredKey::info).collect()
    }

    /// Change the stored keys with `f`, one writer at a time across
    /// processes (`keys create` while a server runs): an exclusive lock on
    /// a file beside the store, the store read fresh under it, written to a
    /// private temp file and renamed over, so no concurrent change is lost.
    fn modify_keys(
        &self,
        f: impl FnOnce(&mut Vec<StoredKey>) -> Result<(), KeyError>,
    ) -> Result<(), KeyError> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.path.with_extension("json.lock"))?;
        lock.lock()?;
        let mut keys: Vec<StoredKey> = match std::fs::read_to_string(&self.path) {
            Ok(t) => serde_json::from_str(&t).map_err(std::io::Error::other)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        f(&mut keys)?;
        // A temp file of this process only, readable by its owner only.
        let tmp = self
            .path
            .with_extension(format!("json.{}.tmp", std::process::id()));
        let mut opts = std::fs::OpenOptions::new();
        opts.create(true).write(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        let text = serde_json::to_string_pretty(&keys).map_err(std::io::Error::other)?;
        std::io::Write::write_all(&mut f, text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).0 = None;
        drop(lock);
        Ok(())
    }

    /// What `key` is worth: its holder, revoked, or unknown.
    pub fn check(&self, key: &str) -> Verdict {
        let h = hash(key);
        match self.load().into_iter().find(|k| k.hash == h) {
            Some(k) if k.revoked_unix.is_some() => Verdict::Revoked,
            Some(k) => {
                let now = now_unix();
                if k.last_used_unix
                    .is_none_or(|t| now.saturating_sub(t) >= USE_GRAIN_S)
                {
                    // Best effort: a key's use not written (a full disk)
                    // never refuses the request.
                    let _ = self.modify_keys(|keys| {
                        if let Some(k) = keys.iter_mut().find(|k| k.hash == h) {
                            k.last_used_unix = Some(now);
                        }
                        Ok(())
                    });
                }
                Verdict::Valid(k.principal)
            }
            None => Verdict::Unknown,
        }
    }

    /// Who holds `key`, if it is a valid (unrevoked) key.
    pub fn verify(&self, key: &str) -> Option<Principal> {
        match self.check(key) {
            Verdict::Valid(p) => Some(p),
            Verdict::Revoked | Verdict::Unknown => None,
        }
    }
}

impl StoredKey {
    fn new(key: &str, principal: Principal) -> StoredKey {
        StoredKey {
            hash: hash(key),
            principal,
            created_unix: now_unix(),
            prefix: key.chars().take(PREFIX_CHARS).collect(),
            revoked_unix: None,
            last_used_unix: None,
        }
    }

    fn info(&self) -> KeyInfo {
        KeyInfo {
            prefix: self.prefix.clone(),
            builder: self.principal.builder.clone(),
            admin: self.principal.admin,
            created_unix: self.created_unix,
            revoked_unix: self.revoked_unix,
            last_used_unix: self.last_used_unix,
        }
    }
}

/// The one key `prefix` names: a key whose kept prefix starts with it, or
/// whose hash is the hash of `prefix` (a whole key, also one made before
/// prefixes were kept). Revoked keys are not candidates.
fn find_one<'k>(keys: &'k mut [StoredKey], prefix: &str) -> Result<&'k mut StoredKey, KeyError> {
    let whole = hash(prefix);
    let matches: Vec<usize> = keys
        .iter()
        .enumerate()
        .filter(|(_, k)| {
            k.hash == whole
                || (!k.prefix.is_empty()
                    && (4..=PREFIX_CHARS).contains(&prefix.len())
                    && k.prefix.starts_with(prefix))
        })
        .map(|(i, _)| i)
        .collect();
    let live: Vec<usize> = matches
        .iter()
        .copied()
        .filter(|&i| keys[i].revoked_unix.is_none())
        .collect();
    match (live.as_slice(), matches.as_slice()) {
        ([i], _) => Ok(&mut keys[*i]),
        ([], []) => Err(KeyError::NoSuchKey(prefix.to_string())),
        ([], _) => Err(KeyError::AlreadyRevoked(prefix.to_string())),
        (many, _) => Err(KeyError::Ambiguous {
            prefix: prefix.to_string(),
            count: many.len(),
        }),
    }
}

impl crate::Engine {
    /// The key store beside the index.
    pub fn keys(&self) -> KeyStore {
        KeyStore::new(self.dir())
    }

    /// Make key changes: through the cluster log in cluster mode (every
    /// replica applies them, so a key made or revoked on one holds on all),
    /// else on this hub's store.
    pub fn change_keys(&self, changes: Vec<KeyChange>) -> crate::Result<()> {
        match self.replicator() {
            Some(r) => r.keys(&changes),
            None => Ok(self.keys().apply(&changes)?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key's use is kept, at most once an hour, and read back by a
    /// fresh store (another process: `keys list`).
    #[test]
    fn a_keys_last_use_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path());
        let (key, add) = KeyStore::make(Principal {
            builder: None,
            admin: true,
        });
        store.apply(&[add]).unwrap();
        assert_eq!(store.list()[0].last_used_unix, None);
        let before = now_unix();
        assert!(matches!(store.check(&key), Verdict::Valid(_)));
        let used = KeyStore::new(dir.path()).list()[0].last_used_unix.unwrap();
        assert!(used >= before && used <= now_unix());
        let text = std::fs::read_to_string(dir.path().join("keys.json")).unwrap();
        store.check(&key);
        let again = std::fs::read_to_string(dir.path().join("keys.json")).unwrap();
        assert_eq!(text, again, "a second use within the hour writes nothing");
        assert_eq!(store.check("hs_not_a_key"), Verdict::Unknown);
    }

    /// Changes made on one store and applied on another (a replica) give
    /// the same verdicts; applying them twice changes nothing.
    #[test]
    fn key_changes_replay_on_another_store() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (one, two) = (KeyStore::new(a.path()), KeyStore::new(b.path()));
        let (key, add) = KeyStore::make(Principal {
            builder: Some("acme".into()),
            admin: false,
        });
        one.apply(std::slice::from_ref(&add)).unwrap();
        two.apply(&[add.clone(), add.clone()]).unwrap();
        assert_eq!(two.list().len(), 1);
        assert!(matches!(two.check(&key), Verdict::Valid(_)));
        let (info, revoke) = one.revocation(&key[..PREFIX_CHARS]).unwrap();
        assert_eq!(info.builder.as_deref(), Some("acme"));
        one.apply(std::slice::from_ref(&revoke)).unwrap();
        two.apply(&[revoke.clone(), revoke]).unwrap();
        for s in [&one, &two] {
            assert_eq!(s.check(&key), Verdict::Revoked);
        }
        // The same keys (a key's last use is each machine's own).
        let unused = |s: &KeyStore| -> Vec<KeyInfo> {
            let mut l = s.list();
            l.iter_mut().for_each(|k| k.last_used_unix = None);
            l
        };
        assert_eq!(unused(&one), unused(&two));
        let text = std::fs::read_to_string(b.path().join("keys.json")).unwrap();
        assert!(!text.contains(&key), "a replica stores no key");
    }

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
    fn keys_are_revoked_and_rotated_by_prefix_and_listed_without_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path());
        let acme = Principal {
            builder: Some("acme".into()),
            admin: false,
        };
        let a = store.create(acme.clone()).unwrap();
        let b = store
            .create(Principal {
                builder: None,
                admin: true,
            })
            .unwrap();
        let list = store.list();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].prefix, a[..PREFIX_CHARS]);
        let text = std::fs::read_to_string(dir.path().join("keys.json")).unwrap();
        assert!(!text.contains(&a) && !text.contains(&b));
        // Fewer than 4 characters name no key.
        assert!(matches!(store.revoke("hs_"), Err(KeyError::NoSuchKey(_))));
        let both = &a[..3];
        assert!(store.revoke(both).is_err());
        // Revoked: the next check says so; the other key still works.
        let info = store.revoke(&a[..8]).unwrap();
        assert_eq!(info.builder.as_deref(), Some("acme"));
        assert_eq!(store.check(&a), Verdict::Revoked);
        assert!(store.verify(&a).is_none());
        assert!(store.verify(&b).is_some());
        assert!(matches!(store.revoke(&a), Err(KeyError::AlreadyRevoked(_))));
        // Another process (store) sees the revocation.
        assert_eq!(KeyStore::new(dir.path()).check(&a), Verdict::Revoked);
        // Rotation: the old key revoked, a new one for the same holder.
        let b2 = store.rotate(&b).unwrap();
        assert_eq!(store.check(&b), Verdict::Revoked);
        assert!(store.verify(&b2).unwrap().admin);
        assert_eq!(store.check("hs_nothing"), Verdict::Unknown);
        assert_eq!(store.list().len(), 3);
    }

    #[test]
    fn a_key_made_before_prefixes_were_kept_is_revoked_by_the_whole_key() {
        let dir = tempfile::tempdir().unwrap();
        let old = "hs_0123456789abcdef";
        std::fs::write(
            dir.path().join("keys.json"),
            format!(
                r#"[{{"hash":"{}","builder":"acme","admin":false,"created_unix":1}}]"#,
                hash(old)
            ),
        )
        .unwrap();
        let store = KeyStore::new(dir.path());
        assert!(store.verify(old).is_some());
        assert_eq!(store.list()[0].prefix, "");
        assert!(store.revoke(&old[..8]).is_err(), "no prefix kept to match");
        store.revoke(old).unwrap();
        assert_eq!(store.check(old), Verdict::Revoked);
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
