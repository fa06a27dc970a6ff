//! Dynamic pruning is exact (docs/retrieval.md, Dynamic pruning): the
//! top-k text search with MaxScore returns the same cards with the same
//! scores, bit for bit and in the same order, as scoring every match.
//!
//! On a generated hub with random queries, filters and page sizes; and,
//! ignored by default, on the real corpus in `../shared` with the judged
//! dev queries (run by `.ci/run` with `--include-ignored`; missing data
//! fails, never skips).

use std::io::BufRead;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hubsearch_core::{FacetFilter, Filter, ModelCard, Range};
use hubsearch_index::{TextIndex, TextResults};

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// An index in `0..n`, small ones far more often (roughly Zipf).
    fn skewed(&mut self, n: usize) -> usize {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((n as f64).powf(u) as usize).saturating_sub(1).min(n - 1)
    }

    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.below(v.len())]
    }
}

const TASKS: &[&str] = &[
    "text-classification",
    "translation",
    "automatic-speech-recognition",
    "question-answering",
    "fill-mask",
    "summarization",
    "image-classification",
    "token-classification",
];
const LANGS: &[&str] = &["en", "de", "fr", "es", "zh", "fi", "tr", "ru"];
const LICENSES: &[&str] = &["mit", "apache-2.0", "cc-by-4.0", "other"];
const LIBRARIES: &[&str] = &["transformers", "pytorch", "keras", "onnx"];

/// A vocabulary of made-up words, the first ones common.
fn vocabulary() -> Vec<String> {
    let syllables = ["ka", "lo", "ri", "ne", "tu", "sa", "mi", "do", "ve", "bra"];
    let mut words = vec![
        "bert",
        "base",
        "large",
        "small",
        "model",
        "speech",
        "german",
        "english",
        "sentiment",
        "tweets",
        "finetuned",
        "squad",
        "news",
        "legal",
        "medical",
        "opus",
        "mt",
        "wav2vec2",
        "roberta",
        "distil",
        "multilingual",
        "french",
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    for a in syllables {
        for b in syllables {
            for c in ["", "n", "x"] {
                words.push(format!("{a}{b}{c}"));
            }
        }
    }
    words
}

/// A card with words drawn from `vocab` (skewed towards its start).
fn card(rng: &mut Rng, vocab: &[String], i: usize) -> ModelCard {
    let words = |n: usize, rng: &mut Rng| -> Vec<String> {
        (0..n)
            .map(|_| vocab[rng.skewed(vocab.len())].clone())
            .collect()
    };
    let builder = format!("b{}", rng.skewed(200));
    let name = format!("{}-{i}", words(1 + rng.below(4), rng).join("-"));
    let langs = (0..rng.below(3))
        .map(|_| rng.pick(LANGS).to_string())
        .collect();
    ModelCard {
        id: format!("{builder}/{name}"),
        name,
        builder,
        task: (rng.below(5) > 0).then(|| rng.pick(TASKS).to_string()),
        library: Some(rng.pick(LIBRARIES).to_string()),
        tags: words(rng.below(4), rng),
        languages: langs,
        datasets: words(rng.below(2), rng),
        license: Some(rng.pick(LICENSES).to_string()),
        description: words(rng.below(30), rng).join(" "),
        card_text: words(rng.below(120), rng).join(" "),
        downloads: rng.skewed(1_000_000) as u64,
        likes: rng.skewed(1000) as u64,
        ..Default::default()
    }
}

/// A generated hub of `n` cards in several segments, some deleted or
/// replaced.
fn generated_hub(n: usize, seed: u64) -> TextIndex {
    let mut rng = Rng(seed);
    let vocab = vocabulary();
    let idx = TextIndex::in_ram().unwrap();
    let segments = 4;
    for s in 0..segments {
        let mut w = idx.writer(64, 1).unwrap();
        for i in (s * n / segments)..((s + 1) * n / segments) {
            w.upsert(&card(&mut rng, &vocab, i)).unwrap();
        }
        w.commit().unwrap();
    }
    // Deletes and replacements leave deleted documents in the segments.
    let mut w = idx.writer(64, 1).unwrap();
    let mut again = Rng(seed ^ 0x5eed);
    for i in 0..n / 20 {
        let c = card(&mut again, &vocab, i);
        if i % 2 == 0 {
            w.delete(&c.id);
        } else {
            w.upsert(&c).unwrap();
        }
    }
    w.commit().unwrap();
    idx.reload().unwrap();
    idx
}

/// A random query: common and rare words, language names, a word no card
/// has, a misspelling, an id written with dashes, the last word being
/// typed or not.
fn random_query(rng: &mut Rng, vocab: &[String]) -> String {
    let n = 1 + rng.below(5);
    let mut words: Vec<String> = Vec::new();
    for _ in 0..n {
        let w = vocab[rng.skewed(vocab.len())].clone();
        words.push(match rng.below(12) {
            0 => "zzqx".to_string(),
            1 if w.len() > 4 => format!("{}{}", &w[1..2], &w[..1]) + &w[2..],
            2 => w[..w.len().min(2)].to_string(),
            3 => rng
                .pick(&["german", "french", "english", "turkish"])
                .to_string(),
            _ => w,
        });
    }
    let sep = if rng.below(3) == 0 { "-" } else { " " };
    let mut q = words.join(sep);
    if rng.below(4) == 0 {
        q.push(' ');
    }
    q
}

fn random_filter(rng: &mut Rng) -> Filter {
    let mut f = Filter::default();
    match rng.below(8) {
        0 => f.task = FacetFilter::is(rng.pick(TASKS)),
        1 => f.language = FacetFilter::is(rng.pick(LANGS)),
        2 => f.license.not = vec![rng.pick(LICENSES).to_string()],
        3 => {
            f.downloads = Range {
                min: Some(rng.skewed(1_000_000) as u64),
                max: None,
            }
        }
        4 => {
            f.task = FacetFilter::is(rng.pick(TASKS));
            f.license = FacetFilter::is(rng.pick(LICENSES));
        }
        _ => {}
    }
    f
}

/// Both ways of searching, pruned first.
fn both(
    idx: &mut TextIndex,
    q: &str,
    filter: &Filter,
    k: usize,
    facets: bool,
) -> (TextResults, TextResults, Duration, Duration) {
    let s = idx.searcher();
    let words = idx.words(q);
    idx.set_pruning(true);
    let t = Instant::now();
    let pruned = idx.search(&s, &words, filter, k, facets).unwrap();
    let pruned_time = t.elapsed();
    idx.set_pruning(false);
    let t = Instant::now();
    let exhaustive = idx.search(&s, &words, filter, k, facets).unwrap();
    let exhaustive_time = t.elapsed();
    idx.set_pruning(true);
    (pruned, exhaustive, pruned_time, exhaustive_time)
}

/// The pruned answer is the exhaustive one: the same cards in the same
/// order with bit-equal scores, the same count and facets.
fn assert_same(pruned: &TextResults, exhaustive: &TextResults, what: &str) {
    let key = |r: &TextResults| {
        r.hits
            .iter()
            .map(|h| (h.addr, h.score.to_bits()))
            .collect::<Vec<_>>()
    };
    assert_eq!(key(pruned), key(exhaustive), "{what}");
    assert_eq!(pruned.total, exhaustive.total, "{what}");
    assert_eq!(pruned.facets, exhaustive.facets, "{what}");
}

#[test]
fn pruned_top_k_is_exhaustive_top_k_on_a_generated_hub() {
    let mut idx = generated_hub(6000, 0x9e37_79b9_7f4a_7c15);
    let vocab = vocabulary();
    let mut rng = Rng(42);
    let ks = [1, 2, 3, 5, 10, 20, 50, 100, 200, 1000];
    let mut pruned_found = 0;
    for i in 0..400 {
        let q = random_query(&mut rng, &vocab);
        let filter = random_filter(&mut rng);
        let k = ks[rng.below(ks.len())];
        let facets = i % 5 == 0;
        let (p, e, _, _) = both(&mut idx, &q, &filter, k, facets);
        assert_same(&p, &e, &format!("{q:?} k={k} facets={facets} {filter:?}"));
        pruned_found += p.hits.len();
        // explain gives the score the hit has.
        let s = idx.searcher();
        let query = idx.query(&s, &idx.words(&q), &filter).unwrap();
        for h in p.hits.iter().take(3) {
            let e = query.explain(&s, h.addr).unwrap();
            assert_eq!(e.value().to_bits(), h.score.to_bits(), "{q:?}");
        }
    }
    assert!(
        pruned_found > 10_000,
        "the queries find cards: {pruned_found}"
    );
}

/// Equal scores: cards with the same text tie, and the earlier card wins
/// the tie whether or not the search prunes.
#[test]
fn ties_keep_the_earlier_card() {
    let vocab = vocabulary();
    let mut rng = Rng(7);
    let mut idx = TextIndex::in_ram().unwrap();
    let mut w = idx.writer(64, 1).unwrap();
    for i in 0..500 {
        let mut c = card(&mut rng, &vocab, i);
        // Many cards with the same words: equal scores at every k.
        if i % 3 == 0 {
            c.id = format!("same/card-{i}");
            c.name = format!("card-{i}");
            c.builder = "same".into();
            c.description = "kalo rine tuxa".into();
            c.card_text = String::new();
            c.tags = Vec::new();
            c.datasets = Vec::new();
        }
        w.upsert(&c).unwrap();
    }
    w.commit().unwrap();
    idx.reload().unwrap();
    for k in [1, 5, 17, 60, 200] {
        for q in ["kalo rine", "kalo rine tuxa", "rine same"] {
            let (p, e, _, _) = both(&mut idx, q, &Filter::default(), k, false);
            assert_same(&p, &e, &format!("{q:?} k={k}"));
        }
    }
}

/// `../shared` beside the project checkout; a missing file fails.
fn shared_file(rel: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared")
        .join(rel);
    assert!(
        p.exists(),
        "{} is missing: the real-corpus tests need ../shared beside the checkout",
        p.display()
    );
    p
}

/// The real corpus's cards in an index in memory.
fn real_corpus() -> TextIndex {
    let file = std::fs::File::open(shared_file("data/hf_models_2022.jsonl.gz")).unwrap();
    let reader = std::io::BufReader::new(flate2::read::GzDecoder::new(file));
    let idx = TextIndex::in_ram().unwrap();
    let mut w = idx.writer(256, 0).unwrap();
    let mut n = 0;
    for line in reader.lines() {
        let line = line.unwrap();
        if line.trim().is_empty() {
            continue;
        }
        w.upsert(&hubsearch_core::record::parse_json(&line).unwrap())
            .unwrap();
        n += 1;
    }
    w.commit().unwrap();
    idx.reload().unwrap();
    assert!(n > 20_000, "{n} cards");
    idx
}

/// The queries of a `qid<TAB>text` file.
fn queries(rel: &str) -> Vec<String> {
    let text = std::fs::read_to_string(shared_file(rel)).unwrap();
    let qs: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_once('\t').map(|(_, q)| q.to_string()))
        .collect();
    assert!(!qs.is_empty(), "{rel} holds no queries");
    qs
}

#[test]
#[ignore = "needs ../shared/data (run by .ci/run with --include-ignored)"]
fn pruned_top_k_is_exhaustive_top_k_on_the_real_corpus() {
    let mut idx = real_corpus();
    let mut rng = Rng(11);
    let mut all = Vec::new();
    for set in ["dev", "natural-dev"] {
        all.extend(queries(&format!("eval/{set}/queries.tsv")));
    }
    let ks = [1, 10, 20, 50, 200];
    // Per k: time pruned, time exhaustive (k = 20 filtered, 50 with facets).
    let mut times = [(Duration::ZERO, Duration::ZERO); 5];
    for q in &all {
        for (k, time) in ks.iter().copied().zip(times.iter_mut()) {
            for typing in [false, true] {
                // As typed (the last word may be a prefix) and as sent.
                let q = if typing { q.clone() } else { format!("{q} ") };
                let filter = if k == 20 {
                    random_filter(&mut rng)
                } else {
                    Filter::default()
                };
                let (p, e, tp, te) = both(&mut idx, &q, &filter, k, k == 50);
                assert_same(&p, &e, &format!("{q:?} k={k} {filter:?}"));
                time.0 += tp;
                time.1 += te;
            }
        }
    }
    let searches = (all.len() * 2) as f64;
    for (k, (tp, te)) in ks.iter().zip(times) {
        eprintln!(
            "k={k:<3} mean per search: pruned {:.3} ms, exhaustive {:.3} ms",
            tp.as_secs_f64() * 1e3 / searches,
            te.as_secs_f64() * 1e3 / searches
        );
    }
}
