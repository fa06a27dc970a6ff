//! The Merkle tree of the call log, RFC 9162 section 2.1: leaf hash
//! SHA-256(0x00 || entry), node hash SHA-256(0x01 || left || right), a
//! tree of `n` leaves split at the largest power of two below `n`.
//!
//! [`Tree`] keeps the hash of every perfect subtree, by level and index
//! (level 0: the leaves), so appending is O(log n) (amortised O(1)), and
//! the hash of any subtree the RFC's recursion visits is either stored
//! (a perfect, aligned subtree) or the combination of O(log n) stored ones:
//! an audit path or a consistency proof costs O(log^2 n) hashing at most.
//! Memory: 64 bytes per leaf (the leaf hashes and the levels above them).
//!
//! The verifiers ([`verify_inclusion`], [`verify_consistency`]) follow
//! RFC 9162 sections 2.1.3.2 and 2.1.4.2 step by step.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The hash of a leaf: SHA-256(0x00 || entry bytes).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(entry);
    h.finalize().into()
}

/// The hash of an inner node: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly below `n` (n >= 2).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// The log's Merkle tree, kept incrementally.
#[derive(Debug, Default, Clone)]
pub struct Tree {
    /// `levels[l][i]`: the hash of the perfect subtree of leaves
    /// `i * 2^l .. (i + 1) * 2^l`.
    levels: Vec<Vec<Hash>>,
}

impl Tree {
    /// An empty tree.
    pub fn new() -> Tree {
        Tree::default()
    }

    /// Leaves in the tree.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Append a leaf (its leaf hash): O(log n).
    pub fn push(&mut self, leaf: Hash) {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels[0].push(leaf);
        let mut l = 0;
        while self.levels[l].len() & 1 == 0 {
            let n = self.levels[l].len();
            let up = node_hash(&self.levels[l][n - 2], &self.levels[l][n - 1]);
            if self.levels.len() == l + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[l + 1].push(up);
            l += 1;
        }
    }

    /// The root of the tree of its first `size` leaves (`size <= size()`).
    pub fn root(&self, size: u64) -> Hash {
        if size == 0 {
            return empty_root();
        }
        self.node(0, size)
    }

    /// MTH(D[a:b]) for a subtree the RFC's recursion visits (`a < b <=
    /// size()`; a perfect subtree must start at a multiple of its size).
    fn node(&self, a: u64, b: u64) -> Hash {
        let n = b - a;
        if n.is_power_of_two() && a & (n - 1) == 0 {
            let l = n.trailing_zeros() as usize;
            if let Some(h) = self.levels.get(l).and_then(|v| v.get((a >> l) as usize)) {
                return *h;
            }
        }
        // Not perfect (or not yet complete at this level): split.
        let k = split(n);
        node_hash(&self.node(a, a + k), &self.node(a + k, b))
    }

    /// The audit path of leaf `m` in the tree of the first `size` leaves
    /// (RFC 9162 2.1.3.1), leaf side first. `m < size <= size()`.
    pub fn inclusion_path(&self, m: u64, size: u64) -> Vec<Hash> {
        let mut path = Vec::new();
        self.path(m, 0, size, &mut path);
        path
    }

    fn path(&self, m: u64, a: u64, b: u64, out: &mut Vec<Hash>) {
        if b - a <= 1 {
            return;
        }
        let k = split(b - a);
        if m < a + k {
            self.path(m, a, a + k, out);
            out.push(self.node(a + k, b));
        } else {
            self.path(m, a + k, b, out);
            out.push(self.node(a, a + k));
        }
    }

    /// The consistency proof between the trees of the first `first` and
    /// `second` leaves (RFC 9162 2.1.4.1). `0 < first <= second <= size()`;
    /// empty when they are equal.
    pub fn consistency_proof(&self, first: u64, second: u64) -> Vec<Hash> {
        let mut proof = Vec::new();
        if first > 0 && first < second {
            self.subproof(first, 0, second, true, &mut proof);
        }
        proof
    }

    fn subproof(&self, m: u64, a: u64, b: u64, complete: bool, out: &mut Vec<Hash>) {
        if m == b {
            if !complete {
                out.push(self.node(a, b));
            }
            return;
        }
        let k = split(b - a);
        if m <= a + k {
            self.subproof(m, a, a + k, complete, out);
            out.push(self.node(a + k, b));
        } else {
            self.subproof(m, a + k, b, false, out);
            out.push(self.node(a, a + k));
        }
    }
}

/// RFC 9162 2.1.3.2: whether `path` proves the leaf hash `leaf` at index
/// `index` in the tree of `size` leaves whose root is `root`.
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, path: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && &r == root
}

/// RFC 9162 2.1.4.2: whether `proof` shows that the tree of `first` leaves
/// with root `first_root` is a prefix of the tree of `second` leaves with
/// root `second_root`. Equal sizes need equal roots and an empty proof; the
/// empty tree is a prefix of every tree.
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> bool {
    if first > second {
        return false;
    }
    if first == second {
        return proof.is_empty() && first_root == second_root;
    }
    if first == 0 {
        return proof.is_empty();
    }
    if proof.is_empty() {
        return false;
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let (mut fnode, mut snode) = (first - 1, second - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    &fr == first_root && &sr == second_root && snode == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_the_largest_power_of_two_below() {
        for (n, k) in [
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 4),
            (8, 4),
            (9, 8),
            (1 << 40, 1 << 39),
        ] {
            assert_eq!(split(n), k, "n = {n}");
        }
    }

    #[test]
    fn proofs_verify_for_small_trees() {
        let mut t = Tree::new();
        for i in 0..40u64 {
            t.push(leaf_hash(&i.to_le_bytes()));
        }
        for n in 1..=40 {
            let root = t.root(n);
            for m in 0..n {
                let leaf = leaf_hash(&m.to_le_bytes());
                assert!(verify_inclusion(
                    m,
                    n,
                    &leaf,
                    &t.inclusion_path(m, n),
                    &root
                ));
            }
            for m in 1..=n {
                let p = t.consistency_proof(m, n);
                assert!(verify_consistency(m, n, &t.root(m), &root, &p), "{m} {n}");
            }
        }
    }
}
