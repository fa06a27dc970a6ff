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
        decode_frontier(&payload)
    }

    /// Store a frontier.
    pub fn put_upper(&self, o: &StudyOptions, traffic: f64, threshold: f64, f: &Frontier) {
        let key = self.upper_key(o, traffic, threshold);
        if self.put("upper", &key, &encode_frontier(f)).is_err() {
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
    fn f64s(&mut self, xs: &[f64]) {
        self.len(xs.len());
        for &x in xs {
            self.f64(x);
        }
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
    fn f64s(&mut self) -> Option<Vec<f64>> {
        let n = self.len(8)?;
        (0..n).map(|_| self.f64()).collect()
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.len(1)?;
        self.take(n)
    }
}

fn encode_period(w: &mut Writer, p: &PeriodFigures) {
    let PeriodFigures {
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
    } = p;
    w.len(*day);
    for x in [ndcg10, ndcg10_listed, welfare, adoptions_per_visit] {
        w.f64(*x);
    }
    w.f64s(tail_viable);
    for x in [
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
    ] {
        w.f64(*x);
    }
}

fn decode_period(r: &mut Reader) -> Option<PeriodFigures> {
    Some(PeriodFigures {
        day: r.usize()?,
        ndcg10: r.f64()?,
        ndcg10_listed: r.f64()?,
        welfare: r.f64()?,
        adoptions_per_visit: r.f64()?,
        tail_viable: r.f64s()?,
        tail_covers_dedicated: r.f64()?,
        tail_profit_p50: r.f64()?,
        tail_profit_p90: r.f64()?,
        tail_profit_p99: r.f64()?,
        income_gini_all: r.f64()?,
        income_gini_active: r.f64()?,
        top1pct_income_share: r.f64()?,
        top10pct_income_share: r.f64()?,
        listed_share: r.f64()?,
        dedicated_share: r.f64()?,
        viable_active_share: r.f64()?,
        median_markup: r.f64()?,
        at_cap_share: r.f64()?,
    })
}

/// An outcome's bytes: every field but the per-model vectors, exactly.
pub fn encode_outcome(o: &Outcome) -> Vec<u8> {
    let mut w = Writer::default();
    let Outcome {
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
        model_exposure: _,
        model_income: _,
        model_price: _,
        top1pct_model_call_share,
        model_exit_day: _,
        builder_profit_days: _,
    } = o;
    for x in [
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
    ] {
        w.f64(*x);
    }
    w.len(periods.len());
    for p in periods {
        encode_period(&mut w, p);
    }
    w.len(days.len());
    for d in days {
        let Day {
            viable_tail_share,
            viable_active_share,
            active_models,
            adoptions,
            calls,
        } = d;
        w.f64(*viable_tail_share);
        w.f64(*viable_active_share);
        w.len(*active_models);
        w.u64(*adoptions);
        w.f64(*calls);
    }
    w.f64s(entrant_survival);
    w.len(lorenz_income.len());
    for (x, y) in lorenz_income {
        w.f64(*x);
        w.f64(*y);
    }
    w.u64(*visits);
    w.f64(*top1pct_model_call_share);
    w.buf
}

/// The outcome of [`encode_outcome`]'s bytes (its per-model vectors empty).
pub fn decode_outcome(bytes: &[u8]) -> Option<Outcome> {
    let mut r = Reader { buf: bytes, at: 0 };
    let r = &mut r;
    let mut f = [0.0; 16];
    for x in &mut f {
        *x = r.f64()?;
    }
    let n = r.len(8)?;
    let periods = (0..n)
        .map(|_| decode_period(r))
        .collect::<Option<Vec<_>>>()?;
    let n = r.len(40)?;
    let days = (0..n)
        .map(|_| {
            Some(Day {
                viable_tail_share: r.f64()?,
                viable_active_share: r.f64()?,
                active_models: r.usize()?,
                adoptions: r.u64()?,
                calls: r.f64()?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let entrant_survival = r.f64s()?;
    let n = r.len(16)?;
    let lorenz_income = (0..n)
        .map(|_| Some((r.f64()?, r.f64()?)))
        .collect::<Option<Vec<_>>>()?;
    let visits = r.u64()?;
    let top1pct_model_call_share = r.f64()?;
    if r.at != bytes.len() {
        return None;
    }
    let [ndcg10, ndcg10_listed, welfare, adoptions_per_visit, tail_viable_share, median_tail_profit_month, income_gini_active, income_gini_all, top1pct_income_share, median_task_hhi, entrant_survival_90, median_days_to_first_call, entrants_called_share, tail_exposure_share, income_usd, calls] =
        f;
    Some(Outcome {
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
        model_exposure: Vec::new(),
        model_income: Vec::new(),
        model_price: Vec::new(),
        top1pct_model_call_share,
        model_exit_day: Vec::new(),
        builder_profit_days: Vec::new(),
    })
}

fn encode_frontier(f: &Frontier) -> Vec<u8> {
    let mut w = Writer::default();
    let Frontier {
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
    } = f;
    w.f64(*threshold_usd);
    w.f64(*traffic);
    w.len(*visits);
    w.len(*types);
    w.len(*columns);
    w.len(*tail_builders);
    w.f64(*relevance_share);
    w.f64(*max_welfare_ratio);
    w.len(points.len());
    for b in points {
        let Bound {
            welfare_ratio,
            viable,
            viable_share,
        } = b;
        w.f64(*welfare_ratio);
        w.f64(*viable);
        w.f64(*viable_share);
    }
    w.f64(*seconds);
    w.buf
}

fn decode_frontier(bytes: &[u8]) -> Option<Frontier> {
    let mut r = Reader { buf: bytes, at: 0 };
    let r = &mut r;
    let threshold_usd = r.f64()?;
    let traffic = r.f64()?;
    let visits = r.usize()?;
    let types = r.usize()?;
    let columns = r.usize()?;
    let tail_builders = r.usize()?;
    let relevance_share = r.f64()?;
    let max_welfare_ratio = r.f64()?;
    let n = r.len(24)?;
    let points = (0..n)
        .map(|_| {
            Some(Bound {
                welfare_ratio: r.f64()?,
                viable: r.f64()?,
                viable_share: r.f64()?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let seconds = r.f64()?;
    (r.at == bytes.len()).then_some(Frontier {
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
    })
}
