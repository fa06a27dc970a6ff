//! Off-policy estimates of a target policy's paid calls per page from the
//! ledger's page logs (docs/metrics.md, Off-policy estimates): item-position
//! IPS, self-normalised IPS and doubly robust, each with a 95% interval and
//! an effective sample size.
//!
//! The model (Li, Kim & Zitouni, WWW 2018, item-position model; Joachims,
//! Swaminathan & Schnabel, WSDM 2017): a call on the item at rank `k` needs
//! the user to examine `k` and to want the item, so the target's expected
//! calls per page are a sum over (item, rank) pairs, and each logged call
//! is reweighted by `w = pi(d at k) / mu(d at k)`, the target's over the
//! logger's probability of that item at that rank. The logger must explore:
//! only pages served by `stochastic` (Plackett-Luce) are used, whose
//! placement probabilities come from
//! [`hubsearch_rank::plackett_luce::placement_probabilities`] (exact at
//! ranks 1-2, conditional Monte Carlo with a relative tolerance below).

use std::collections::HashMap;

use hubsearch_core::config::RankingConfig;
use hubsearch_core::PolicyKind;
use hubsearch_engine::ledger::codec::derived_logits;
use hubsearch_engine::ledger::{Book, PageLog};
use hubsearch_rank::plackett_luce::{placement_probabilities, Sampling};
use hubsearch_rank::{rank, Candidate, ExposureBook, Policy};

/// Which estimator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Estimator {
    Ips,
    Snips,
    Dr,
}

impl Estimator {
    pub const ALL: [Estimator; 3] = [Estimator::Ips, Estimator::Snips, Estimator::Dr];

    pub fn as_str(self) -> &'static str {
        match self {
            Estimator::Ips => "ips",
            Estimator::Snips => "snips",
            Estimator::Dr => "dr",
        }
    }
}

/// An estimate of expected calls per page.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Estimate {
    pub value: f64,
    pub stderr: f64,
    /// The 95% interval `value -+ 1.96 stderr` (normal approximation).
    pub lo: f64,
    pub hi: f64,
    /// Kish's effective sample size of the (page, rank) weights,
    /// `(sum w)^2 / sum w^2`.
    pub ess: f64,
    /// Pages it was computed from.
    pub pages: usize,
}

/// How to estimate.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Clip every weight at this value (None: no clipping).
    pub clip: Option<f64>,
    /// How logging placement probabilities are sampled beyond rank 2.
    pub sampling: Sampling,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            clip: None,
            sampling: Sampling {
                rel_tol: 0.05,
                ..Sampling::default()
            },
        }
    }
}

/// What the estimate used and left out.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    pub estimates: Vec<(String, Estimate)>,
    /// Pages used.
    pub pages: usize,
    /// Pages left out: not `stochastic` (no exploration), logged before
    /// candidate lists were, or fair listings.
    pub skipped_deterministic: usize,
    pub skipped_old: usize,
    pub skipped_listing: usize,
    /// Calls on the pages used, per page (what the logging policy earned).
    pub logged_calls_per_page: f64,
}

/// A target policy from `NAME[:VALUE]` or `NAME[:param=VALUE]`: the
/// policies whose ranking a page log determines. The `fair` policies read
/// the exposure book as it stood when each page was served, which every
/// earlier page (and so the target itself) changed: a log does not
/// determine them, and they are refused with that reason.
pub fn parse_target(s: &str) -> Result<Policy, String> {
    let (name, value) = match s.split_once(':') {
        Some((n, v)) => (n.trim(), Some(v.trim())),
        None => (s.trim(), None),
    };
    let kind: PolicyKind = name.parse()?;
    let param = match kind {
        PolicyKind::Popularity => "alpha",
        PolicyKind::TailBoost => "beta",
        PolicyKind::Stochastic => "temperature",
        PolicyKind::Relevance => "",
        PolicyKind::Fair | PolicyKind::FairImpact | PolicyKind::FairBounded => {
            return Err(format!(
                "target {name:?} cannot be evaluated from a log: it ranks by the exposure book as it stood when each page was served, which every earlier page (and so the target's own pages) changed; evaluate it by simulation or replay instead (hubsearch eval, hubsearch study)"
            ))
        }
    };
    let mut r = RankingConfig::default();
    if let Some(v) = value {
        if param.is_empty() {
            return Err(format!("target {name:?} takes no parameter (got {v:?})"));
        }
        let v = match v.split_once('=') {
            Some((k, v)) if k.trim() == param => v.trim(),
            Some((k, _)) => {
                return Err(format!(
                    "target {name:?} takes the parameter {param:?}, not {:?}",
                    k.trim()
                ))
            }
            None => v,
        };
        let x: f64 = v
            .parse()
            .ok()
            .filter(|x: &f64| x.is_finite() && *x >= 0.0)
            .ok_or_else(|| format!("{param} of {name:?} must be a number >= 0, not {v:?}"))?;
        match kind {
            PolicyKind::Popularity => r.alpha = x,
            PolicyKind::TailBoost => r.beta = x,
            _ => {
                if x <= 0.0 {
                    return Err(format!("temperature of {name:?} must be > 0"));
                }
                r.temperature = x
            }
        }
    }
    Ok(Policy::new(kind, &r))
}

/// One usable logged page, reduced to what the estimators read.
struct Slate {
    /// Absolute 0-based ranks shown.
    ranks: Vec<usize>,
    /// Logged item (index into the ranked list = its logged rank) keys.
    keys: Vec<u64>,
    /// Calls at each shown rank.
    calls: Vec<f64>,
    /// Logger's and target's probability of the logged item at its rank.
    mu: Vec<f64>,
    pi: Vec<f64>,
    /// The direct method's term per shown rank: sum_d pi(d at k) gamma(d)
    /// (times theta(k) later).
    target_gamma: Vec<f64>,
    /// Target marginals by rank, for the reward model: (key, prob) pairs.
    target_items: Vec<Vec<(u64, f64)>>,
}

/// Estimate `target`'s expected calls per page from logged `pages` and
/// `calls` (page id, 1-based rank) -> calls there.
pub fn estimate(
    pages: &[PageLog],
    calls: &HashMap<(u64, u64), f64>,
    target: &Policy,
    estimators: &[Estimator],
    opts: &Options,
) -> Result<Report, String> {
    if target.reads_book() {
        return Err(format!(
            "target {} cannot be evaluated from a log (it reads the exposure book)",
            target.name()
        ));
    }
    let mut report = Report::default();
    let mut slates = SlateReader {
        calls,
        target,
        opts,
        mu_cache: HashMap::new(),
    }
    .read(pages, &mut report);
    report.pages = slates.len();
    if slates.is_empty() {
        return Err(format!(
            "no page to estimate from: {} pages not served by `stochastic` (a deterministic logger explores nothing), {} logged before candidate lists were, {} fair listings",
            report.skipped_deterministic, report.skipped_old, report.skipped_listing
        ));
    }
    report.logged_calls_per_page = slates
        .iter()
        .map(|s| s.calls.iter().sum::<f64>())
        .sum::<f64>()
        / slates.len() as f64;
    let weights = weights(&slates, opts.clip.unwrap_or(f64::INFINITY));
    let ess = kish_ess(&weights);
    let model = estimators
        .contains(&Estimator::Dr)
        .then(|| RewardModel::fit_direct(&mut slates));
    for e in estimators {
        let xs = influence(*e, &slates, &weights, model.as_ref())?;
        let (value, stderr) = mean_se(&xs);
        report.estimates.push((
            e.as_str().to_string(),
            Estimate {
                value,
                stderr,
                lo: value - 1.96 * stderr,
                hi: value + 1.96 * stderr,
                ess,
                pages: xs.len(),
            },
        ));
    }
    Ok(report)
}

/// Reads logged pages into slates, caching the logging placement
/// probabilities pages of the same candidate set share.
struct SlateReader<'a> {
    calls: &'a HashMap<(u64, u64), f64>,
    target: &'a Policy,
    opts: &'a Options,
    /// (logit set, logit bits, rank) -> the logger's probability.
    mu_cache: HashMap<(u64, u64, usize), f64>,
}

impl SlateReader<'_> {
    /// The usable pages' slates; what is left out counted in `report`.
    fn read(&mut self, pages: &[PageLog], report: &mut Report) -> Vec<Slate> {
        let mut slates = Vec::new();
        for p in pages {
            if p.book == Book::Listing || p.mode == "listing" {
                report.skipped_listing += 1;
                continue;
            }
            if p.ranked.is_empty() || p.first_rank == 0 {
                report.skipped_old += 1;
                continue;
            }
            let logits = if p.logits.len() == p.ranked.len() {
                p.logits.clone()
            } else {
                derived_logits(&p.ranked, &p.params, &p.policy)
            };
            if p.policy != "stochastic" || logits.is_empty() {
                report.skipped_deterministic += 1;
                continue;
            }
            slates.push(self.slate(p, &logits));
        }
        slates
    }

    /// A `stochastic` page with its logging `logits`.
    fn slate(&mut self, p: &PageLog, logits: &[f64]) -> Slate {
        let first = p.first_rank - 1;
        let ranks: Vec<usize> = (first..first + p.shown.len())
            .filter(|&k| k < p.ranked.len())
            .collect();
        let mu = self.logging_placements(logits, &ranks);
        let (pi, target_items) = target_placements(p, self.target, &ranks, self.opts);
        let keys: Vec<u64> = ranks.iter().map(|&k| p.ranked[k].model.0).collect();
        let calls: Vec<f64> = ranks
            .iter()
            .map(|&k| {
                self.calls
                    .get(&(p.page, k as u64 + 1))
                    .copied()
                    .unwrap_or(0.0)
            })
            .collect();
        Slate {
            ranks,
            keys,
            calls,
            mu,
            pi,
            target_gamma: Vec::new(),
            target_items,
        }
    }

    /// The logger's probability of the logged item at each of `ranks`:
    /// the logged item at rank k is ranked[k]. Its placement probability
    /// depends on the set of logits and its own: pages of the same
    /// candidate set share them, in whatever order drawn.
    fn logging_placements(&mut self, logits: &[f64], ranks: &[usize]) -> Vec<f64> {
        let mut sorted = logits.to_vec();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let set = hash_f64s(&sorted);
        let key = |k: usize| (set, logits[k].to_bits(), k);
        let need: Vec<(usize, usize)> = ranks
            .iter()
            .filter(|&&k| !self.mu_cache.contains_key(&key(k)))
            .map(|&k| (k, k))
            .collect();
        if !need.is_empty() {
            let s = Sampling {
                seed: self.opts.sampling.seed ^ set,
                ..self.opts.sampling
            };
            for (pl, &(_, k)) in placement_probabilities(logits, &need, &s).iter().zip(&need) {
                self.mu_cache.insert(key(k), pl.p);
            }
        }
        ranks.iter().map(|&k| self.mu_cache[&key(k)]).collect()
    }
}

/// Each slate's importance weights `pi / mu`, clipped at `clip` (0 where
/// the target never places the item there).
fn weights(slates: &[Slate], clip: f64) -> Vec<Vec<f64>> {
    slates
        .iter()
        .map(|s| {
            s.pi.iter()
                .zip(&s.mu)
                .map(|(pi, mu)| if *pi == 0.0 { 0.0 } else { (pi / mu).min(clip) })
                .collect()
        })
        .collect()
}

/// Kish's effective sample size of every (page, rank) weight.
fn kish_ess(weights: &[Vec<f64>]) -> f64 {
    let all: Vec<f64> = weights.iter().flatten().copied().collect();
    let (sw, sw2) = (
        all.iter().sum::<f64>(),
        all.iter().map(|w| w * w).sum::<f64>(),
    );
    if sw2 > 0.0 {
        sw * sw / sw2
    } else {
        0.0
    }
}

/// Per page, the estimator's term: the estimate is their mean, their spread
/// its standard error. `model`: the reward model, for `dr`.
fn influence(
    e: Estimator,
    slates: &[Slate],
    weights: &[Vec<f64>],
    model: Option<&RewardModel>,
) -> Result<Vec<f64>, String> {
    Ok(match e {
        Estimator::Ips => slates
            .iter()
            .zip(weights)
            .map(|(s, w)| s.calls.iter().zip(w).map(|(c, w)| c * w).sum())
            .collect(),
        Estimator::Snips => snips_influence(slates, weights),
        Estimator::Dr => {
            let m = model.ok_or("no reward model")?;
            slates
                .iter()
                .zip(weights)
                .map(|(s, w)| {
                    (0..s.ranks.len())
                        .map(|j| {
                            let theta = m.theta(s.ranks[j]);
                            let direct = theta * s.target_gamma[j];
                            let predicted = theta * m.gamma(s.keys[j]);
                            direct + w[j] * (s.calls[j] - predicted)
                        })
                        .sum()
                })
                .collect()
        }
    })
}

/// The target's probability of each logged item at its rank, and its
/// placement distribution per shown rank (for the direct method).
fn target_placements(
    p: &PageLog,
    target: &Policy,
    ranks: &[usize],
    opts: &Options,
) -> (Vec<f64>, Vec<Vec<(u64, f64)>>) {
    let cands: Vec<Candidate> = p.ranked.iter().map(|c| c.candidate(c.model.0)).collect();
    match *target {
        Policy::Stochastic { temperature } => {
            let t = temperature.max(1e-6);
            let logits: Vec<f64> = p.ranked.iter().map(|c| c.relevance / t).collect();
            let pairs: Vec<(usize, usize)> = ranks.iter().map(|&k| (k, k)).collect();
            let s = Sampling {
                seed: opts.sampling.seed ^ 0x5EED,
                ..opts.sampling
            };
            let pi = placement_probabilities(&logits, &pairs, &s)
                .iter()
                .map(|x| x.p)
                .collect();
            // The direct method's placements by plain sampling (unbiased;
            // no division by them).
            let draws = 512;
            let mut counts: Vec<HashMap<u64, f64>> = vec![HashMap::new(); ranks.len()];
            for d in 0..draws {
                let order = rank(target, &cands, &ExposureBook::new(), p.seed ^ d);
                for (j, &k) in ranks.iter().enumerate() {
                    if let Some(r) = order.get(k) {
                        *counts[j].entry(cands[r.index].key).or_default() += 1.0 / draws as f64;
                    }
                }
            }
            let items = counts
                .into_iter()
                .map(|m| m.into_iter().collect())
                .collect();
            (pi, items)
        }
        _ => {
            let order = rank(target, &cands, &ExposureBook::new(), 0);
            let pi = ranks
                .iter()
                .map(|&k| f64::from(u8::from(order.get(k).map(|r| r.index) == Some(k))))
                .collect();
            let items = ranks
                .iter()
                .map(|&k| {
                    order
                        .get(k)
                        .map(|r| vec![(cands[r.index].key, 1.0)])
                        .unwrap_or_default()
                })
                .collect();
            (pi, items)
        }
    }
}

/// Self-normalised IPS, per rank (each rank's weights normalised to mean 1
/// over the pages showing it), as per-page influence values whose mean is
/// the estimate and whose spread gives its delta-method standard error.
fn snips_influence(slates: &[Slate], weights: &[Vec<f64>]) -> Vec<f64> {
    let mut sum_w: HashMap<usize, (f64, f64, usize)> = HashMap::new();
    for (s, w) in slates.iter().zip(weights) {
        for (j, &k) in s.ranks.iter().enumerate() {
            let e = sum_w.entry(k).or_default();
            e.0 += w[j];
            e.1 += w[j] * s.calls[j];
            e.2 += 1;
        }
    }
    // Per rank: mean weight B_k and ratio R_k = sum w c / sum w.
    let per: HashMap<usize, (f64, f64)> = sum_w
        .into_iter()
        .map(|(k, (w, wc, n))| {
            let b = w / n as f64;
            let r = if w > 0.0 { wc / w } else { 0.0 };
            (k, (b, r))
        })
        .collect();
    slates
        .iter()
        .zip(weights)
        .map(|(s, w)| {
            s.ranks
                .iter()
                .enumerate()
                .map(|(j, k)| {
                    let (b, r) = per[k];
                    if b > 0.0 {
                        r + w[j] * (s.calls[j] - r) / b
                    } else {
                        0.0
                    }
                })
                .sum()
        })
        .collect()
}

/// The doubly robust estimator's reward model: position-based,
/// `E[calls | item d at rank k] = theta_k * gamma_d`, fitted on the log by
/// alternating the two closed-form Poisson maximum-likelihood updates
/// (`gamma_d = calls_d / sum theta over d's impressions`, shrunk toward the
/// hub's mean rate with one pseudo-impression; `theta_k = calls_k / sum
/// gamma over rank k's impressions`), 50 rounds.
pub struct RewardModel {
    theta: HashMap<usize, f64>,
    gamma: HashMap<u64, f64>,
    prior: f64,
}

impl RewardModel {
    /// Fit on `slates` and set each slate's direct-method terms from it.
    fn fit_direct(slates: &mut [Slate]) -> RewardModel {
        let m = RewardModel::fit(slates);
        for s in slates {
            s.target_gamma = s
                .target_items
                .iter()
                .map(|items| items.iter().map(|(d, p)| p * m.gamma(*d)).sum())
                .collect();
        }
        m
    }

    fn fit(slates: &[Slate]) -> RewardModel {
        let mut theta: HashMap<usize, f64> = HashMap::new();
        let mut gamma: HashMap<u64, f64> = HashMap::new();
        for s in slates {
            for (j, &k) in s.ranks.iter().enumerate() {
                theta.insert(k, 1.0 / ((k + 2) as f64).log2());
                gamma.insert(s.keys[j], 0.0);
            }
        }
        let total: f64 = slates.iter().flat_map(|s| &s.calls).sum();
        let mut prior = 0.0;
        for _ in 0..50 {
            let mut exam: HashMap<u64, (f64, f64)> = HashMap::new();
            let mut exam_total = 0.0;
            for s in slates {
                for (j, &k) in s.ranks.iter().enumerate() {
                    let e = exam.entry(s.keys[j]).or_default();
                    e.0 += s.calls[j];
                    e.1 += theta[&k];
                    exam_total += theta[&k];
                }
            }
            prior = if exam_total > 0.0 {
                total / exam_total
            } else {
                0.0
            };
            for (d, (c, e)) in exam {
                gamma.insert(d, (c + prior) / (e + 1.0));
            }
            let mut at: HashMap<usize, (f64, f64)> = HashMap::new();
            for s in slates {
                for (j, &k) in s.ranks.iter().enumerate() {
                    let e = at.entry(k).or_default();
                    e.0 += s.calls[j];
                    e.1 += gamma[&s.keys[j]];
                }
            }
            for (k, (c, g)) in at {
                theta.insert(k, if g > 0.0 { c / g } else { 0.0 });
            }
        }
        RewardModel {
            theta,
            gamma,
            prior,
        }
    }

    fn theta(&self, k: usize) -> f64 {
        self.theta.get(&k).copied().unwrap_or(0.0)
    }

    fn gamma(&self, d: u64) -> f64 {
        self.gamma.get(&d).copied().unwrap_or(self.prior)
    }
}

fn mean_se(xs: &[f64]) -> (f64, f64) {
    let n = xs.len().max(1) as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, (var / n).sqrt())
}

fn hash_f64s(xs: &[f64]) -> u64 {
    // FNV-1a over the bits: identical candidate lists share placements.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for x in xs {
        for b in x.to_bits().to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}
