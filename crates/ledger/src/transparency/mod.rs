//! The call log: a transparency log of paid calls (docs/transparency.md).
//!
//! Every acknowledged paid call is one [`Entry`], a JSON document whose
//! exact bytes are a leaf of an RFC 9162 Merkle tree ([`merkle`]). Entries
//! are written in the same redb transaction as their call (table
//! `call_log_entries`, leaf index -> bytes), in ledger order: leaf `i` is
//! the call with the `i`-th smallest sequence number of table `calls`, so
//! the call -> leaf map is kept in memory (runs of consecutive numbers),
//! not stored. The tree in memory grows only once that transaction has
//! committed, so a signed tree head never covers an entry a crash could
//! lose. Heads are signed with the log's Ed25519 key
//! ([`key`]) over exactly `hubsearch-sth-v1\n{tree_size}\n{timestamp_ms}\n
//! {root_hash as lowercase hex}`.

pub mod key;
pub mod merkle;

use std::sync::{Mutex, RwLock};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signer, SigningKey};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The log's public key type (for verifiers).
pub use ed25519_dalek::VerifyingKey;
pub use merkle::{leaf_hash, verify_consistency, verify_inclusion, Hash, Tree};

use crate::state::CallEntry;
use crate::store::db_err;
use crate::{Ledger, LedgerError};

/// leaf index -> the entry's bytes (the Merkle leaf).
pub(crate) const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("call_log_entries");

/// Most entries one `entries` request returns.
pub const MAX_ENTRIES: u64 = 1000;
/// The first line of the bytes a tree head signs.
pub const STH_VERSION: &str = "hubsearch-sth-v1";

/// One paid call in the log. Its JSON bytes, as written once, are the leaf;
/// the fields are in this order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Its position in the log (0-based).
    pub leaf_index: u64,
    /// The ledger's sequence number of the call.
    pub seq: u64,
    /// When the call was recorded (cluster mode: when the receiving replica
    /// took it, as the log carries it), milliseconds since the epoch.
    pub time_ms: u64,
    /// The model's id and its builder's name.
    pub model: String,
    pub builder: String,
    pub amount_usd: f64,
    /// SHA-256 (lowercase hex) of the call's idempotency key; the key
    /// itself is never logged. Null for a call without one.
    pub key_sha256: Option<String>,
}

/// An [`Entry`] as written (borrowing its names; the same fields).
#[derive(Serialize)]
struct EntryOut<'a> {
    leaf_index: u64,
    seq: u64,
    time_ms: u64,
    model: &'a str,
    builder: &'a str,
    amount_usd: f64,
    key_sha256: Option<String>,
}

/// The bytes of the entry of `call` at `leaf_index`; `names` are its
/// model's and builder's names.
fn entry_bytes(
    leaf_index: u64,
    call: &CallEntry,
    names: &[(u64, String); 2],
    time_ms: u64,
) -> Vec<u8> {
    let e = EntryOut {
        leaf_index,
        seq: call.seq,
        time_ms,
        model: &names[0].1,
        builder: &names[1].1,
        amount_usd: call.amount_usd,
        key_sha256: call.idempotency_key.as_deref().map(key_sha256),
    };
    let mut out = Vec::with_capacity(256);
    // A struct of strings and numbers always serializes.
    let _ = serde_json::to_writer(&mut out, &e);
    out
}

impl Entry {
    /// The bytes that are the leaf.
    pub fn to_bytes(&self) -> Vec<u8> {
        // A struct of strings and numbers always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Read an entry back from its bytes.
    pub fn parse(bytes: &[u8]) -> Result<Entry, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("not a call log entry: {e}"))
    }
}

/// SHA-256 of an idempotency key, lowercase hex.
pub fn key_sha256(key: &str) -> String {
    to_hex(&Sha256::digest(key.as_bytes()))
}

/// Lowercase hex.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// A 32-byte hash from hex (either case).
pub fn hash_from_hex(s: &str) -> Option<Hash> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// What `POST /v1/calls` answers about the call's log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Receipt {
    /// The entry's exact bytes (the Merkle leaf), standard base64.
    pub entry_b64: String,
    pub leaf_index: u64,
}

/// `GET /v1/transparency/key`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PublicKey {
    /// The log's Ed25519 public key: the 32 raw bytes, standard base64.
    pub ed25519_public_key: String,
}

impl PublicKey {
    /// The key it names.
    pub fn key(&self) -> Result<VerifyingKey, String> {
        let raw = B64
            .decode(&self.ed25519_public_key)
            .map_err(|e| format!("the public key is not base64: {e}"))?;
        let raw: [u8; 32] = raw
            .try_into()
            .map_err(|_| "the public key is not 32 bytes".to_string())?;
        VerifyingKey::from_bytes(&raw).map_err(|e| format!("not an Ed25519 public key: {e}"))
    }
}

/// A signed tree head (`GET /v1/transparency/sth`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SignedHead {
    pub tree_size: u64,
    /// When it was signed, milliseconds since the epoch.
    pub timestamp_ms: u64,
    /// The Merkle root, lowercase hex.
    pub root_hash: String,
    /// Ed25519 over [`SignedHead::signed_bytes`], standard base64.
    pub signature: String,
}

impl SignedHead {
    /// Exactly the bytes a head signs.
    pub fn signed_bytes(tree_size: u64, timestamp_ms: u64, root_hex: &str) -> Vec<u8> {
        format!("{STH_VERSION}\n{tree_size}\n{timestamp_ms}\n{root_hex}").into_bytes()
    }

    fn sign(key: &SigningKey, tree_size: u64, timestamp_ms: u64, root: &Hash) -> SignedHead {
        let root_hash = to_hex(root);
        let sig = key.sign(&Self::signed_bytes(tree_size, timestamp_ms, &root_hash));
        SignedHead {
            tree_size,
            timestamp_ms,
            root_hash,
            signature: B64.encode(sig.to_bytes()),
        }
    }

    /// Check the signature under `key`; the root when it holds.
    pub fn verify(&self, key: &VerifyingKey) -> Result<Hash, String> {
        let root = hash_from_hex(&self.root_hash)
            .filter(|_| self.root_hash.bytes().all(|b| !b.is_ascii_uppercase()))
            .ok_or("the root hash is not 64 lowercase hex digits")?;
        let sig = B64
            .decode(&self.signature)
            .map_err(|e| format!("the signature is not base64: {e}"))?;
        let sig = ed25519_dalek::Signature::from_slice(&sig)
            .map_err(|e| format!("not an Ed25519 signature: {e}"))?;
        let msg = Self::signed_bytes(self.tree_size, self.timestamp_ms, &self.root_hash);
        key.verify_strict(&msg, &sig)
            .map_err(|_| "the tree head's signature does not verify".to_string())?;
        Ok(root)
    }
}

/// `GET /v1/transparency/proof`: RFC 9162 2.1.3.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InclusionProof {
    pub leaf_index: u64,
    pub tree_size: u64,
    /// Lowercase hex hashes, leaf side first.
    pub audit_path: Vec<String>,
}

/// `GET /v1/transparency/consistency`: RFC 9162 2.1.4.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConsistencyProof {
    pub first: u64,
    pub second: u64,
    /// Lowercase hex hashes.
    pub proof: Vec<String>,
}

/// `GET /v1/transparency/entries`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Entries {
    /// Each entry's exact bytes, standard base64, from `start`.
    pub entries: Vec<String>,
}

/// A proof or range the log cannot give.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf_index {leaf} is not below tree_size {size}")]
    LeafBeyondTree { leaf: u64, size: u64 },
    #[error("tree size {size} is beyond the log's current head ({head} entries)")]
    SizeBeyondHead { size: u64, head: u64 },
    #[error("{0}")]
    InvalidRange(String),
    /// A consistency proof asked from a larger tree to a smaller one: no
    /// such proof exists.
    #[error("no consistency proof from {first} entries to fewer ({second})")]
    NoProof { first: u64, second: u64 },
}

/// Which leaf each call got: runs of consecutive sequence numbers on
/// consecutive leaves (one run unless a commit failed or an older ledger's
/// numbers had gaps).
#[derive(Debug, Default)]
pub(crate) struct Leaves {
    /// (first sequence number, first leaf, length)
    runs: Vec<(u64, u64, u64)>,
}

impl Leaves {
    pub(crate) fn push(&mut self, seq: u64, leaf: u64) {
        if let Some((s, l, n)) = self.runs.last_mut() {
            if *s + *n == seq && *l + *n == leaf {
                *n += 1;
                return;
            }
        }
        self.runs.push((seq, leaf, 1));
    }

    fn leaf(&self, seq: u64) -> Option<u64> {
        let i = self.runs.partition_point(|r| r.0 <= seq);
        let (s, l, n) = *self.runs.get(i.checked_sub(1)?)?;
        (seq < s + n).then(|| l + (seq - s))
    }
}

/// The committed tree and which leaf each call got.
#[derive(Debug, Default)]
pub(crate) struct Committed {
    pub(crate) tree: Tree,
    pub(crate) leaves: Leaves,
}

/// An entry just written: its call, leaf, hash and bytes.
pub(crate) struct Entered {
    pub(crate) seq: u64,
    pub(crate) leaf: u64,
    pub(crate) hash: Hash,
    pub(crate) bytes: Vec<u8>,
}

impl Entered {
    pub(crate) fn receipt(&self) -> Receipt {
        Receipt {
            entry_b64: B64.encode(&self.bytes),
            leaf_index: self.leaf,
        }
    }
}

/// The log in memory: the tree of committed entries, the signing key, the
/// last head signed.
pub struct CallLog {
    tree: RwLock<Committed>,
    key: SigningKey,
    head: Mutex<Option<SignedHead>>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl CallLog {
    pub(crate) fn new(key: SigningKey, committed: Committed) -> CallLog {
        CallLog {
            tree: RwLock::new(committed),
            key,
            head: Mutex::new(None),
        }
    }

    fn committed(&self) -> std::sync::RwLockReadGuard<'_, Committed> {
        self.tree.read().unwrap_or_else(|e| e.into_inner())
    }

    fn tree(&self) -> impl std::ops::Deref<Target = Tree> + '_ {
        struct T<'a>(std::sync::RwLockReadGuard<'a, Committed>);
        impl std::ops::Deref for T<'_> {
            type Target = Tree;
            fn deref(&self) -> &Tree {
                &self.0.tree
            }
        }
        T(self.committed())
    }

    /// Committed entries.
    pub fn size(&self) -> u64 {
        self.tree().size()
    }

    /// The leaf of call `seq`, once its entry is committed.
    pub fn leaf_of(&self, seq: u64) -> Option<u64> {
        self.committed().leaves.leaf(seq)
    }

    /// Add committed entries (the writer thread, after its commit).
    pub(crate) fn append(&self, entered: &[Entered]) {
        let mut c = self.tree.write().unwrap_or_else(|e| e.into_inner());
        for e in entered {
            c.tree.push(e.hash);
            c.leaves.push(e.seq, e.leaf);
        }
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            ed25519_public_key: B64.encode(self.key.verifying_key().to_bytes()),
        }
    }

    /// A head over every committed entry: the last one signed if the tree
    /// has not grown since, else a new one (timestamps never go back).
    pub fn signed_head(&self) -> SignedHead {
        let (size, root) = {
            let t = self.tree();
            (t.size(), t.root(t.size()))
        };
        let mut last = self.head.lock().unwrap_or_else(|e| e.into_inner());
        match last.as_ref() {
            Some(h) if h.tree_size >= size => h.clone(),
            _ => {
                let at = now_ms().max(last.as_ref().map_or(0, |h| h.timestamp_ms));
                let h = SignedHead::sign(&self.key, size, at, &root);
                *last = Some(h.clone());
                h
            }
        }
    }

    /// The root of the tree of the first `size` entries.
    pub fn root(&self, size: u64) -> Result<Hash, ProofError> {
        let t = self.tree();
        check_size(size, t.size())?;
        Ok(t.root(size))
    }

    /// The audit path of `leaf` in the tree of `size` entries.
    pub fn inclusion(&self, leaf: u64, size: u64) -> Result<InclusionProof, ProofError> {
        let t = self.tree();
        check_size(size, t.size())?;
        if leaf >= size {
            return Err(ProofError::LeafBeyondTree { leaf, size });
        }
        Ok(InclusionProof {
            leaf_index: leaf,
            tree_size: size,
            audit_path: t
                .inclusion_path(leaf, size)
                .iter()
                .map(|h| to_hex(h))
                .collect(),
        })
    }

    /// The consistency proof between the trees of `first` and `second`
    /// entries (`1 <= first <= second`).
    pub fn consistency(&self, first: u64, second: u64) -> Result<ConsistencyProof, ProofError> {
        let t = self.tree();
        check_size(second, t.size())?;
        if first == 0 {
            return Err(ProofError::InvalidRange(
                "first must be at least 1 (a tree of 0 entries has no proof)".into(),
            ));
        }
        if first > second {
            return Err(ProofError::NoProof { first, second });
        }
        Ok(ConsistencyProof {
            first,
            second,
            proof: t
                .consistency_proof(first, second)
                .iter()
                .map(|h| to_hex(h))
                .collect(),
        })
    }
}

fn check_size(size: u64, head: u64) -> Result<(), ProofError> {
    if size > head {
        return Err(ProofError::SizeBeyondHead { size, head });
    }
    Ok(())
}

/// Write the entries of a batch's calls (in order, from leaf `first`) in
/// the batch's transaction; what to add to the log once it commits.
pub(crate) fn write_entries<'a>(
    w: &redb::WriteTransaction,
    first: u64,
    calls: impl Iterator<Item = (&'a CallEntry, &'a [(u64, String); 2], u64)>,
) -> Result<Vec<Entered>, LedgerError> {
    let mut entries = w.open_table(ENTRIES).map_err(db_err)?;
    let mut out = Vec::new();
    for (call, names, time_ms) in calls {
        let leaf = first + out.len() as u64;
        let bytes = entry_bytes(leaf, call, names, time_ms);
        entries.insert(leaf, bytes.as_slice()).map_err(db_err)?;
        out.push(Entered {
            seq: call.seq,
            leaf,
            hash: leaf_hash(&bytes),
            bytes,
        });
    }
    Ok(out)
}

/// The tree of the stored entries (leaf indices must run 0, 1, 2, ...),
/// leaf `i` being the call numbered `seqs[i]`.
pub(crate) fn load_tree(r: &redb::ReadTransaction, seqs: &[u64]) -> Result<Committed, LedgerError> {
    let mut c = Committed::default();
    for row in r
        .open_table(ENTRIES)
        .map_err(db_err)?
        .iter()
        .map_err(db_err)?
    {
        let (k, v) = row.map_err(db_err)?;
        let leaf = c.tree.size();
        let seq = seqs.get(leaf as usize).copied();
        let Some(seq) = seq.filter(|_| k.value() == leaf) else {
            return Err(LedgerError::Db(format!(
                "the call log does not match the calls: entry {} where {leaf} was due, of {} calls",
                k.value(),
                seqs.len()
            )));
        };
        c.tree.push(leaf_hash(v.value()));
        c.leaves.push(seq, leaf);
    }
    if c.tree.size() != seqs.len() as u64 {
        return Err(LedgerError::Db(format!(
            "the call log holds {} entries for {} calls",
            c.tree.size(),
            seqs.len()
        )));
    }
    Ok(c)
}

impl Ledger {
    /// The call log (tree, key, heads).
    pub fn call_log(&self) -> &CallLog {
        &self.inner.log
    }

    /// The receipt of call `seq`: its entry and leaf index, once committed
    /// (`None` before, or for no such call).
    pub fn receipt(&self, seq: u64) -> Result<Option<Receipt>, LedgerError> {
        let Some(leaf) = self.inner.log.leaf_of(seq) else {
            return Ok(None);
        };
        let r = self.inner.db.begin_read().map_err(db_err)?;
        let entries = r.open_table(ENTRIES).map_err(db_err)?;
        Ok(entries.get(leaf).map_err(db_err)?.map(|v| Receipt {
            entry_b64: B64.encode(v.value()),
            leaf_index: leaf,
        }))
    }

    /// Entries `start..end`, cut to the tree and to [`MAX_ENTRIES`] (a
    /// partial answer, as RFC 9162 6.1 allows: ask again from where it
    /// ends); none when `end <= start`; `LeafBeyondTree` when `start` is not
    /// in the tree.
    pub fn log_entries(&self, start: u64, end: u64) -> Result<Entries, LedgerError> {
        if end <= start {
            return Ok(Entries { entries: vec![] });
        }
        let size = self.inner.log.size();
        if start >= size {
            return Err(LedgerError::Proof(ProofError::LeafBeyondTree {
                leaf: start,
                size,
            }));
        }
        let end = end.min(size).min(start.saturating_add(MAX_ENTRIES));
        let r = self.inner.db.begin_read().map_err(db_err)?;
        let t = r.open_table(ENTRIES).map_err(db_err)?;
        let mut entries = Vec::with_capacity((end - start) as usize);
        for row in t.range(start..end).map_err(db_err)? {
            let (_, v) = row.map_err(db_err)?;
            entries.push(B64.encode(v.value()));
        }
        Ok(Entries { entries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_written_as_it_reads_back() {
        let call = CallEntry {
            seq: 9,
            model: hubsearch_core::ModelKey(1),
            builder: hubsearch_core::BuilderKey(2),
            amount_usd: 0.25,
            idempotency_key: Some("k".into()),
            origin: None,
            query: None,
        };
        let names = [(1, "acme/m".to_string()), (2, "acme".to_string())];
        let bytes = entry_bytes(3, &call, &names, 1234);
        let e = Entry::parse(&bytes).unwrap();
        assert_eq!(e.to_bytes(), bytes, "the same bytes both ways");
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            format!(
                r#"{{"leaf_index":3,"seq":9,"time_ms":1234,"model":"acme/m","builder":"acme","amount_usd":0.25,"key_sha256":"{}"}}"#,
                key_sha256("k")
            )
        );
        assert_eq!(to_hex(&[0, 0xab, 0x7f]), "00ab7f");
        assert_eq!(hash_from_hex(&to_hex(&[7; 32])), Some([7; 32]));
    }
}
