//! The call log against RFC 9162 written out again here, recursively and
//! straight from the RFC's text (section 2.1.1 MTH, 2.1.3.1 PATH, 2.1.4.1
//! PROOF/SUBPROOF), sharing no code with the log: roots, audit paths and
//! consistency proofs for every tree size 1..=70 and every index; the
//! verifiers accept the reference's proofs and reject tampered ones; the
//! ledger's receipts, signed heads, reopening, and an older ledger's calls.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hubsearch_ledger::transparency::{
    verify_consistency, verify_inclusion, Entry, PublicKey, SignedHead, Tree,
};
use hubsearch_ledger::{test_call, Ledger};
use sha2::{Digest, Sha256};

type H = [u8; 32];

// ---- RFC 9162 section 2.1, written from the text ----------------------

fn sha(parts: &[&[u8]]) -> H {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// "the largest power of two smaller than n (i.e., k < n <= 2k)".
fn k_of(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// MTH(D[n]).
fn mth(d: &[Vec<u8>]) -> H {
    match d.len() {
        0 => sha(&[]),
        1 => sha(&[&[0u8], &d[0]]),
        n => {
            let k = k_of(n);
            sha(&[&[1u8], &mth(&d[..k]), &mth(&d[k..])])
        }
    }
}

/// PATH(m, D[n]).
fn path(m: usize, d: &[Vec<u8>]) -> Vec<H> {
    let n = d.len();
    if n == 1 {
        return vec![];
    }
    let k = k_of(n);
    if m < k {
        let mut p = path(m, &d[..k]);
        p.push(mth(&d[k..]));
        p
    } else {
        let mut p = path(m - k, &d[k..]);
        p.push(mth(&d[..k]));
        p
    }
}

/// SUBPROOF(m, D[n], b).
fn subproof(m: usize, d: &[Vec<u8>], b: bool) -> Vec<H> {
    let n = d.len();
    if m == n {
        return if b { vec![] } else { vec![mth(d)] };
    }
    let k = k_of(n);
    if m <= k {
        let mut p = subproof(m, &d[..k], b);
        p.push(mth(&d[k..]));
        p
    } else {
        let mut p = subproof(m - k, &d[k..], false);
        p.push(mth(&d[..k]));
        p
    }
}

/// PROOF(m, D[n]).
fn proof(m: usize, d: &[Vec<u8>]) -> Vec<H> {
    subproof(m, d, true)
}

// ---- the log against it ------------------------------------------------

fn data(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("entry {i} {}", "x".repeat(i % 7)).into_bytes())
        .collect()
}

fn tree_of(d: &[Vec<u8>]) -> Tree {
    let mut t = Tree::new();
    for e in d {
        t.push(sha(&[&[0u8], e]));
    }
    t
}

#[test]
fn roots_paths_and_proofs_equal_the_rfc_for_every_size_to_70() {
    let d = data(70);
    let t = tree_of(&d);
    assert_eq!(Tree::new().root(0), mth(&[]));
    for n in 1..=70 {
        let root = mth(&d[..n]);
        assert_eq!(t.root(n as u64), root, "root of {n}");
        for m in 0..n {
            let p = path(m, &d[..n]);
            assert_eq!(t.inclusion_path(m as u64, n as u64), p, "PATH({m}, D[{n}])");
            let leaf = sha(&[&[0u8], &d[m]]);
            assert!(verify_inclusion(m as u64, n as u64, &leaf, &p, &root));
            // Tampered: another leaf, index, size, or one bit of the path.
            let other = sha(&[&[0u8], b"forged"]);
            assert!(!verify_inclusion(m as u64, n as u64, &other, &p, &root));
            if n > 1 {
                let wrong = (m + 1) % n;
                assert!(!verify_inclusion(wrong as u64, n as u64, &leaf, &p, &root));
                let mut bad = p.clone();
                bad[0][5] ^= 1;
                assert!(!verify_inclusion(m as u64, n as u64, &leaf, &bad, &root));
            }
            // Nor against the next tree (a path is bound to its tree size).
            if n < 70 {
                let next = mth(&d[..n + 1]);
                assert!(!verify_inclusion(m as u64, n as u64 + 1, &leaf, &p, &next));
            }
        }
        for m in 1..=n {
            let p = proof(m, &d[..n]);
            assert_eq!(
                t.consistency_proof(m as u64, n as u64),
                p,
                "PROOF({m}, D[{n}])"
            );
            let first = mth(&d[..m]);
            assert!(
                verify_consistency(m as u64, n as u64, &first, &root, &p),
                "{m} -> {n}"
            );
            if m < n {
                let mut bad = p.clone();
                let last = bad.len() - 1;
                bad[last][0] ^= 0x80;
                assert!(!verify_consistency(m as u64, n as u64, &first, &root, &bad));
                let forged = sha(&[b"forged"]);
                assert!(!verify_consistency(m as u64, n as u64, &forged, &root, &p));
                assert!(!verify_consistency(m as u64, n as u64, &first, &forged, &p));
            }
        }
    }
}

/// The log's history, changed: `f` edits a copy of it.
fn tampered(d: &[Vec<u8>], f: impl FnOnce(&mut Vec<Vec<u8>>)) -> Vec<Vec<u8>> {
    let mut d = d.to_vec();
    f(&mut d);
    d
}

#[test]
fn a_flipped_byte_a_reordered_history_and_a_rewritten_entry_are_caught() {
    let d = data(40);
    let honest = tree_of(&d);
    let (old, new) = (25u64, 40u64);
    let old_root = honest.root(old);
    // One flipped byte in an entry: its inclusion fails against the head.
    let mut flipped = d[7].clone();
    flipped[3] ^= 1;
    let p = honest.inclusion_path(7, new);
    assert!(!verify_inclusion(
        7,
        new,
        &sha(&[&[0u8], &flipped]),
        &p,
        &honest.root(new)
    ));
    // A reordered history, or an old entry rewritten: the log's new tree
    // cannot be proven consistent with the head a monitor saved.
    let histories = [
        tampered(&d, |d| d.swap(3, 4)),
        tampered(&d, |d| d[10] = b"rewritten".to_vec()),
        tampered(&d, |d| {
            d.remove(0);
            d.push(b"pad".to_vec());
        }),
    ];
    for h in histories {
        let t = tree_of(&h);
        assert_ne!(t.root(new), honest.root(new));
        let p = t.consistency_proof(old, new);
        assert!(!verify_consistency(old, new, &old_root, &t.root(new), &p));
        // Nor with the reference's proof over the tampered history.
        let p = proof(old as usize, &h);
        assert!(!verify_consistency(old, new, &old_root, &mth(&h), &p));
    }
}

// ---- the ledger's log ----------------------------------------------------

fn verify_head(l: &Ledger) -> (SignedHead, H) {
    let head = l.call_log().signed_head();
    let key: PublicKey = l.call_log().public_key();
    let vk = key.key().unwrap();
    let root = head.verify(&vk).expect("the head's signature holds");
    // The exact bytes signed, checked with the raw signature.
    let msg = format!(
        "hubsearch-sth-v1\n{}\n{}\n{}",
        head.tree_size, head.timestamp_ms, head.root_hash
    );
    let sig = B64.decode(&head.signature).unwrap();
    let sig = ed25519_dalek::Signature::from_slice(&sig).unwrap();
    vk.verify_strict(msg.as_bytes(), &sig).unwrap();
    // A changed head does not verify.
    let mut forged = head.clone();
    forged.tree_size += 1;
    assert!(forged.verify(&vk).is_err());
    (head, root)
}

fn hex(h: &[u8]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn receipts_verify_and_a_reopened_ledger_keeps_root_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.redb");
    let mut entries = Vec::new();
    let (key, root) = {
        let l = Ledger::open(&path).unwrap();
        for i in 0..30 {
            let out = l
                .record_call(test_call(&format!("k{i}"), 1 + i % 3, 100))
                .unwrap();
            let r = l
                .receipt(out.seq)
                .unwrap()
                .expect("a receipt once acknowledged");
            assert_eq!(r.leaf_index, i);
            let bytes = B64.decode(&r.entry_b64).unwrap();
            let e = Entry::parse(&bytes).unwrap();
            assert_eq!(e.leaf_index, i);
            assert_eq!(e.key_sha256, Some(hex(&sha(&[format!("k{i}").as_bytes()]))));
            assert!(!String::from_utf8_lossy(&bytes).contains(&format!("\"k{i}\"")));
            entries.push(bytes);
            // Every acknowledged call is in the head signed after it.
            let (head, root) = verify_head(&l);
            assert_eq!(head.tree_size, i + 1);
            assert_eq!(root, mth(&entries));
        }
        let (head, root) = verify_head(&l);
        for (i, e) in entries.iter().enumerate() {
            let p = l.call_log().inclusion(i as u64, head.tree_size).unwrap();
            let p: Vec<H> = p.audit_path.iter().map(|h| hash(h)).collect();
            assert!(verify_inclusion(
                i as u64,
                30,
                &sha(&[&[0u8], e]),
                &p,
                &root
            ));
        }
        let got = l.log_entries(0, 30).unwrap().entries;
        assert_eq!(
            got,
            entries.iter().map(|e| B64.encode(e)).collect::<Vec<_>>()
        );
        // Past the tree: cut to it (RFC 9162 6.1's partial answer); an empty
        // range has no entries; a start outside the tree is refused.
        assert_eq!(l.log_entries(0, 31).unwrap().entries, got);
        assert_eq!(l.log_entries(28, u64::MAX).unwrap().entries, got[28..]);
        assert!(l.log_entries(5, 5).unwrap().entries.is_empty());
        assert!(l.log_entries(30, 31).is_err());
        assert!(l.call_log().consistency(5, 4).is_err());
        assert!(l.call_log().inclusion(30, 30).is_err());
        assert!(l.call_log().inclusion(0, 31).is_err());
        assert!(l.call_log().consistency(0, 30).is_err());
        assert!(l.call_log().consistency(3, 31).is_err());
        l.close().unwrap();
        (l.call_log().public_key(), root)
    };
    let l = Ledger::open(&path).unwrap();
    assert_eq!(l.call_log().public_key(), key, "the key file is kept");
    let (head, again) = verify_head(&l);
    assert_eq!((head.tree_size, again), (30, root));
    // A retry's receipt is the original's; a new call goes on at 30.
    let dup = l.record_call(test_call("k3", 1, 100)).unwrap();
    assert!(!dup.recorded);
    assert_eq!(l.receipt(dup.seq).unwrap().unwrap().leaf_index, 3);
    let out = l.record_call(test_call("new", 1, 100)).unwrap();
    assert_eq!(l.receipt(out.seq).unwrap().unwrap().leaf_index, 30);
    let (_, root31) = verify_head(&l);
    let p = l.call_log().consistency(30, 31).unwrap().proof;
    let p: Vec<H> = p.iter().map(|h| hash(h)).collect();
    assert!(verify_consistency(30, 31, &root, &root31, &p));
}

fn hash(h: &str) -> H {
    hubsearch_ledger::transparency::hash_from_hex(h).unwrap()
}

#[test]
fn concurrent_calls_get_distinct_leaves_all_in_the_head() {
    let l = Ledger::in_memory().unwrap();
    let receipts: Vec<_> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..8)
            .map(|t| {
                let l = &l;
                sc.spawn(move || {
                    (0..25)
                        .map(|i| {
                            let out = l.record_call(test_call(&format!("{t}-{i}"), 1, 2)).unwrap();
                            l.receipt(out.seq).unwrap().unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let mut leaves: Vec<u64> = receipts.iter().map(|r| r.leaf_index).collect();
    leaves.sort_unstable();
    assert_eq!(leaves, (0..200).collect::<Vec<_>>());
    let (head, root) = verify_head(&l);
    assert_eq!(head.tree_size, 200);
    let mut by_leaf = receipts.clone();
    by_leaf.sort_by_key(|r| r.leaf_index);
    let all: Vec<Vec<u8>> = by_leaf
        .iter()
        .map(|r| B64.decode(&r.entry_b64).unwrap())
        .collect();
    assert_eq!(mth(&all), root);
    // Ledger order: sequence numbers rise with leaf indices.
    let seqs: Vec<u64> = all.iter().map(|b| Entry::parse(b).unwrap().seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn an_older_ledgers_calls_are_entered_once_in_ledger_order() {
    use redb::TableDefinition;
    const CALLS: TableDefinition<u64, (u64, u64, f64, u64)> = TableDefinition::new("calls");
    const NAMES: TableDefinition<u64, &str> = TableDefinition::new("names");
    const IDEM: TableDefinition<&str, u64> = TableDefinition::new("call_idempotency");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.redb");
    {
        // A ledger as hubsearch wrote it before the call log.
        let db = redb::Database::create(&path).unwrap();
        let w = db.begin_write().unwrap();
        {
            let mut c = w.open_table(CALLS).unwrap();
            for seq in 0..5u64 {
                c.insert(seq, (7, 8, 0.25 * seq as f64, 1_700_000_000 + seq))
                    .unwrap();
            }
            let mut n = w.open_table(NAMES).unwrap();
            n.insert(7, "acme/m").unwrap();
            n.insert(8, "acme").unwrap();
            w.open_table(IDEM).unwrap().insert("old-key", 2).unwrap();
        }
        w.commit().unwrap();
    }
    let root = {
        let l = Ledger::open(&path).unwrap();
        let (head, root) = verify_head(&l);
        assert_eq!(head.tree_size, 5);
        let got = l.log_entries(0, 5).unwrap().entries;
        for (i, b) in got.iter().enumerate() {
            let e = Entry::parse(&B64.decode(b).unwrap()).unwrap();
            assert_eq!((e.leaf_index, e.seq), (i as u64, i as u64));
            assert_eq!((e.model.as_str(), e.builder.as_str()), ("acme/m", "acme"));
            assert_eq!(e.time_ms, (1_700_000_000 + i as u64) * 1000);
            assert_eq!(e.amount_usd, 0.25 * i as f64);
            let key = (i == 2).then(|| hex(&sha(&[b"old-key"])));
            assert_eq!(e.key_sha256, key);
        }
        l.close().unwrap();
        root
    };
    // Opened again: nothing entered twice.
    let l = Ledger::open(&path).unwrap();
    let (head, again) = verify_head(&l);
    assert_eq!((head.tree_size, again), (5, root));
    let out = l.record_call(test_call("after", 7, 8)).unwrap();
    assert_eq!(out.seq, 5);
    assert_eq!(l.receipt(5).unwrap().unwrap().leaf_index, 5);
}
