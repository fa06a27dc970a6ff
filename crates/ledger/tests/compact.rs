//! Compact page rows and events (docs/ledger.md, Page log): a ledger stores
//! every page as a compact row against its dictionary of models, and reads
//! each back as it was logged, across a restart; replicas that apply the
//! same pages as compact events, encoded by whichever replica served them
//! against the dictionary it held then (behind the log), book and store
//! exactly what a replica applying the self-contained version 2 logs does.

use std::collections::BTreeMap;

use hubsearch_core::{BuilderKey, Group, Impact, ModelKey};
use hubsearch_ledger::{Book, Ledger, LoggedCandidate, PageLog, PageRecord, ShownLog};
use hubsearch_rank::Attention;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const POOL: u64 = 80;

fn model(k: u64) -> u64 {
    (k + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn builder(k: u64) -> u64 {
    (k % 13 + 1).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
}

/// A page of 30 candidates drawn from a pool of 80 models, 6 shown from a
/// random first rank, the way the engine logs it (on the grid).
fn page(rng: &mut StdRng, i: u64) -> PageLog {
    let mut keys: Vec<u64> = (0..POOL).collect();
    let ranked: Vec<LoggedCandidate> = (0..30)
        .map(|_| {
            let k = keys.swap_remove(rng.gen_range(0..keys.len()));
            LoggedCandidate {
                model: ModelKey(model(k)),
                builder: BuilderKey(builder(k)),
                relevance: rng.gen(),
                merit: if rng.gen_bool(0.3) { 0.0 } else { rng.gen() },
                calls: rng.gen_range(0..100_000u64) as f64,
                quantile: rng.gen(),
            }
        })
        .collect();
    let first_rank = rng.gen_range(1..=20);
    let stochastic = rng.gen_bool(0.5);
    let mut params = BTreeMap::new();
    if stochastic {
        params.insert("temperature".to_string(), 0.1);
    }
    let mut p = PageLog {
        page: 0,
        time: 0,
        query: format!("query {i}"),
        mode: "hybrid".into(),
        policy: if stochastic { "stochastic" } else { "fair" }.into(),
        params,
        group: "model".into(),
        seed: rng.gen(),
        candidates: ranked.len(),
        shown: Vec::new(),
        logits: Vec::new(),
        first_rank,
        book: if i.is_multiple_of(7) {
            Book::Listing
        } else {
            Book::Search
        },
        attention: Some(Attention::Log),
        ranked,
    };
    p.quantize();
    p.logits = hubsearch_ledger::codec::derived_logits(&p.ranked, &p.params, &p.policy);
    let seq = hubsearch_rank::plackett_luce::sequential_probabilities(&p.logits);
    p.shown = (0..6)
        .map(|j| {
            let c = p.ranked[first_rank - 1 + j];
            let k = (0..POOL).find(|k| model(*k) == c.model.0).unwrap();
            ShownLog {
                model: format!("builder-{}/model-{k}", k % 13).into(),
                builder: format!("builder-{}", k % 13),
                rank: first_rank + j,
                exposure: 0.0,
                relevance: c.relevance,
                score: f64::from(rng.gen::<f32>()),
                propensity: seq.get(first_rank - 1 + j).copied(),
            }
        })
        .collect();
    p
}

/// What the ledger holds of a page it booked: its log with the exposures
/// filled in, under the page number and time it was given.
fn booked(p: &PageLog, page: u64, time: u64) -> PageLog {
    let mut p = p.clone();
    p.page = page;
    p.time = time;
    *PageRecord::of_log(p).unwrap().log.unwrap()
}

fn stored(l: &Ledger) -> Vec<PageLog> {
    let mut v = Vec::new();
    l.each_logged(|p| v.push(p), |_| {}).unwrap();
    v
}

fn books(l: &Ledger) -> Vec<[u64; 6]> {
    let keys: Vec<u64> = (0..POOL).map(model).collect();
    let bs: Vec<u64> = (0..POOL).map(builder).collect();
    let m = l.book_of(Group::Model, Impact::Calls, keys.clone());
    let b = l.book_of(Group::Builder, Impact::Calls, bs.clone());
    keys.iter()
        .zip(&bs)
        .map(|(k, bk)| {
            let (a, c) = (m.get(*k), b.get(*bk));
            [
                a.exposure.to_bits(),
                a.merit.to_bits(),
                a.rounds,
                c.exposure.to_bits(),
                c.merit.to_bits(),
                c.rounds,
            ]
        })
        .collect()
}

#[test]
fn recorded_pages_read_back_as_logged_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.redb");
    let mut rng = StdRng::seed_from_u64(1);
    let pages: Vec<PageLog> = (0..300).map(|i| page(&mut rng, i)).collect();
    let l = Ledger::open(&path).unwrap();
    for p in &pages {
        l.record_log(p.clone()).unwrap();
    }
    let back = stored(&l);
    assert_eq!(back.len(), pages.len());
    for (i, (p, b)) in pages.iter().zip(&back).enumerate() {
        assert_eq!(b, &booked(p, i as u64, b.time), "page {i}");
    }
    let (rows, bytes) = l.page_log_bytes().unwrap();
    let v2: usize = back.iter().map(|p| p.encode().len()).sum();
    eprintln!(
        "{rows} rows: {} bytes a row as stored, {} in version 2",
        bytes / rows,
        v2 as u64 / rows
    );
    assert!(bytes * 2 < v2 as u64, "{bytes} stored vs {v2} in version 2");
    let before = books(&l);
    l.close().unwrap();
    drop(l);
    let l = Ledger::open(&path).unwrap();
    assert_eq!(stored(&l), back);
    assert_eq!(books(&l), before);
    // Pages recorded after the restart refer to the dictionary it loaded.
    let more: Vec<PageLog> = (300..340).map(|i| page(&mut rng, i)).collect();
    for p in &more {
        l.record_log(p.clone()).unwrap();
    }
    let all = stored(&l);
    for (i, p) in more.iter().enumerate() {
        let b = &all[300 + i];
        assert_eq!(b, &booked(p, 300 + i as u64, b.time));
    }
}

#[test]
fn replicas_applying_compact_events_agree_with_the_self_contained_path() {
    let mut rng = StdRng::seed_from_u64(2);
    let (a, b) = (Ledger::in_memory().unwrap(), Ledger::in_memory().unwrap());
    let reference = Ledger::in_memory().unwrap();
    let mut position = 0u64;
    for round in 0..60u64 {
        // Replicas serve pages before the log delivers the ones before:
        // each event is encoded against the dictionary its replica held.
        let served: Vec<(PageLog, Vec<u8>)> = (0..5)
            .map(|j| {
                let p = page(&mut rng, round * 5 + j);
                let by = if rng.gen() { &a } else { &b };
                let bytes = by.encode_compact(&p);
                (p, bytes)
            })
            .collect();
        for (p, bytes) in served {
            position += 1;
            let (id, time) = (1_000 + position, 1_700_000_000 + position);
            assert!(a
                .apply_compact_log(&bytes, id, time / 3600, time, position)
                .unwrap());
            assert!(b
                .apply_compact_log(&bytes, id, time / 3600, time, position)
                .unwrap());
            // Applied again (redelivered): nothing.
            assert!(!a
                .apply_compact_log(&bytes, id, time / 3600, time, position)
                .unwrap());
            assert!(reference
                .apply_logged_log(p, id, time / 3600, time, position)
                .unwrap());
        }
    }
    assert_eq!(books(&a), books(&reference));
    assert_eq!(books(&b), books(&reference));
    let (sa, sr) = (stored(&a), stored(&reference));
    assert_eq!(sa.len(), 300);
    assert_eq!(sa, sr);
    assert_eq!(stored(&b), sr);
    // Bytes a page in the log, compact against a replica's dictionary.
    let p = page(&mut rng, 999);
    let (compact, v2) = (a.encode_compact(&p).len(), p.encode().len());
    eprintln!("a page of 30 candidates: compact {compact} bytes, version 2 {v2} bytes");
    assert!(compact * 2 < v2);
}

#[test]
fn an_event_that_refers_to_what_this_replica_lacks_stops_it_where_it_was() {
    let mut rng = StdRng::seed_from_u64(3);
    let (a, b) = (Ledger::in_memory().unwrap(), Ledger::in_memory().unwrap());
    let first = page(&mut rng, 0);
    assert!(a
        .apply_compact_log(&a.encode_compact(&first), 1, 0, 0, 1)
        .unwrap());
    // Encoded by `a`, which knows the first page's models; `b` never
    // applied that page (a gap no log delivers, made here on purpose).
    let second = page(&mut rng, 1);
    let bytes = a.encode_compact(&second);
    let err = b.apply_compact_log(&bytes, 2, 0, 0, 2).unwrap_err();
    assert!(err.to_string().contains("dictionary"), "{err}");
    assert_eq!(b.position(), 0);
}
