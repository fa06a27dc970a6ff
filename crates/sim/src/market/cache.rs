//! The run cache (docs/study.md, The run cache): every finished run's
//! outcome on disk, keyed by everything that decides it, so a study that is
//! stopped and started again with the same arguments reads the runs it
//! finished instead of simulating them again (only the runs in flight are
//! lost), and a report is rendered again from the same outcomes.
//!
//! A run is decided by the simulation's code, its world and its spec. Its
//! key is the text of them all: the fingerprint of the code (`build.rs`:
//! the sim crate's sources but the report's and the design's, the one
//! `hubsearch-rank` file the figures use, the locked random-number crates),
//! the fingerprint of the base the worlds are sampled from (every model,
//! builder, task and query type with its candidates: the index and the
//! retrieval options), the world's seed, the options a run or its world
//! reads (every option but the design's: `DESIGN_ONLY`) and the
//! [`RunSpec`]. The file is named by the key's 128-bit FNV-1a hash and
//! holds the key itself, checked on reading, so two keys never share an
//! outcome. The outcome is stored exactly (f64 bits), all of it but the
//! per-model vectors (`#[serde(skip)]`: for tests, unused by the study),
//! which a cached outcome has empty. A file is written to a temporary name
//! and renamed into place: a killed study leaves whole files or none.
//!
//! The LP upper bound is cached the same way, keyed by every option (but
//! the thread count).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde_json::Value;

use super::figures::PeriodFigures;
use super::sim::{run, Day, Outcome, RunSpec};
use super::upper::{Bound, Frontier};
use super::world::{Base, World};
use super::StudyOptions;

/// The fingerprint of the code a run depends on (`build.rs`).
pub const SOURCE: &str = env!("HUBSEARCH_SIM_SOURCE");

/// The file format; a new one misses every older file.
const FORMAT: &str = "hubsearch-sim run cache 1";

/// Options that only shape the design (how many runs, which knobs, the
/// tuning and the grid) or the machine: no run or world reads them (a run's
/// seeds, visits, traffic and pilot are in its spec). Everything else is in
/// a run's key, a new option too until it is listed here.
pub const DESIGN_ONLY: &[&str] = &[
    "visits_per_day",
    "traffic",
    "pilot_days",
    "seeds",
    "sweep_seeds",
    "target_loss",
    "tune_seed_offset",
    "alphas",
    "betas",
    "fair_lambdas",
    "impact_lambdas",
    "temperatures",
    "grid_traffic",
    "grid_concentration",
    "grid_seeds",
    "grid_visits_per_day",
    "seed",
    "sensitivity_trajectories",
    "threads",
    "strategic_seeds",
    "strategic_reprice_days",
    "strategic_entry_seeking",
    "upper_visits",
    "upper_welfare_ratios",
    "upper_threshold_usd",
    "grid_markups",
    "grid_retune",
    "validation_tolerance",
];

/// FNV-1a, 128 bits.
#[derive(Debug, Clone)]
pub struct Fnv(u128);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0x6C62_272E_07BB_0142_62B8_2175_6295_C58D)
    }
}

impl Fnv {
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= b as u128;
            self.0 = self
                .0
                .wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013B);
        }
    }
    pub fn finish(&self) -> u128 {
        self.0
    }
}

/// The fingerprint of `base`: every field of every model, builder, task
/// and query type (with its candidates), in order.
pub fn base_fingerprint(base: &Base) -> String {
    let mut w = Writer::default();
    let Base {
        models,
        builders,
        tasks,
        types,
        models_without_task,
    } = base;
    w.len(models.len());
    for m in models {
        let super::world::Model {
            builder,
            task,
            key,
            downloads,
            params_m,
            params_known,
            price,
            entry_day,
        } = m;
        w.u64(*builder as u64);
        w.u64(*task as u64);
        w.u64(*key);
        w.f64(*downloads);
        w.f64(*params_m);
        w.u64(*params_known as u64);
        w.f64(*price);
        w.u64(*entry_day as u64);
    }
    w.len(builders.len());
    for b in builders {
        let super::world::Builder { tail, entrant } = b;
        w.u64(*tail as u64);
        w.u64(*entrant as u64);
    }
    w.len(tasks.len());
    for t in tasks {
        w.len(t.len());
        w.buf.extend_from_slice(t.as_bytes());
    }
    w.len(types.len());
    for t in types {
        let super::world::QueryType {
            text,
            kind,
            task,
            downloads,
            cands,
        } = t;
        w.len(text.len());
        w.buf.extend_from_slice(text.as_bytes());
        w.u64(*kind as u64);
        w.u64(*task as u64);
        w.f64(*downloads);
        w.len(cands.len());
        for c in cands {
            let super::world::Cand {
                model,
                relevance,
                grade,
            } = c;
            w.u64(*model as u64);
            w.f64(*relevance);
            w.u64(*grade as u64);
        }
    }
    w.len(*models_without_task);
    let mut h = Fnv::default();
    h.write(&w.buf);
    format!("{:032x}", h.finish())
}

/// `v` as JSON with every object's keys sorted (the same text whatever
/// order serde_json's maps keep).
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(xs) => {
            out.push('[');
            for (i, x) in xs.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// `x` as canonical JSON, without the object keys `drop`.
fn json_of(x: &impl Serialize, drop: &[&str]) -> String {
    let mut v = serde_json::to_value(x).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut v {
        for k in drop {
            map.remove(*k);
        }
    }
    let mut s = String::new();
    canonical(&v, &mut s);
    s
}

/// The options a run reads, as its key has them.
pub fn run_options(o: &StudyOptions) -> String {
    json_of(o, DESIGN_ONLY)
}

/// What the cache did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheCounts {
    /// Outcomes read instead of simulated.
    pub read: u64,
    /// Outcomes simulated and written.
    pub written: u64,
    /// Writes that failed (the run's outcome is still used).
    pub failed: u64,
}

/// A run cache in a directory.
#[derive(Debug)]
pub struct RunCache {
    dir: PathBuf,
    base: String,
    read: AtomicU64,
    written: AtomicU64,
    failed: AtomicU64,
    tmp: AtomicU64,
}

impl RunCache {
    /// The cache in `dir` (made if missing, with a `.gitignore` that
    /// ignores it) for worlds sampled from `base`. Temporary files older
    /// than an hour (a killed study's) are removed.
    pub fn open(dir: &Path, base: &Base) -> io::Result<RunCache> {
        for sub in ["runs", "upper"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        let ignore = dir.join(".gitignore");
        if !ignore.exists() {
            std::fs::write(&ignore, "*\n")?;
        }
        for sub in ["runs", "upper"] {
            for e in std::fs::read_dir(dir.join(sub))?.flatten() {
                let stale = e.file_name().to_string_lossy().ends_with(".tmp")
                    && e.metadata()
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age.as_secs() > 3600);
                if stale {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(RunCache {
            dir: dir.to_path_buf(),
            base: base_fingerprint(base),
            read: AtomicU64::new(0),
            written: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            tmp: AtomicU64::new(0),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The base's fingerprint.
    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn counts(&self) -> CacheCounts {
        CacheCounts {
            read: self.read.load(Ordering::Relaxed),
            written: self.written.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }

    /// The key of the run of `spec` on the world of `world_seed` under `o`.
    pub fn run_key(&self, o: &StudyOptions, world_seed: u64, spec: &RunSpec) -> String {
        format!(
            "{FORMAT}\nrun\nsource {SOURCE}\nbase {}\nworld_seed {world_seed}\noptions {}\nspec {}\n",
            self.base,
            run_options(o),
            json_of(spec, &[]),
        )
    }

    /// The key of the upper bound's frontier under `o` (every option).
    pub fn upper_key(&self, o: &StudyOptions, traffic: f64, threshold: f64) -> String {
        format!(
            "{FORMAT}\nupper\nsource {SOURCE}\nbase {}\noptions {}\ntraffic {}\nthreshold {}\n",
            self.base,
            json_of(o, &["threads"]),
            json_of(&traffic, &[]),
            json_of(&threshold, &[]),
        )
    }

    fn path(&self, sub: &str, key: &str) -> PathBuf {
        let mut h = Fnv::default();
        h.write(key.as_bytes());
        self.dir.join(sub).join(format!("{:032x}", h.finish()))
    }

    /// The payload stored under `key`, if a whole file with that key is there.
    fn get(&self, sub: &str, key: &str) -> Option<Vec<u8>> {
        let bytes = std::fs::read(self.path(sub, key)).ok()?;
        let mut r = Reader { buf: &bytes, at: 0 };
        let stored = r.bytes()?;
        if stored != key.as_bytes() {
            return None;
        }
        let payload = r.bytes()?;
        let sum = r.u64()?;
        let mut h = Fnv::default();
        h.write(payload);
        (r.at == bytes.len() && sum == h.finish() as u64).then(|| payload.to_vec())
    }

    /// Store `payload` under `key`: a temporary file, renamed into place.
    fn put(&self, sub: &str, key: &str, payload: &[u8]) -> io::Result<()> {
        let mut w = Writer::default();
        w.bytes(key.as_bytes());
        w.bytes(payload);
        let mut h = Fnv::default();
        h.write(payload);
        w.u64(h.finish() as u64);
        let path = self.path(sub, key);
        let tmp = path.with_extension(format!(
            "{}-{}.tmp",
            std::process::id(),
            self.tmp.fetch_add(1, Ordering::Relaxed)
        ));
        let written = std::fs::write(&tmp, &w.buf).and_then(|_| std::fs::rename(&tmp, &path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }

    /// The cached outcome of a run, if any.
    pub fn get_run(&self, o: &StudyOptions, world_seed: u64, spec: &RunSpec) -> Option<Outcome> {
        let payload = self.get("runs", &self.run_key(o, world_seed, spec))?;
        let out = decode_outcome(&payload)?;
        self.read.fetch_add(1, Ordering::Relaxed);
        Some(out)
    }

    /// Store a run's outcome.
    pub fn put_run(&self, o: &StudyOptions, world_seed: u64, spec: &RunSpec, out: &Outcome) {
        let key = self.run_key(o, world_seed, spec);
        match self.put("runs", &key, &encode_outcome(out)) {
            Ok(()) => self.written.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
    }

    /// The cached frontier, if any.
    pub fn get_upper(&self, o: &StudyOptions, traffic: f64, threshold: f64) -> Option<Frontier> {
        let payload = self.get("upper", &self.upper_key(o, traffic, threshold))?;
        decode(&payload)
    }

    /// Store a frontier.
    pub fn put_upper(&self, o: &StudyOptions, traffic: f64, threshold: f64, f: &Frontier) {
        let key = self.upper_key(o, traffic, threshold);
        if self.put("upper", &key, &encode(f)).is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The outcome of `spec` on the world of `world_seed` under `o`: from the
/// cache when it has it (true), else simulated (the world sampled from
/// `base`) and stored.
pub fn cached_run(
    cache: Option<&RunCache>,
    base: &Base,
    o: &StudyOptions,
    world_seed: u64,
    spec: &RunSpec,
) -> (Outcome, bool) {
    if let Some(out) = cache.and_then(|c| c.get_run(o, world_seed, spec)) {
        return (out, true);
    }
    let world = World::sample(base, o, world_seed);
    let out = run(&world, o, spec);
    if let Some(c) = cache {
        c.put_run(o, world_seed, spec, &out);
    }
    (out, false)
}

/// The frontier of the upper bound, from the cache when it has it.
pub fn cached_frontier(
    cache: Option<&RunCache>,
    world: &World,
    o: &StudyOptions,
    traffic: f64,
    threshold: f64,
) -> Frontier {
    if let Some(f) = cache.and_then(|c| c.get_upper(o, traffic, threshold)) {
        return f;
    }
    let f = super::upper::frontier(world, o, traffic, threshold);
    if let Some(c) = cache {
        c.put_upper(o, traffic, threshold, &f);
    }
    f
}

// --- The encoding: little-endian u64s and f64 bits, lengths before lists.

#[derive(Default)]
struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn u64(&mut self, x: u64) {
        self.buf.extend_from_slice(&x.to_le_bytes());
    }
    fn f64(&mut self, x: f64) {
        self.u64(x.to_bits());
    }
    fn len(&mut self, n: usize) {
        self.u64(n as u64);
    }
    fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.buf.extend_from_slice(b);
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.buf.get(self.at..end)?;
        self.at = end;
        Some(s)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn f64(&mut self) -> Option<f64> {
        self.u64().map(f64::from_bits)
    }
    fn usize(&mut self) -> Option<usize> {
        usize::try_from(self.u64()?).ok()
    }
    /// A list's length, no longer than the bytes left could hold.
    fn len(&mut self, min_item: usize) -> Option<usize> {
        let n = self.usize()?;
        (n.checked_mul(min_item)? <= self.buf.len() - self.at).then_some(n)
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.len(1)?;
        self.take(n)
    }
}

/// A value in the encoding, written and read back exactly.
trait Field: Sized {
    /// The fewest bytes it is written in (a list's length is checked
    /// against the bytes left).
    const MIN: usize;
    fn put(&self, w: &mut Writer);
    fn get(r: &mut Reader) -> Option<Self>;
}

impl Field for f64 {
    const MIN: usize = 8;
    fn put(&self, w: &mut Writer) {
        w.f64(*self);
    }
    fn get(r: &mut Reader) -> Option<f64> {
        r.f64()
    }
}

impl Field for u64 {
    const MIN: usize = 8;
    fn put(&self, w: &mut Writer) {
        w.u64(*self);
    }
    fn get(r: &mut Reader) -> Option<u64> {
        r.u64()
    }
}

impl Field for usize {
    const MIN: usize = 8;
    fn put(&self, w: &mut Writer) {
        w.len(*self);
    }
    fn get(r: &mut Reader) -> Option<usize> {
        r.usize()
    }
}

/// A list: its length, then its items.
impl<T: Field> Field for Vec<T> {
    const MIN: usize = 8;
    fn put(&self, w: &mut Writer) {
        w.len(self.len());
        for x in self {
            x.put(w);
        }
    }
    fn get(r: &mut Reader) -> Option<Vec<T>> {
        let n = r.len(T::MIN)?;
        (0..n).map(|_| T::get(r)).collect()
    }
}

impl<A: Field, B: Field> Field for (A, B) {
    const MIN: usize = A::MIN + B::MIN;
    fn put(&self, w: &mut Writer) {
        self.0.put(w);
        self.1.put(w);
    }
    fn get(r: &mut Reader) -> Option<(A, B)> {
        Some((A::get(r)?, B::get(r)?))
    }
}

/// [`Field`] for a struct of fields: those listed, in the encoding's
/// order, and none of those after `skip` (empty when read back). Every
/// field is named once for both directions, and a field added to the
/// struct fails to compile until it is listed here.
macro_rules! fields {
    ($t:ident { $($f:ident),* $(,)? } $(skip { $($s:ident),* $(,)? })?) => {
        impl Field for $t {
            const MIN: usize = 0 $(+ { let _ = stringify!($f); 8 })*;
            fn put(&self, w: &mut Writer) {
                let $t { $($f,)* $($($s: _,)*)? } = self;
                $(Field::put($f, w);)*
            }
            fn get(r: &mut Reader) -> Option<$t> {
                // A struct expression's fields are evaluated in the order
                // written: the listed order.
                Some($t { $($f: Field::get(r)?,)* $($($s: Default::default(),)*)? })
            }
        }
    };
}

fields!(PeriodFigures {
    day,
    ndcg10,
    ndcg10_listed,
    welfare,
    adoptions_per_visit,
    tail_viable,
    tail_covers_dedicated,
    tail_profit_p50,
    tail_profit_p90,
    tail_profit_p99,
    income_gini_all,
    income_gini_active,
    top1pct_income_share,
    top10pct_income_share,
    listed_share,
    dedicated_share,
    viable_active_share,
    median_markup,
    at_cap_share,
});

fields!(Day {
    viable_tail_share,
    viable_active_share,
    active_models,
    adoptions,
    calls,
});

fields!(Outcome {
    ndcg10,
    ndcg10_listed,
    welfare,
    adoptions_per_visit,
    tail_viable_share,
    median_tail_profit_month,
    income_gini_active,
    income_gini_all,
    top1pct_income_share,
    median_task_hhi,
    entrant_survival_90,
    median_days_to_first_call,
    entrants_called_share,
    tail_exposure_share,
    income_usd,
    calls,
    periods,
    days,
    entrant_survival,
    lorenz_income,
    visits,
    top1pct_model_call_share,
} skip {
    model_exposure,
    model_income,
    model_price,
    model_exit_day,
    builder_profit_days,
});

fields!(Bound {
    welfare_ratio,
    viable,
    viable_share,
});

fields!(Frontier {
    threshold_usd,
    traffic,
    visits,
    types,
    columns,
    tail_builders,
    relevance_share,
    max_welfare_ratio,
    points,
    seconds,
});

fn encode<T: Field>(x: &T) -> Vec<u8> {
    let mut w = Writer::default();
    x.put(&mut w);
    w.buf
}

/// The value of `bytes`, all of them.
fn decode<T: Field>(bytes: &[u8]) -> Option<T> {
    let mut r = Reader { buf: bytes, at: 0 };
    let x = T::get(&mut r)?;
    (r.at == bytes.len()).then_some(x)
}

/// An outcome's bytes: every field but the per-model vectors, exactly.
pub fn encode_outcome(o: &Outcome) -> Vec<u8> {
    encode(o)
}

/// The outcome of [`encode_outcome`]'s bytes (its per-model vectors empty).
pub fn decode_outcome(bytes: &[u8]) -> Option<Outcome> {
    decode(bytes)
}
