//! The page log's binary encodings (docs/ledger.md, Page log): random pages
//! round-trip exactly, truncated or random bytes never panic the decoder,
//! JSON rows written before the encoding still read, and a page's deltas
//! computed from its decoded log equal those from the original. The
//! compact page (version 3) against a dictionary that grows as a ledger's
//! does: read against the dictionary it was written with or any later one,
//! it is the page it was.

use std::collections::BTreeMap;

use std::collections::HashMap;

use hubsearch_core::{BuilderKey, ModelKey};
use hubsearch_ledger::codec::{on_grid, NoDictionary, COMPACT};
use hubsearch_ledger::state::{Ordinals, Refs};
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
                model: ModelKey(rng.gen()),
                builder: BuilderKey(builders[rng.gen_range(0..builders.len())]),
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
            model: format!("{}/{}", word(rng), word(rng)).into(),
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
        // What version 2 keeps: the ranked floats as f32.
        for c in &mut p.ranked {
            c.relevance = f64::from(c.relevance as f32);
            c.merit = f64::from(c.merit as f32);
            c.quantile = f64::from(c.quantile as f32);
        }
        let first = p.first_rank.saturating_sub(1);
        for (i, s) in p.shown.iter_mut().enumerate() {
            if let Some(c) = p.ranked.get(first + i) {
                s.relevance = c.relevance;
            }
        }
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

/// A dictionary of models and names as a ledger keeps it.
#[derive(Default)]
struct Dict {
    ordinals: Ordinals,
    names: HashMap<u64, String>,
}

impl Dict {
    fn refs(&self) -> Refs<'_> {
        Refs {
            ordinals: &self.ordinals,
            names: &self.names,
        }
    }

    /// What recording `p` adds: its models' ordinals, its shown names.
    fn learn(&mut self, p: &PageLog) {
        self.ordinals.assign(&p.ranked);
        let first = p.first_rank.saturating_sub(1);
        for (s, c) in p.shown.iter().zip(p.ranked.iter().skip(first)) {
            self.names
                .entry(c.model.0)
                .or_insert_with(|| s.model.to_string());
            self.names
                .entry(c.builder.0)
                .or_insert_with(|| s.builder.clone());
        }
    }
}

/// A random page whose models come from a pool of `pool` (so pages share
/// them, as a hub's do) and, half the time, whose shown items say what the
/// page implies (the exposures of its attention model, the propensities of
/// its logits, ranks from its first rank): the engine's pages.
fn pooled_page(rng: &mut StdRng, pool: &[(u64, u64, String, String)]) -> PageLog {
    let mut p = random_page(rng);
    for c in &mut p.ranked {
        let (m, b, _, _) = &pool[rng.gen_range(0..pool.len())];
        (c.model, c.builder) = (ModelKey(*m), BuilderKey(*b));
    }
    if rng.gen_bool(0.5) {
        p.quantize();
    }
    let first = p.first_rank.saturating_sub(1);
    if rng.gen_bool(0.5) && !p.ranked.is_empty() && p.first_rank > 0 {
        p.attention.get_or_insert(Attention::Log);
        let rel: Vec<f64> = p.shown.iter().map(|s| s.relevance).collect();
        let w = p.attention.unwrap().page(p.first_rank, &rel);
        let seq = hubsearch_rank::plackett_luce::sequential_probabilities(&p.logits);
        for (i, s) in p.shown.iter_mut().enumerate() {
            s.exposure = w[i];
            s.propensity = seq.get(first + i).copied();
        }
    }
    for (i, s) in p.shown.iter_mut().enumerate() {
        if let Some(c) = p.ranked.get(first + i) {
            if let Some((_, _, m, b)) = pool.iter().find(|e| e.0 == c.model.0) {
                if rng.gen_bool(0.9) {
                    (s.model, s.builder) = (m.clone().into(), b.clone());
                }
            }
        }
    }
    p
}

fn pool(rng: &mut StdRng, n: usize) -> Vec<(u64, u64, String, String)> {
    (0..n)
        .map(|i| {
            let b = rng.gen_range(0..n as u64 / 4 + 1);
            (
                rng.gen(),
                b.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                format!("builder-{b}/model-{i}"),
                format!("builder-{b}"),
            )
        })
        .collect()
}

#[test]
fn compact_pages_read_back_exactly_against_the_dictionary_then_or_later() {
    let mut rng = StdRng::seed_from_u64(5);
    let pool = pool(&mut rng, 400);
    let mut dict = Dict::default();
    let mut events = Vec::new();
    for _ in 0..1_500 {
        let p = pooled_page(&mut rng, &pool);
        // As a serving replica sends it: against the dictionary before the
        // page was recorded anywhere.
        let event = p.encode_compact(&dict.refs());
        assert_eq!(event[0], COMPACT);
        assert_eq!(PageLog::decode_with(&event, &dict.refs()).unwrap(), p);
        dict.learn(&p);
        // As the ledger stores it: against the dictionary after.
        let row = p.encode_compact(&dict.refs());
        assert!(row.len() <= event.len());
        assert_eq!(PageLog::decode_with(&row, &dict.refs()).unwrap(), p);
        events.push((p, event));
    }
    // Read long after, against the grown dictionary.
    for (p, event) in &events {
        assert_eq!(&PageLog::decode_with(event, &dict.refs()).unwrap(), p);
    }
    // Against a dictionary that lacks what it refers to: an error.
    let (_, late) = events.last().unwrap();
    let err = PageLog::decode_with(late, &NoDictionary).unwrap_err();
    assert!(
        err.to_string().contains("dictionary") || err.to_string().contains("name"),
        "{err}"
    );
    assert!(PageLog::decode(late).is_err());
}

#[test]
fn a_compact_page_on_the_grid_with_known_models_is_small() {
    let mut rng = StdRng::seed_from_u64(6);
    let pool = pool(&mut rng, 2_000);
    let mut dict = Dict::default();
    let (mut v2, mut v3, mut n) = (0usize, 0usize, 0usize);
    for i in 0..400 {
        let mut p = pooled_page(&mut rng, &pool);
        p.quantize();
        dict.learn(&p);
        if i >= 200 && p.ranked.len() >= 100 {
            v2 += p.encode().len();
            v3 += p.encode_compact(&dict.refs()).len();
            n += 1;
        }
    }
    eprintln!(
        "pages of 100-249 candidates: version 2 {} bytes, compact {} bytes",
        v2 / n,
        v3 / n
    );
    // Models as 2-byte ordinals, floats as 2-byte grid values: well under
    // half of version 2's (8-byte keys, 4-byte floats).
    assert!(v3 * 2 < v2, "{v3} vs {v2}");
}

#[test]
fn truncated_or_random_compact_bytes_never_panic() {
    let mut rng = StdRng::seed_from_u64(7);
    let pool = pool(&mut rng, 300);
    let mut dict = Dict::default();
    for _ in 0..300 {
        let p = pooled_page(&mut rng, &pool);
        dict.learn(&p);
        let bytes = p.encode_compact(&dict.refs());
        for cut in 0..bytes.len() {
            assert!(
                PageLog::decode_with(&bytes[..cut], &dict.refs()).is_err(),
                "cut at {cut}"
            );
        }
        let mut flipped = bytes.clone();
        for _ in 0..4 {
            let i = rng.gen_range(0..flipped.len());
            flipped[i] = rng.gen();
        }
        let _ = PageLog::decode_with(&flipped, &dict.refs());
    }
    for _ in 0..20_000 {
        let n = rng.gen_range(0..400);
        let mut bytes: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
        if !bytes.is_empty() {
            bytes[0] = COMPACT;
        }
        let _ = PageLog::decode_with(&bytes, &dict.refs());
        let _ = PageLog::time_of(&bytes);
    }
}

#[test]
fn the_grid_is_exact_in_f32_and_rounds_to_the_nearest_step() {
    let mut rng = StdRng::seed_from_u64(8);
    for _ in 0..10_000 {
        let x: f64 = rng.gen();
        let g = on_grid(x);
        assert_eq!(f64::from(g as f32), g);
        assert!((g - x).abs() <= 0.5 / 32768.0 + 1e-15);
        assert_eq!(on_grid(g), g);
    }
    for x in [-0.5, 1.5, f64::INFINITY] {
        assert_eq!(on_grid(x), x);
    }
    assert_eq!(on_grid(1.0), 1.0);
}
