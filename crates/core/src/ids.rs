//! The names of a model and its builder, as keys and as ids (not the API
//! keys of `hubsearch_engine::keys`).
//!
//! A model is known by its id (`"builder/name"`, [`ModelId`]) where people
//! read it, and by a 64-bit key of that id ([`ModelKey`], [`key_of`]) where
//! the index, ranking and the ledger group, join and store it; a builder by
//! its name and its [`BuilderKey`]. The newtypes keep the two kinds of key
//! apart in signatures; in every encoding (JSON, the ledger's binary codecs,
//! redb tables) they are exactly the bare `u64` or string they wrap
//! (`#[serde(transparent)]`).
//!
//! A fairness group (`hubsearch_rank::Candidate::group`, an exposure book's
//! key) stays a bare `u64`: it is a model's key or a builder's, as the
//! policy's group says; `u64::from(key)` (or `key.0`) gives it.

use std::borrow::Borrow;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::card::key_of;

/// A model's 64-bit key: [`key_of`] its id (the index's `id_key` fast field,
/// the ledger's per-model key, ranking's tie-break).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct ModelKey(pub u64);

impl ModelKey {
    /// The key of the model with id `id`.
    pub fn of(id: &str) -> ModelKey {
        ModelKey(key_of(id))
    }
}

/// A builder's 64-bit key: [`key_of`] its name (the index's `builder_key`
/// fast field, the ledger's per-builder key).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct BuilderKey(pub u64);

impl BuilderKey {
    /// The key of the builder named `name`.
    pub fn of(name: &str) -> BuilderKey {
        BuilderKey(key_of(name))
    }
}

impl From<ModelKey> for u64 {
    fn from(k: ModelKey) -> u64 {
        k.0
    }
}

impl From<BuilderKey> for u64 {
    fn from(k: BuilderKey) -> u64 {
        k.0
    }
}

impl fmt::Display for ModelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for BuilderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A model's id as a hub names it (`"builder/name"`); serialized as the
/// bare string.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ModelId(String);

impl ModelId {
    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id's [`ModelKey`].
    pub fn key(&self) -> ModelKey {
        ModelKey::of(&self.0)
    }

    /// The id as its string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for ModelId {
    fn from(s: String) -> ModelId {
        ModelId(s)
    }
}

impl From<&str> for ModelId {
    fn from(s: &str) -> ModelId {
        ModelId(s.to_string())
    }
}

impl From<ModelId> for String {
    fn from(id: ModelId) -> String {
        id.0
    }
}

impl Borrow<str> for ModelId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for ModelId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for ModelId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for ModelId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_ids_encode_as_what_they_wrap() {
        let m = ModelKey::of("a/x");
        assert_eq!(m.0, key_of("a/x"));
        assert_eq!(BuilderKey::of("a").0, key_of("a"));
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            serde_json::to_string(&key_of("a/x")).unwrap()
        );
        let back: ModelKey = serde_json::from_str(&m.0.to_string()).unwrap();
        assert_eq!(back, m);
        let id = ModelId::from("a/x");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"a/x\"");
        assert_eq!(id.key(), m);
        assert_eq!(id.to_string(), "a/x");
        assert_eq!(u64::from(BuilderKey(7)), 7);
    }
}
