//! The call log as the API serves it (docs/transparency.md): the log's
//! public key, signed tree heads, inclusion and consistency proofs, and
//! entries. All of it is the ledger's ([`crate::ledger::transparency`]);
//! these are the engine's doors to it, for the server.

use crate::engine::Engine;
use crate::error::Result;
use crate::ledger::transparency::{
    ConsistencyProof, Entries, InclusionProof, PublicKey, SignedHead,
};

impl Engine {
    /// The call log's Ed25519 public key.
    pub fn log_key(&self) -> PublicKey {
        self.ledger().call_log().public_key()
    }

    /// A signed head over every committed entry (every call this replica
    /// acknowledged so far).
    pub fn log_head(&self) -> SignedHead {
        self.ledger().call_log().signed_head()
    }

    /// The audit path of entry `leaf` in the tree of `size` entries.
    pub fn log_inclusion(&self, leaf: u64, size: u64) -> Result<InclusionProof> {
        Ok(self
            .ledger()
            .call_log()
            .inclusion(leaf, size)
            .map_err(crate::ledger::LedgerError::from)?)
    }

    /// The consistency proof between the trees of `first` and `second`
    /// entries.
    pub fn log_consistency(&self, first: u64, second: u64) -> Result<ConsistencyProof> {
        Ok(self
            .ledger()
            .call_log()
            .consistency(first, second)
            .map_err(crate::ledger::LedgerError::from)?)
    }

    /// Entries `start..end` (end exclusive), cut to the tree and to 1,000.
    pub fn log_entries(&self, start: u64, end: u64) -> Result<Entries> {
        Ok(self.ledger().log_entries(start, end)?)
    }
}
