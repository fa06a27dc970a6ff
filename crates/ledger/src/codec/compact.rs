//! Version 3 of the page log's encoding: the compact page (docs/ledger.md,
//! Page log). What version 2 spells out, version 3 refers to: a model by
//! its ordinal in the ledger's dictionary of models (which also gives its
//! builder), a shown item's names by the names the ledger already holds,
//! and a shown item's rank, relevance, exposure and propensity by what the
//! rest of the page implies. Relevance, merit and quantile are kept on a
//! grid of 2^-15 in [0, 1] (two bytes; the engine puts them there before
//! any policy reads them, `on_grid`), anything off the grid exactly.
//!
//! Layout (after the version byte and the head, as in version 2):
//!
//! ```text
//! n (ranked candidates)
//! n x model: varint ordinal + 1, or 0 then u64 model key, u64 builder key
//! n x unit relevance
//! merit: bitmap of n bits (1: not zero), then a unit for each 1
//! calls and quantile: bitmap of n bits (1: the same pair as an earlier
//!        candidate), bitmap of one bit per 0 (1: calls not an integer in
//!        [0, 2^53)); then per candidate the index of the earlier pair
//!        (varint, pairs in order of first appearance), or calls (varint,
//!        or f64) and a unit quantile
//! logits: u8 (0 none, 1 `relevance / T` of the ranked list, 2 explicit)
//! shown: count, then per item a u8 of flags and what they say is there:
//!        model name, builder name, rank, exposure, relevance (f64 each
//!        when not implied), score (f32, or f64), propensity (f64 when
//!        not the logits' sequential probability)
//! unit: u16 little-endian k <= 32768 for k / 32768, or 65535 then f64
//! ```
//!
//! Decoding needs the same dictionary and names the encoding was made
//! with, or a later state of them: both only grow ([`Dictionary`]).

use std::collections::hash_map::{Entry, HashMap};

use hubsearch_rank::plackett_luce::sequential_probabilities;

use hubsearch_core::{BuilderKey, ModelKey};

use super::{derived_logits, small_int, CodecError, Reader, Writer};
use crate::state::{LoggedCandidate, PageLog, ShownLog};

/// The first byte of a compact page log.
pub const COMPACT: u8 = 3;

/// Steps of the grid relevance, merit and quantile are kept on: a power of
/// two, so every grid value is exact in f32 and f64 alike (a version 2
/// encoding of a page on the grid round-trips too).
pub const GRID: f64 = 32768.0;
/// A unit that is not on the grid: an f64 follows.
const OFF_GRID: u16 = u16::MAX;

/// `x` on the grid when in [0, 1] (round to the nearest 2^-15), else as it
/// is: what the engine ranks on and logs, so the compact page is exact.
pub fn on_grid(x: f64) -> f64 {
    if (0.0..=1.0).contains(&x) {
        (x * GRID).round() / GRID
    } else {
        x
    }
}

/// What a compact page refers to: the ledger's dictionary of models (an
/// ordinal per model key, with its builder key) and the names it holds.
/// Entries are only ever added, so a page encoded against one state reads
/// against any later one.
pub trait Dictionary {
    /// The model's ordinal, if it has one.
    fn ordinal(&self, model: ModelKey) -> Option<u32>;
    /// (model key, builder key) of an ordinal.
    fn entry(&self, ordinal: u32) -> Option<(ModelKey, BuilderKey)>;
    /// The name (model id or builder) of a key.
    fn name(&self, key: u64) -> Option<&str>;
}

/// A dictionary that knows nothing: every model and name is written out.
pub struct NoDictionary;

impl Dictionary for NoDictionary {
    fn ordinal(&self, _: ModelKey) -> Option<u32> {
        None
    }
    fn entry(&self, _: u32) -> Option<(ModelKey, BuilderKey)> {
        None
    }
    fn name(&self, _: u64) -> Option<&str> {
        None
    }
}

// Shown items' flags.
const MODEL_NAME: u8 = 1;
const BUILDER_NAME: u8 = 1 << 1;
const RANK: u8 = 1 << 2;
const EXPOSURE: u8 = 1 << 3;
const RELEVANCE: u8 = 1 << 4;
const SCORE_F64: u8 = 1 << 5;
const PROPENSITY_SHIFT: u32 = 6;

impl PageLog {
    /// The page as a compact page log (version 3) against `dict`.
    pub fn encode_compact(&self, dict: &dyn Dictionary) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(64 + self.ranked.len() * 9));
        w.u8(COMPACT);
        w.head(self);
        w.compact_ranked(&self.ranked, dict);
        if self.logits.is_empty() {
            w.u8(0);
        } else if !self.ranked.is_empty()
            && bits(&self.logits) == bits(&derived_logits(&self.ranked, &self.params, &self.policy))
        {
            w.u8(1);
        } else {
            w.u8(2);
            w.var(self.logits.len() as u64);
            for l in &self.logits {
                w.f64(*l);
            }
        }
        w.compact_shown(self, dict);
        w.0
    }

    /// Set each shown item's exposure to what its page implies (its
    /// attention model's weight at its rank), where it implies one: what
    /// the books give it (`PageRecord::of_log`), and what a compact page
    /// then need not carry. The engine logs its pages so.
    pub fn imply_exposures(&mut self) {
        let implied = Implied::of(self, self.shown.len());
        for (s, e) in self.shown.iter_mut().zip(implied.exposure) {
            if let Some(e) = e {
                s.exposure = e;
            }
        }
    }

    /// Read a page log of any version, compact ones against `dict`.
    pub fn decode_with(bytes: &[u8], dict: &dyn Dictionary) -> Result<PageLog, CodecError> {
        if bytes.first() != Some(&COMPACT) {
            return PageLog::decode(bytes);
        }
        let mut r = Reader { b: bytes, at: 1 };
        let mut log = r.head()?;
        log.ranked = r.compact_ranked(dict)?;
        log.logits = r.logits(&log)?;
        log.shown = r.compact_shown(&log, dict)?;
        if r.at != bytes.len() {
            return Err(CodecError::Malformed(format!(
                "{} bytes after the page log",
                bytes.len() - r.at
            )));
        }
        Ok(log)
    }

    /// The unix second a page log of any version was served at (its head
    /// alone: no dictionary needed).
    pub fn time_of(bytes: &[u8]) -> Result<u64, CodecError> {
        match bytes.first() {
            Some(&COMPACT) | Some(&super::VERSION) => {
                Reader { b: bytes, at: 1 }.head().map(|l| l.time)
            }
            _ => PageLog::decode(bytes).map(|l| l.time),
        }
    }
}

/// What a page implies of its shown items: (exposures by the attention
/// model, the relevance of the ranked items shown, sequential
/// probabilities of the logits), each only where the page has what it
/// takes.
struct Implied {
    relevance: Vec<Option<f64>>,
    exposure: Vec<Option<f64>>,
    propensity: Vec<f64>,
}

impl Implied {
    fn of(p: &PageLog, shown: usize) -> Implied {
        let first = p.first_rank.saturating_sub(1);
        let relevance: Vec<Option<f64>> = (0..shown)
            .map(|i| p.ranked.get(first.saturating_add(i)).map(|c| c.relevance))
            .collect();
        let exposure = match (p.attention, p.first_rank) {
            (Some(a), r)
                if r > 0
                    && r.checked_add(shown).is_some()
                    && relevance.iter().all(Option::is_some) =>
            {
                let rel: Vec<f64> = relevance.iter().flatten().copied().collect();
                a.page(r, &rel).into_iter().map(Some).collect()
            }
            _ => vec![None; shown],
        };
        let propensity = if p.logits.is_empty() {
            Vec::new()
        } else {
            sequential_probabilities(&p.logits)
        };
        Implied {
            relevance,
            exposure,
            propensity,
        }
    }

    fn propensity(&self, p: &PageLog, i: usize) -> Option<f64> {
        let at = p.first_rank.checked_sub(1)?.checked_add(i)?;
        self.propensity.get(at).copied()
    }
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn same(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| a.to_bits() == b.to_bits())
}

impl Writer {
    fn unit(&mut self, x: f64) {
        let k = x * GRID;
        if (0.0..=1.0).contains(&x) && k.fract() == 0.0 && x.to_bits() != (-0.0f64).to_bits() {
            self.0.extend_from_slice(&(k as u16).to_le_bytes());
        } else {
            self.0.extend_from_slice(&OFF_GRID.to_le_bytes());
            self.f64(x);
        }
    }

    fn compact_ranked(&mut self, ranked: &[LoggedCandidate], dict: &dyn Dictionary) {
        self.var(ranked.len() as u64);
        for c in ranked {
            match dict.ordinal(c.model) {
                Some(o) if dict.entry(o) == Some((c.model, c.builder)) => {
                    self.var(u64::from(o) + 1)
                }
                _ => {
                    self.var(0);
                    self.0.extend_from_slice(&c.model.0.to_le_bytes());
                    self.0.extend_from_slice(&c.builder.0.to_le_bytes());
                }
            }
        }
        for c in ranked {
            self.unit(c.relevance);
        }
        let nonzero: Vec<bool> = ranked.iter().map(|c| c.merit.to_bits() != 0).collect();
        self.bits(&nonzero);
        for c in ranked.iter().filter(|c| c.merit.to_bits() != 0) {
            self.unit(c.merit);
        }
        // Calls and quantile as pairs: a candidate with the same pair as
        // an earlier one on the page (models with the same downloads) is
        // the index of that pair.
        let mut pairs: HashMap<(u64, u64), u64> = HashMap::new();
        let repeat: Vec<Option<u64>> = ranked
            .iter()
            .map(|c| {
                let key = (c.calls.to_bits(), c.quantile.to_bits());
                let next = pairs.len() as u64;
                match pairs.entry(key) {
                    Entry::Occupied(e) => Some(*e.get()),
                    Entry::Vacant(e) => {
                        e.insert(next);
                        None
                    }
                }
            })
            .collect();
        self.bits(&repeat.iter().map(Option::is_some).collect::<Vec<_>>());
        let odd_calls: Vec<bool> = ranked
            .iter()
            .zip(&repeat)
            .filter(|(_, r)| r.is_none())
            .map(|(c, _)| !small_int(c.calls))
            .collect();
        self.bits(&odd_calls);
        let mut odd = odd_calls.iter();
        for (c, r) in ranked.iter().zip(&repeat) {
            match r {
                Some(i) => self.var(*i),
                None => {
                    if odd.next() == Some(&true) {
                        self.f64(c.calls);
                    } else {
                        self.var(c.calls as u64);
                    }
                    self.unit(c.quantile);
                }
            }
        }
    }

    fn compact_shown(&mut self, p: &PageLog, dict: &dyn Dictionary) {
        let implied = Implied::of(p, p.shown.len());
        let first = p.first_rank.saturating_sub(1);
        self.var(p.shown.len() as u64);
        for (i, s) in p.shown.iter().enumerate() {
            let ranked = p.ranked.get(first.saturating_add(i));
            let known = |key: Option<u64>, name: &str| {
                key.and_then(|k| dict.name(k)).is_some_and(|n| n == name)
            };
            let propensity = match s.propensity {
                None => 0u8,
                Some(q) if same(implied.propensity(p, i), q) => 1,
                Some(_) => 2,
            };
            let mut flags = propensity << PROPENSITY_SHIFT;
            if !known(ranked.map(|c| c.model.0), s.model.as_str()) {
                flags |= MODEL_NAME;
            }
            if !known(ranked.map(|c| c.builder.0), &s.builder) {
                flags |= BUILDER_NAME;
            }
            if p.first_rank == 0 || Some(s.rank) != p.first_rank.checked_add(i) {
                flags |= RANK;
            }
            if !same(implied.exposure[i], s.exposure) {
                flags |= EXPOSURE;
            }
            if !same(implied.relevance[i], s.relevance) {
                flags |= RELEVANCE;
            }
            if f64::from(s.score as f32).to_bits() != s.score.to_bits() {
                flags |= SCORE_F64;
            }
            self.u8(flags);
            if flags & MODEL_NAME != 0 {
                self.str(s.model.as_str());
            }
            if flags & BUILDER_NAME != 0 {
                self.str(&s.builder);
            }
            if flags & RANK != 0 {
                self.var(s.rank as u64);
            }
            if flags & EXPOSURE != 0 {
                self.f64(s.exposure);
            }
            if flags & RELEVANCE != 0 {
                self.f64(s.relevance);
            }
            if flags & SCORE_F64 != 0 {
                self.f64(s.score);
            } else {
                self.f32(s.score);
            }
            if let (2, Some(q)) = (propensity, s.propensity) {
                self.f64(q);
            }
        }
    }
}

impl Reader<'_> {
    fn unit(&mut self) -> Result<f64, CodecError> {
        match u16::from_le_bytes(self.array::<2>()?) {
            OFF_GRID => self.f64(),
            k if f64::from(k) <= GRID => Ok(f64::from(k) / GRID),
            k => Err(CodecError::Malformed(format!("grid value {k}"))),
        }
    }

    fn compact_ranked(
        &mut self,
        dict: &dyn Dictionary,
    ) -> Result<Vec<LoggedCandidate>, CodecError> {
        // Each ranked candidate takes at least 1 + 2 + 1 bytes.
        let n = self.count(4)?;
        let mut ranked = vec![LoggedCandidate::default(); n];
        for c in &mut ranked {
            match self.var()? {
                0 => {
                    c.model = ModelKey(u64::from_le_bytes(self.array::<8>()?));
                    c.builder = BuilderKey(u64::from_le_bytes(self.array::<8>()?));
                }
                o => {
                    let o = u32::try_from(o - 1)
                        .map_err(|_| CodecError::Malformed(format!("model ordinal {}", o - 1)))?;
                    (c.model, c.builder) = dict.entry(o).ok_or_else(|| {
                        CodecError::Malformed(format!(
                            "model ordinal {o} is not in the ledger's dictionary"
                        ))
                    })?;
                }
            }
        }
        for c in &mut ranked {
            c.relevance = self.unit()?;
        }
        let nonzero = self.bits(n)?;
        for (c, nz) in ranked.iter_mut().zip(&nonzero) {
            c.merit = if *nz { self.unit()? } else { 0.0 };
        }
        let repeat = self.bits(n)?;
        let odd_calls = self.bits(repeat.iter().filter(|r| !**r).count())?;
        let mut odd = odd_calls.iter();
        let mut pairs: Vec<(f64, f64)> = Vec::new();
        for (c, r) in ranked.iter_mut().zip(&repeat) {
            (c.calls, c.quantile) = if *r {
                let i = self.usize()?;
                *pairs.get(i).ok_or_else(|| {
                    CodecError::Malformed(format!("calls pair {i} of {}", pairs.len()))
                })?
            } else {
                let calls = if odd.next() == Some(&true) {
                    self.f64()?
                } else {
                    self.var()? as f64
                };
                let pair = (calls, self.unit()?);
                pairs.push(pair);
                pair
            };
        }
        Ok(ranked)
    }

    fn compact_shown(
        &mut self,
        p: &PageLog,
        dict: &dyn Dictionary,
    ) -> Result<Vec<ShownLog>, CodecError> {
        // Each shown item takes at least a flag and an f32.
        let ns = self.count(5)?;
        let implied = Implied::of(p, ns);
        let first = p.first_rank.saturating_sub(1);
        self.shown_items(ns, |r, i| {
            let ranked = p.ranked.get(first.saturating_add(i));
            let flags = r.u8()?;
            let name = |r: &mut Self, inline: bool, key: Option<u64>, what: &str| {
                if inline {
                    return r.str();
                }
                key.and_then(|k| dict.name(k))
                    .map(str::to_string)
                    .ok_or_else(|| {
                        CodecError::Malformed(format!(
                            "shown item {i}'s {what} name is not in the ledger"
                        ))
                    })
            };
            let model = name(
                r,
                flags & MODEL_NAME != 0,
                ranked.map(|c| c.model.0),
                "model",
            )?;
            let builder = name(
                r,
                flags & BUILDER_NAME != 0,
                ranked.map(|c| c.builder.0),
                "builder",
            )?;
            let rank = if flags & RANK != 0 {
                r.usize()?
            } else {
                p.first_rank.checked_add(i).ok_or_else(|| {
                    CodecError::Malformed(format!("shown item {i}'s rank overflows"))
                })?
            };
            let implied_or = |r: &mut Self, explicit: bool, v: Option<f64>, what: &str| {
                if explicit {
                    r.f64()
                } else {
                    v.ok_or_else(|| {
                        CodecError::Malformed(format!("shown item {i}'s {what} is not implied"))
                    })
                }
            };
            let exposure = implied_or(r, flags & EXPOSURE != 0, implied.exposure[i], "exposure")?;
            let relevance =
                implied_or(r, flags & RELEVANCE != 0, implied.relevance[i], "relevance")?;
            let score = if flags & SCORE_F64 != 0 {
                r.f64()?
            } else {
                r.f32()?
            };
            let propensity = match flags >> PROPENSITY_SHIFT {
                0 => None,
                1 => Some(implied.propensity(p, i).ok_or_else(|| {
                    CodecError::Malformed(format!("shown item {i}'s propensity is not implied"))
                })?),
                2 => Some(r.f64()?),
                k => return Err(CodecError::Malformed(format!("propensity code {k}"))),
            };
            Ok((model, builder, rank, exposure, relevance, score, propensity))
        })
    }
}
