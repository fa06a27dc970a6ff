//! The page log's binary encodings (docs/ledger.md, Page log): what the
//! `page_log` table stores and a cluster page event carries. Versioned by
//! its first byte: [`COMPACT`] (3) for the compact page the ledger writes
//! and event version 3 carries (`compact.rs`: models by ordinal, names by
//! reference), [`VERSION`] (2) for the self-contained encoding below
//! (event version 2; rows written before version 3); a row that starts
//! with `{` is a JSON row written before either (still read).
//!
//! Version 2's layout (integers are LEB128 varints unless said otherwise, floats
//! little-endian, strings a varint length and UTF-8):
//!
//! ```text
//! u8 version (2)
//! page, time, first_rank, candidates; seed (u64, 8 bytes)
//! mode, policy, group: u8 code (255: a string follows); book: u8
//! attention: u8 kind (0 none, 1 log, 2 trec, 3 rbp + f64 gamma, 4 cascade + f64 click)
//! params: count, then (name, f64) each
//! query
//! n (ranked candidates); builder dictionary: count, u64 each
//! n x u64 model key; n x varint index into the builder dictionary
//! n x f32 relevance
//! merit: bitmap of n bits (1: differs from relevance), then f32 for each 1
//! calls: bitmap (1: not an integer in [0, 2^53)), then per candidate varint or f64
//! n x f32 quantile
//! logits: u8 (0 none, 1 `relevance / T` of the ranked list, 2 explicit: count, f64 each)
//! shown: count, then per item model, builder, rank, f64 exposure,
//!        f64 relevance (only when n = 0: else the ranked item's), f64 score,
//!        u8 has propensity (+ f64)
//! ```
//!
//! The ranked list's relevance, merit and quantile are stored as f32
//! (relative error <= 2^-24); everything else is exact.
//! [`PageLog::quantize`] rounds a log the way its encoding does, so a
//! quantized log round-trips exactly.

use super::state::{Book, LoggedCandidate, PageLog, ShownLog};
use hubsearch_core::{BuilderKey, ModelKey};
use hubsearch_rank::Attention;

mod compact;
pub use compact::{on_grid, Dictionary, NoDictionary, COMPACT, GRID};

/// The first byte of a binary page log.
pub const VERSION: u8 = 2;

/// Why bytes are not a page log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("the page log ends early (at byte {0})")]
    Truncated(usize),
    #[error("page log version {0} is not one this hubsearch reads (it reads 2, 3 and JSON)")]
    Version(u8),
    #[error("the page log is malformed: {0}")]
    Malformed(String),
    #[error("the page log's JSON does not parse: {0}")]
    Json(String),
}

const MODES: [&str; 4] = ["text", "vector", "hybrid", "listing"];
const POLICIES: [&str; 7] = [
    "relevance",
    "popularity",
    "tail_boost",
    "fair",
    "fair_impact",
    "fair_bounded",
    "stochastic",
];
const GROUPS: [&str; 2] = ["model", "builder"];

impl PageLog {
    /// The page in the binary encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(64 + self.ranked.len() * 24));
        w.u8(VERSION);
        w.head(self);
        w.ranked(&self.ranked);
        w.logits(self);
        w.shown(self);
        w.0
    }

    /// Read a page log: the binary encoding, or JSON (rows written before
    /// it). Never panics, whatever the bytes.
    pub fn decode(bytes: &[u8]) -> Result<PageLog, CodecError> {
        match bytes.first() {
            None => Err(CodecError::Truncated(0)),
            Some(&VERSION) => decode_binary(bytes),
            // A compact page that refers to nothing (`decode_with` reads
            // one against the ledger's dictionary).
            Some(&COMPACT) => PageLog::decode_with(bytes, &NoDictionary),
            Some(b'{') | Some(b' ') | Some(b'\n') => {
                serde_json::from_slice(bytes).map_err(|e| CodecError::Json(e.to_string()))
            }
            Some(&v) => Err(CodecError::Version(v)),
        }
    }

    /// Put the ranked list's relevance, merit and quantile on the grid the
    /// compact encoding keeps ([`on_grid`]: exact in f32 too, so version 2
    /// keeps them as well), round shown scores to f32 and set each shown
    /// item's relevance to its ranked candidate's: the log a replica
    /// decodes. Idempotent.
    pub fn quantize(&mut self) {
        for c in &mut self.ranked {
            c.relevance = on_grid(c.relevance);
            c.merit = on_grid(c.merit);
            c.quantile = on_grid(c.quantile);
        }
        for s in &mut self.shown {
            s.score = f64::from(s.score as f32);
        }
        if !self.ranked.is_empty() {
            let first = self.first_rank.saturating_sub(1);
            for (i, s) in self.shown.iter_mut().enumerate() {
                if let Some(c) = self.ranked.get(first + i) {
                    s.relevance = c.relevance;
                }
            }
        }
    }
}

/// The `stochastic` policy's logits of a ranked list, `r / max(T, 1e-6)`
/// (empty when the policy is not `stochastic` or has no temperature).
pub fn derived_logits(
    ranked: &[LoggedCandidate],
    params: &std::collections::BTreeMap<String, f64>,
    policy: &str,
) -> Vec<f64> {
    match (policy, params.get("temperature")) {
        ("stochastic", Some(t)) => {
            let t = t.max(1e-6);
            ranked.iter().map(|c| c.relevance / t).collect()
        }
        _ => Vec::new(),
    }
}

/// Append `x` as a LEB128 varint (the encodings' integers; a cluster page
/// event's header too).
pub fn put_varint(out: &mut Vec<u8>, mut x: u64) {
    loop {
        let b = (x & 0x7F) as u8;
        x >>= 7;
        if x == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// The LEB128 varint of `bytes` at `*at` (moved past it); an error, never
/// a panic, for one that ends early or overflows 64 bits.
pub fn read_varint(bytes: &[u8], at: &mut usize) -> Result<u64, CodecError> {
    let mut x = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at).ok_or(CodecError::Truncated(bytes.len()))?;
        *at += 1;
        let part = u64::from(b & 0x7F);
        if shift == 63 && part > 1 {
            return Err(CodecError::Malformed("a varint overflows 64 bits".into()));
        }
        x |= part << shift;
        if b & 0x80 == 0 {
            return Ok(x);
        }
    }
    Err(CodecError::Malformed(
        "a varint is longer than 10 bytes".into(),
    ))
}

fn small_int(x: f64) -> bool {
    (0.0..9_007_199_254_740_992.0).contains(&x)
        && x.fract() == 0.0
        && x.to_bits() != (-0.0f64).to_bits()
}

fn decode_binary(bytes: &[u8]) -> Result<PageLog, CodecError> {
    let mut r = Reader { b: bytes, at: 1 };
    let mut log = r.head()?;
    log.ranked = r.ranked()?;
    log.logits = r.logits(&log)?;
    log.shown = r.shown(&log)?;
    if r.at != bytes.len() {
        return Err(CodecError::Malformed(format!(
            "{} bytes after the page log",
            bytes.len() - r.at
        )));
    }
    Ok(log)
}

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, b: u8) {
        self.0.push(b);
    }

    fn var(&mut self, x: u64) {
        put_varint(&mut self.0, x);
    }

    fn f64(&mut self, x: f64) {
        self.0.extend_from_slice(&x.to_le_bytes());
    }

    fn f32(&mut self, x: f64) {
        self.0.extend_from_slice(&(x as f32).to_le_bytes());
    }

    fn str(&mut self, s: &str) {
        self.var(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }

    fn code(&mut self, table: &[&str], s: &str) {
        match table.iter().position(|t| *t == s) {
            Some(i) => self.u8(i as u8),
            None => {
                self.u8(255);
                self.str(s);
            }
        }
    }

    fn bits(&mut self, bits: &[bool]) {
        for chunk in bits.chunks(8) {
            let mut b = 0u8;
            for (i, bit) in chunk.iter().enumerate() {
                b |= u8::from(*bit) << i;
            }
            self.0.push(b);
        }
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], CodecError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or(CodecError::Truncated(self.b.len()))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }

    fn var(&mut self) -> Result<u64, CodecError> {
        read_varint(self.b, &mut self.at)
    }

    fn usize(&mut self) -> Result<usize, CodecError> {
        usize::try_from(self.var()?).map_err(|_| CodecError::Malformed("a count overflows".into()))
    }

    /// A count of items of at least `min_bytes` each: never more than the
    /// bytes left could hold (garbage cannot make us allocate much).
    fn count(&mut self, min_bytes: usize) -> Result<usize, CodecError> {
        let n = self.usize()?;
        let left = self.b.len() - self.at;
        if n.saturating_mul(min_bytes.max(1)) > left {
            return Err(CodecError::Truncated(self.b.len()));
        }
        Ok(n)
    }

    fn f64(&mut self) -> Result<f64, CodecError> {
        Ok(f64::from_le_bytes(self.array::<8>()?))
    }

    fn f32(&mut self) -> Result<f64, CodecError> {
        Ok(f64::from(f32::from_le_bytes(self.array::<4>()?)))
    }

    fn str(&mut self) -> Result<String, CodecError> {
        let n = self.count(1)?;
        let s = self.take(n)?;
        String::from_utf8(s.to_vec())
            .map_err(|_| CodecError::Malformed("a string is not UTF-8".into()))
    }

    fn code(&mut self, table: &[&str]) -> Result<String, CodecError> {
        match self.u8()? {
            255 => self.str(),
            i => table
                .get(usize::from(i))
                .map(|s| s.to_string())
                .ok_or_else(|| CodecError::Malformed(format!("code {i}"))),
        }
    }

    fn bits(&mut self, n: usize) -> Result<Vec<bool>, CodecError> {
        let bytes = self.take(n.div_ceil(8))?;
        Ok((0..n).map(|i| bytes[i / 8] >> (i % 8) & 1 == 1).collect())
    }
}

/// The page's parts in the order the layout gives them; [`Reader`] reads
/// them back in the same order.
impl Writer {
    /// Everything before the ranked list: numbers, codes, attention,
    /// params, query.
    fn head(&mut self, p: &PageLog) {
        self.var(p.page);
        self.var(p.time);
        self.var(p.first_rank as u64);
        self.var(p.candidates as u64);
        self.0.extend_from_slice(&p.seed.to_le_bytes());
        self.code(&MODES, &p.mode);
        self.code(&POLICIES, &p.policy);
        self.code(&GROUPS, &p.group);
        self.u8(match p.book {
            Book::Search => 0,
            Book::Listing => 1,
        });
        match p.attention {
            None => self.u8(0),
            Some(Attention::Log) => self.u8(1),
            Some(Attention::Trec) => self.u8(2),
            Some(Attention::Rbp { gamma }) => {
                self.u8(3);
                self.f64(gamma);
            }
            Some(Attention::Cascade { click }) => {
                self.u8(4);
                self.f64(click);
            }
        }
        self.var(p.params.len() as u64);
        for (k, v) in &p.params {
            self.str(k);
            self.f64(*v);
        }
        self.str(&p.query);
    }

    /// The ranked candidates, column by column.
    fn ranked(&mut self, ranked: &[LoggedCandidate]) {
        self.var(ranked.len() as u64);
        let mut dict: Vec<u64> = ranked.iter().map(|c| c.builder.0).collect();
        dict.sort_unstable();
        dict.dedup();
        self.var(dict.len() as u64);
        for b in &dict {
            self.0.extend_from_slice(&b.to_le_bytes());
        }
        for c in ranked {
            self.0.extend_from_slice(&c.model.0.to_le_bytes());
        }
        for c in ranked {
            // Present: the dictionary was built from these builders.
            let i = dict.binary_search(&c.builder.0).unwrap_or_default();
            self.var(i as u64);
        }
        for c in ranked {
            self.f32(c.relevance);
        }
        let merit_differs: Vec<bool> = ranked
            .iter()
            .map(|c| (c.merit as f32).to_bits() != (c.relevance as f32).to_bits())
            .collect();
        self.bits(&merit_differs);
        for (c, d) in ranked.iter().zip(&merit_differs) {
            if *d {
                self.f32(c.merit);
            }
        }
        let odd_calls: Vec<bool> = ranked.iter().map(|c| !small_int(c.calls)).collect();
        self.bits(&odd_calls);
        for (c, odd) in ranked.iter().zip(&odd_calls) {
            if *odd {
                self.f64(c.calls);
            } else {
                self.var(c.calls as u64);
            }
        }
        for c in ranked {
            self.f32(c.quantile);
        }
    }

    /// The logits: none, derived from the ranked list, or explicit.
    fn logits(&mut self, p: &PageLog) {
        // What the decoder derives: logits of the f32-rounded relevance.
        let rounded: Vec<LoggedCandidate> = p
            .ranked
            .iter()
            .map(|c| LoggedCandidate {
                relevance: f64::from(c.relevance as f32),
                ..*c
            })
            .collect();
        if p.logits.is_empty() {
            self.u8(0);
        } else if !p.ranked.is_empty() && p.logits == derived_logits(&rounded, &p.params, &p.policy)
        {
            self.u8(1);
        } else {
            self.u8(2);
            self.var(p.logits.len() as u64);
            for l in &p.logits {
                self.f64(*l);
            }
        }
    }

    /// The shown items (their relevance only when there is no ranked list
    /// to take it from).
    fn shown(&mut self, p: &PageLog) {
        self.var(p.shown.len() as u64);
        for s in &p.shown {
            self.str(s.model.as_str());
            self.str(&s.builder);
            self.var(s.rank as u64);
            self.f64(s.exposure);
            if p.ranked.is_empty() {
                self.f64(s.relevance);
            }
            self.f64(s.score);
            match s.propensity {
                None => self.u8(0),
                Some(p) => {
                    self.u8(1);
                    self.f64(p);
                }
            }
        }
    }
}

/// A shown item's model, builder, rank, exposure, relevance, score and
/// propensity: what a decoder reads of it, in the order both encodings
/// write them.
type ShownParts = (String, String, usize, f64, f64, f64, Option<f64>);

/// The page's parts, as [`Writer`] writes them.
impl Reader<'_> {
    /// A page log with everything before the ranked list; its ranked
    /// list, logits and shown items empty.
    fn head(&mut self) -> Result<PageLog, CodecError> {
        let page = self.var()?;
        let time = self.var()?;
        let first_rank = self.usize()?;
        let candidates = self.usize()?;
        let seed = u64::from_le_bytes(self.array::<8>()?);
        let mode = self.code(&MODES)?;
        let policy = self.code(&POLICIES)?;
        let group = self.code(&GROUPS)?;
        let book = match self.u8()? {
            0 => Book::Search,
            1 => Book::Listing,
            b => return Err(CodecError::Malformed(format!("book code {b}"))),
        };
        let attention = match self.u8()? {
            0 => None,
            1 => Some(Attention::Log),
            2 => Some(Attention::Trec),
            3 => Some(Attention::Rbp { gamma: self.f64()? }),
            4 => Some(Attention::Cascade { click: self.f64()? }),
            k => return Err(CodecError::Malformed(format!("attention code {k}"))),
        };
        let np = self.count(9)?;
        let mut params = std::collections::BTreeMap::new();
        for _ in 0..np {
            let k = self.str()?;
            let v = self.f64()?;
            params.insert(k, v);
        }
        let query = self.str()?;
        Ok(PageLog {
            page,
            time,
            query,
            mode,
            policy,
            params,
            group,
            seed,
            candidates,
            shown: Vec::new(),
            logits: Vec::new(),
            first_rank,
            book,
            attention,
            ranked: Vec::new(),
        })
    }

    fn ranked(&mut self) -> Result<Vec<LoggedCandidate>, CodecError> {
        // Each ranked candidate takes at least 8 + 1 + 4 + 4 bytes.
        let n = self.count(17)?;
        let nb = self.count(8)?;
        let mut dict = Vec::with_capacity(nb);
        for _ in 0..nb {
            dict.push(u64::from_le_bytes(self.array::<8>()?));
        }
        let mut ranked = vec![LoggedCandidate::default(); n];
        for c in &mut ranked {
            c.model = ModelKey(u64::from_le_bytes(self.array::<8>()?));
        }
        for c in &mut ranked {
            let i = self.usize()?;
            c.builder = BuilderKey(
                *dict
                    .get(i)
                    .ok_or_else(|| CodecError::Malformed(format!("builder index {i} of {nb}")))?,
            );
        }
        for c in &mut ranked {
            c.relevance = self.f32()?;
        }
        let merit_differs = self.bits(n)?;
        for (c, d) in ranked.iter_mut().zip(&merit_differs) {
            c.merit = if *d { self.f32()? } else { c.relevance };
        }
        let odd_calls = self.bits(n)?;
        for (c, odd) in ranked.iter_mut().zip(&odd_calls) {
            c.calls = if *odd {
                self.f64()?
            } else {
                self.var()? as f64
            };
        }
        for c in &mut ranked {
            c.quantile = self.f32()?;
        }
        Ok(ranked)
    }

    /// The logits of a page whose head and ranked list are read.
    fn logits(&mut self, p: &PageLog) -> Result<Vec<f64>, CodecError> {
        Ok(match self.u8()? {
            0 => Vec::new(),
            1 => derived_logits(&p.ranked, &p.params, &p.policy),
            2 => {
                let k = self.count(8)?;
                let mut l = Vec::with_capacity(k);
                for _ in 0..k {
                    l.push(self.f64()?);
                }
                l
            }
            k => return Err(CodecError::Malformed(format!("logits code {k}"))),
        })
    }

    /// The shown items of a page whose head and ranked list are read.
    fn shown(&mut self, p: &PageLog) -> Result<Vec<ShownLog>, CodecError> {
        let n = p.ranked.len();
        let ns = self.count(19)?;
        self.shown_items(ns, |r, i| {
            let model = r.str()?;
            let builder = r.str()?;
            let rank = r.usize()?;
            let exposure = r.f64()?;
            let relevance = if n == 0 {
                r.f64()?
            } else {
                let at = p.first_rank.saturating_sub(1).saturating_add(i);
                p.ranked.get(at).map(|c| c.relevance).ok_or_else(|| {
                    CodecError::Malformed(format!(
                        "shown item {i} is past the {n} ranked candidates"
                    ))
                })?
            };
            let score = r.f64()?;
            let propensity = match r.u8()? {
                0 => None,
                1 => Some(r.f64()?),
                k => return Err(CodecError::Malformed(format!("propensity flag {k}"))),
            };
            Ok((model, builder, rank, exposure, relevance, score, propensity))
        })
    }

    /// `n` shown items, the parts of the `i`th read by `item` (both
    /// encodings read them in the same order, each its own way).
    fn shown_items(
        &mut self,
        n: usize,
        mut item: impl FnMut(&mut Self, usize) -> Result<ShownParts, CodecError>,
    ) -> Result<Vec<ShownLog>, CodecError> {
        let mut shown = Vec::with_capacity(n);
        for i in 0..n {
            let (model, builder, rank, exposure, relevance, score, propensity) = item(self, i)?;
            shown.push(ShownLog {
                model: model.into(),
                builder,
                rank,
                exposure,
                relevance,
                score,
                propensity,
            });
        }
        Ok(shown)
    }
}
