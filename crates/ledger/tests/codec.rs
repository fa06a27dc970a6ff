//! The page log's binary encoding (docs/ledger.md, Page log): random pages
//! round-trip exactly, truncated or random bytes never panic the decoder,
//! JSON rows written before the encoding still read, and a page's deltas
//! computed from its decoded log equal those from the original.

use std::collections::BTreeMap;

use hubsearch_ledger::{Book, CodecError, LoggedCandidate, PageLog, PageRecord, ShownLog};
use hubsearch_rank::Attention;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn word(rng: &mut StdRng) -> String {
    let n = rng.gen_range(0..12);
    (0..n)
        .map(|_| {
            if rng.gen_bool(0.1) {
                'é'
            } else {
                rng.gen_range(b'a'..=b'z') as char
            }
        })
        .collect()
}

/// A random page whose ranked floats are f32 values (what the encoding
/// keeps), every other field arbitrary.
fn random_page(rng: &mut StdRng) -> PageLog {
    let n = rng.gen_range(0..250);
    let builders: Vec<u64> = (0..rng.gen_range(1..40)).map(|_| rng.gen()).collect();
    let f32v = |rng: &mut StdRng| f64::from(rng.gen::<f32>());
    let ranked: Vec<LoggedCandidate> = (0..n)
        .map(|_| {
            let relevance = f32v(rng);
            LoggedCandidate {
                model: rng.gen(),
                builder: builders[rng.gen_range(0..builders.len())],
                relevance,
                merit: if rng.gen_bool(0.7) {
                    relevance
                } else {
                    f32v(rng)
                },
                calls: match rng.gen_range(0..3) {
                    0 => 0.0,
                    1 => rng.gen_range(0..10_000_000u64) as f64,
                    _ => rng.gen::<f64>() * 1e6,
                },
                quantile: f32v(rng),
            }
        })
        .collect();
    let first_rank = if n == 0 {
        rng.gen_range(0..3)
    } else {
        rng.gen_range(1..=n)
    };
    let shown_n = if n == 0 {
        rng.gen_range(0..5)
    } else {
        rng.gen_range(0..=(n - first_rank + 1).min(20))
    };
    let shown = (0..shown_n)
        .map(|i| ShownLog {
            model: format!("{}/{}", word(rng), word(rng)),
            builder: word(rng),
            rank: first_rank + i,
            exposure: rng.gen(),
            relevance: if n == 0 {
                rng.gen()
            } else {
                ranked[first_rank - 1 + i].relevance
            },
            score: rng.gen::<f64>() * 10.0 - 5.0,
            propensity: rng.gen_bool(0.5).then(|| rng.gen()),
        })
        .collect();
    let stochastic = rng.gen_bool(0.5);
    let mut params = BTreeMap::new();
    let policy = if stochastic {
        params.insert("temperature".to_string(), rng.gen_range(0.01..2.0));
        "stochastic".to_string()
    } else {
        for _ in 0..rng.gen_range(0..3) {
            params.insert(word(rng), rng.gen());
        }
        ["relevance", "fair", "popularity", "mine"][rng.gen_range(0..4)].to_string()
    };
    let logits = match rng.gen_range(0..3) {
        0 => Vec::new(),
        1 => hubsearch_ledger::codec::derived_logits(&ranked, &params, &policy),
        _ => (0..rng.gen_range(0..30)).map(|_| rng.gen()).collect(),
    };
    PageLog {
        page: rng.gen(),
        time: rng.gen_range(0..u64::MAX),
        query: word(rng),
        mode: ["text", "vector", "hybrid", "listing", "other"][rng.gen_range(0..5)].into(),
        policy,
        params,
        group: ["model", "builder", "org"][rng.gen_range(0..3)].into(),
        seed: rng.gen(),
        candidates: rng.gen_range(0..1000),
        shown,
        logits,
        first_rank,
        book: if rng.gen() {
            Book::Search
        } else {
            Book::Listing
        },
        attention: match rng.gen_range(0..5) {
            0 => None,
            1 => Some(Attention::Log),
            2 => Some(Attention::Trec),
            3 => Some(Attention::Rbp { gamma: rng.gen() }),
            _ => Some(Attention::Cascade { click: rng.gen() }),
        },
        ranked,
    }
}

#[test]
fn random_pages_round_trip_exactly() {
    let mut rng = StdRng::seed_from_u64(1);
    for _ in 0..2_000 {
        let p = random_page(&mut rng);
        let bytes = p.encode();
        assert_eq!(bytes[0], hubsearch_ledger::codec::VERSION);
        let back = PageLog::decode(&bytes).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.encode(), bytes);
    }
}

#[test]
fn any_page_decodes_to_its_quantized_self() {
    let mut rng = StdRng::seed_from_u64(2);
    for _ in 0..500 {
        let mut p = random_page(&mut rng);
        for c in &mut p.ranked {
            c.relevance = rng.gen();
            c.merit = rng.gen();
            c.quantile = rng.gen();
        }
        let back = PageLog::decode(&p.encode()).unwrap();
        p.quantize();
        // Explicit logits are kept as they are; derived ones are re-derived.
        assert_eq!(back.ranked, p.ranked);
        assert_eq!(back.shown, p.shown);
        for (a, b) in back.ranked.iter().zip(&p.ranked) {
            assert!((a.relevance - b.relevance).abs() <= 1e-7);
        }
    }
}

#[test]
fn truncated_or_random_bytes_never_panic() {
    let mut rng = StdRng::seed_from_u64(3);
    for _ in 0..300 {
        let bytes = random_page(&mut rng).encode();
        for cut in 0..bytes.len() {
            assert!(PageLog::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        // Flipped bytes: an error or some page, never a panic.
        let mut flipped = bytes.clone();
        for _ in 0..4 {
            let i = rng.gen_range(0..flipped.len());
            flipped[i] = rng.gen();
        }
        let _ = PageLog::decode(&flipped);
    }
    for _ in 0..20_000 {
        let n = rng.gen_range(0..400);
        let mut bytes: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
        if !bytes.is_empty() && rng.gen_bool(0.5) {
            bytes[0] = hubsearch_ledger::codec::VERSION;
        }
        let _ = PageLog::decode(&bytes);
    }
    assert_eq!(PageLog::decode(&[]), Err(CodecError::Truncated(0)));
    assert!(matches!(PageLog::decode(&[9]), Err(CodecError::Version(9))));
}

#[test]
fn json_rows_written_before_the_encoding_still_read() {
    let old = r#"{"page":3,"time":10,"query":"bert","mode":"hybrid","policy":"stochastic","params":{"temperature":0.1},"group":"model","seed":7,"candidates":3,"shown":[{"model":"a/x","builder":"a","rank":1,"exposure":1.0,"relevance":0.5,"score":2.5,"propensity":0.25}],"logits":[5.0,1.0,0.5]}"#;
    let p = PageLog::decode(old.as_bytes()).unwrap();
    assert_eq!((p.page, p.seed, p.first_rank), (3, 7, 0));
    assert_eq!(p.logits, vec![5.0, 1.0, 0.5]);
    assert!(p.ranked.is_empty());
    assert_eq!(p.shown[0].propensity, Some(0.25));
}

#[test]
fn deltas_from_a_decoded_log_equal_the_original() {
    let mut rng = StdRng::seed_from_u64(4);
    for _ in 0..200 {
        let mut p = random_page(&mut rng);
        if p.ranked.is_empty() || p.first_rank == 0 {
            continue;
        }
        p.attention.get_or_insert(Attention::Log);
        let back = PageLog::decode(&p.encode()).unwrap();
        let a = PageRecord::of_log(p).unwrap();
        let b = PageRecord::of_log(back).unwrap();
        assert_eq!(a.model_delta, b.model_delta);
        assert_eq!(a.builder_delta, b.builder_delta);
        assert_eq!(a.names, b.names);
        // Bit for bit: replicas that decode the same bytes agree exactly.
        for (k, d) in &a.model_delta {
            assert_eq!(d.merit.to_bits(), b.model_delta[k].merit.to_bits());
        }
    }
}
