//! A visit (docs/study.md, One day): its query type's page under the
//! policy, its exposure and nDCG@10, a look down the page and at most one
//! adoption by a multinomial logit with an outside option, with the
//! visitor's expected surplus (welfare).

use super::super::sim::{
    fair_scores_with, static_score, top, Dice, Scored, StudyPolicy, TopK, NEVER,
};
use super::super::world::QueryType;
use super::{Book, Listed, Scratch, Stream, TypeDay, Year};

/// Most models one visitor looks at.
const MAX_LOOKED: usize = 16;

/// A model a visitor looked at, with its logit weight.
#[derive(Debug, Clone, Copy, Default)]
struct Looked {
    model: u32,
    weight: f64,
    util: f64,
}

impl Year<'_> {
    /// The day's visits: systematic sampling of the demand (every type gets
    /// floor or ceil of its share), in shuffled order.
    pub(super) fn sample_visits(&mut self, g: usize) {
        let mut dd = Dice::new(&[self.spec.behaviour_seed, g as u64, 1]);
        let v = self.spec.visits_per_day;
        let cdf = &self.terms.cdf;
        let order = &mut self.scratch.order;
        order.clear();
        let u0 = dd.f64();
        let mut t = 0usize;
        for k in 0..v {
            let x = (u0 + k as f64) / v as f64;
            while t + 1 < cdf.len() && cdf[t] <= x {
                t += 1;
            }
            order.push(t);
        }
        for i in (1..order.len()).rev() {
            let j = (dd.next_u64() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
    }

    /// One visit of query type `qt` on simulated day `g`: a page, its
    /// exposure, a look and at most one adoption (true if it adopted). A
    /// visit whose type has nothing listed counts too: nDCG 0 (when the type
    /// ever had a graded candidate) and no surplus.
    pub(super) fn visit(&mut self, g: usize, vi: usize, qt: usize) -> bool {
        if self.types[qt].day != g as u32 {
            self.refresh_type(qt, g);
        }
        let counting = g >= self.terms.pilot;
        if counting {
            self.tally.period.visits += 1;
            self.tally.total.visits += 1;
        }
        if self.types[qt].active.is_empty() {
            if counting && self.types[qt].idcg_full > 0.0 {
                self.tally.period.ndcg_n += 1;
                self.tally.total.ndcg_n += 1;
            }
            return false;
        }
        let mut vd = Dice::new(&[self.spec.behaviour_seed, g as u64, vi as u64, 2]);
        let booked = self.fill_page(qt, g, vi);
        let dcg = self.expose(qt, booked);
        let (chosen, surplus) = self.choose(qt, &mut vd);
        if counting {
            let td = &self.types[qt];
            for v in [&mut self.tally.period, &mut self.tally.total] {
                v.welfare_sum += surplus;
                if td.idcg_full > 0.0 {
                    v.ndcg_sum += dcg / td.idcg_full;
                    v.ndcg_n += 1;
                }
                if td.idcg > 0.0 {
                    v.listed_sum += dcg / td.idcg;
                    v.listed_n += 1;
                }
                v.adoptions += u64::from(chosen.is_some());
            }
        }
        match chosen {
            Some(m) => {
                if !counting {
                    self.models.pilot_adoptions[m as usize] += 1;
                }
                self.adopt(m, g, &mut vd);
                true
            }
            None => false,
        }
    }

    /// Type `qt`'s state for simulated day `g`: its listed candidates,
    /// their ideal DCG and that of every candidate entered by then, and,
    /// for a static policy, the day's page.
    fn refresh_type(&mut self, qt: usize, g: usize) {
        let ty = &self.world.types[qt];
        let td = &mut self.types[qt];
        let active = &self.models.active;
        let terms = &self.terms;
        let page_len = terms.page_len;
        let d = g.saturating_sub(terms.pilot);
        if td.day == NEVER {
            let mut keys: Vec<u64> = ty
                .cands
                .iter()
                .map(|c| terms.keys[c.model as usize])
                .collect();
            keys.sort_unstable();
            td.distinct = keys.windows(2).all(|w| w[0] != w[1]);
        }
        td.day = g as u32;
        td.active.clear();
        td.listed.clear();
        let per_visit = !self.spec.policy.is_static();
        for (i, c) in ty.cands.iter().enumerate() {
            let m = c.model as usize;
            if active[m] {
                td.active.push(i as u32);
                if per_visit {
                    td.listed.push(Listed {
                        relevance: c.relevance,
                        key: terms.keys[m],
                        slot: terms.slot[m],
                    });
                }
            }
        }
        let discount = &terms.discount;
        td.idcg = ideal_dcg(ty, td.active.iter().map(|&i| i as usize), discount);
        td.idcg_full = ideal_dcg(
            ty,
            (0..ty.cands.len())
                .filter(|&i| terms.entry_day[ty.cands[i].model as usize] as usize <= d),
            discount,
        );
        if !per_visit {
            let Scratch {
                scored,
                ratio,
                topk,
                ..
            } = &mut self.scratch;
            let score = |i: u32| {
                let c = &ty.cands[i as usize];
                let m = c.model as usize;
                let s = static_score(
                    &self.spec.policy,
                    c.relevance,
                    self.models.pop[m],
                    self.models.quantile[m],
                );
                (s, terms.keys[m])
            };
            if td.distinct && !self.o.slow_pages {
                // As the per-visit pages: kept as the scores come.
                ratio.clear();
                topk.start(page_len);
                for (j, &i) in td.active.iter().enumerate() {
                    let (s, _) = score(i);
                    ratio.push(s);
                    topk.offer(s, j as u32);
                }
                topk.finish(scored, |j| {
                    let i = td.active[j as usize];
                    Scored {
                        score: ratio[j as usize],
                        key: terms.keys[ty.cands[i as usize].model as usize],
                        item: i,
                    }
                });
            } else {
                scored.clear();
                for &i in &td.active {
                    let (s, key) = score(i);
                    scored.push(Scored {
                        score: s,
                        key,
                        item: i,
                    });
                }
                top(scored, page_len);
            }
            td.page.clear();
            td.page.extend(scored.iter().take(page_len).map(|x| x.item));
        }
    }

    /// The visit's page into `scratch.page`: FairCo's and the stochastic
    /// policy's are drawn per visit, the static ones' are the day's. True
    /// when FairCo's merit of the type's listed candidates is already
    /// booked for this page (the fast path books it as it reads it).
    ///
    /// The fast path (a type whose candidates' tie keys are distinct, so no
    /// model is a candidate twice; not with `o.slow_pages`) does the same
    /// floating-point operations in the same order as the general one
    /// (`fair_scores_with`, then `top`): each candidate's ratio
    /// `x / merit` and the running max first, then `relevance + lambda *
    /// (pages * max(0, max - ratio))`, a candidate without a ratio getting
    /// `relevance + lambda * 0`; its page is the best `page_len` by the
    /// same strict order, kept as the scores come (`TopK`). Bit for bit the
    /// same pages (a test runs both). FairCo's "seen, with merit" is
    /// `merit > 0` on both paths: merit grows only when a model is a
    /// candidate (`Book`).
    fn fill_page(&mut self, qt: usize, g: usize, vi: usize) -> bool {
        let ty = &self.world.types[qt];
        let td = &self.types[qt];
        let page_len = self.terms.page_len;
        let fast = td.distinct && !self.o.slow_pages;
        let Scratch {
            scored,
            page,
            ratios,
            ratio,
            topk,
            book_x,
            book_merit,
            book_seen,
            ..
        } = &mut self.scratch;
        page.clear();
        match self.spec.policy {
            StudyPolicy::Fair { lambda } | StudyPolicy::FairImpact { lambda } if fast => {
                let tau = self.tally.pages as f64;
                let book = &mut self.models.book;
                fair_fast(td, book, tau, lambda, page_len, ratio, topk, scored);
                page.extend(scored.iter().map(|x| x.item));
                return true;
            }
            StudyPolicy::Fair { lambda } | StudyPolicy::FairImpact { lambda } => {
                // The visit's candidates' books, by position (`item`);
                // "seen" is "has merit" (`Book`).
                let m = &self.models;
                book_x.clear();
                book_merit.clear();
                book_seen.clear();
                scored.clear();
                for (j, &i) in td.active.iter().enumerate() {
                    let c = &ty.cands[i as usize];
                    let k = c.model as usize;
                    let b = m.book[self.terms.slot[k] as usize];
                    book_x.push(b.x);
                    book_merit.push(b.merit);
                    book_seen.push(b.merit > 0.0);
                    scored.push(Scored {
                        score: c.relevance,
                        key: self.terms.keys[k],
                        item: j as u32,
                    });
                }
                fair_scores_with(
                    scored,
                    book_x,
                    book_merit,
                    book_seen,
                    self.tally.pages,
                    lambda,
                    ratios,
                );
                // Back from position to candidate index.
                for s in scored.iter_mut() {
                    s.item = td.active[s.item as usize];
                }
                top(scored, page_len);
                page.extend(scored.iter().take(page_len).map(|x| x.item));
            }
            StudyPolicy::Stochastic { temperature } => {
                let t = temperature.max(1e-6);
                let mut gd = Dice::new(&[self.spec.behaviour_seed, g as u64, vi as u64, 3]);
                scored.clear();
                if fast {
                    ratio.resize(td.listed.len(), 0.0);
                    topk.start(page_len);
                    for (j, (l, r)) in td.listed.iter().zip(ratio.iter_mut()).enumerate() {
                        let g = -(-gd.open().ln()).ln();
                        *r = l.relevance / t + g;
                        topk.offer(*r, j as u32);
                    }
                    topk.finish(scored, |j| Scored {
                        score: ratio[j as usize],
                        key: td.listed[j as usize].key,
                        item: td.active[j as usize],
                    });
                    page.extend(scored.iter().map(|x| x.item));
                } else {
                    for &i in &td.active {
                        let c = &ty.cands[i as usize];
                        let g = -(-gd.open().ln()).ln();
                        scored.push(Scored {
                            score: c.relevance / t + g,
                            key: self.terms.keys[c.model as usize],
                            item: i,
                        });
                    }
                    top(scored, page_len);
                    page.extend(scored.iter().take(page_len).map(|x| x.item));
                }
            }
            _ => page.extend_from_slice(&td.page),
        }
        false
    }

    /// The page's exposure (and, for FairCo's book, merit and rounds,
    /// unless `booked` says `fill_page` booked the merit); its DCG@10.
    fn expose(&mut self, qt: usize, booked: bool) -> f64 {
        let ty = &self.world.types[qt];
        let td = &self.types[qt];
        let m = &mut self.models;
        let t = &self.terms;
        self.tally.pages += 1;
        if !booked
            && matches!(
                self.spec.policy,
                StudyPolicy::Fair { .. } | StudyPolicy::FairImpact { .. }
            )
        {
            for &i in &td.active {
                let c = &ty.cands[i as usize];
                m.book[t.slot[c.model as usize] as usize].merit += c.relevance.max(0.0);
            }
        }
        let mut dcg = 0.0;
        for (j, &i) in self.scratch.page.iter().enumerate() {
            let c = &ty.cands[i as usize];
            let k = t.slot[c.model as usize] as usize;
            m.exposure[k] += t.looks[j];
            if t.book_exposure {
                m.book[k].x += t.looks[j];
            }
            dcg += c.grade as f64 / t.discount[j];
        }
        dcg
    }

    // --- Adoption

    /// Look down the page, then choose at most one model (multinomial
    /// logit with an outside option). Also the visitor's expected surplus
    /// over adopting nothing given what was looked at:
    /// `ln(e^u0 + sum e^u_j) - u0` (the log-sum-exp of the logit).
    fn choose(&self, qt: usize, vd: &mut Dice) -> (Option<u32>, f64) {
        let ty = &self.world.types[qt];
        let o = self.o;
        let outside = o.outside_utility.exp();
        let mut total = outside;
        let mut looked = [Looked::default(); MAX_LOOKED];
        let mut n_looked = 0;
        let mut top = o.outside_utility;
        for (j, &i) in self.scratch.page.iter().enumerate() {
            if vd.f64() < self.terms.looks[j] && n_looked < looked.len() {
                let c = &ty.cands[i as usize];
                let util =
                    o.grade_weight * c.grade as f64 + self.terms.price_util[c.model as usize];
                let weight = util.exp();
                total += weight;
                top = top.max(util);
                looked[n_looked] = Looked {
                    model: c.model,
                    weight,
                    util,
                };
                n_looked += 1;
            }
        }
        // The log-sum-exp, shifted by its largest term (no overflow).
        let lse = top
            + ((o.outside_utility - top).exp()
                + looked[..n_looked]
                    .iter()
                    .map(|l| (l.util - top).exp())
                    .sum::<f64>())
            .ln();
        let surplus = lse - o.outside_utility;
        let mut u = vd.f64() * total - outside;
        for l in &looked[..n_looked] {
            if u >= 0.0 && u < l.weight {
                return (Some(l.model), surplus);
            }
            u -= l.weight;
        }
        (None, surplus)
    }

    /// Model `m` adopted on simulated day `g`. One simulated visit stands
    /// for `scale` real ones: at `scale` <= 1 the adoption is one stream of
    /// log-normal calls a day until the adopter churns (geometric life); above
    /// it, a fluid block of `scale` adopters (their calls summed, decaying by
    /// the churn each day), so a scaled visit is not one lumped adopter.
    fn adopt(&mut self, m: u32, g: usize, vd: &mut Dice) {
        let o = self.o;
        let scale = self.terms.scale;
        let mi = m as usize;
        if scale > 1.0 {
            let block = adopters_calls(o.calls_per_day_median, o.calls_per_day_sigma, scale, vd);
            self.models.fluid[mi] += block;
            self.models.new_today[mi] += block;
        } else {
            let r =
                (o.calls_per_day_median.ln() + o.calls_per_day_sigma * vd.normal()).exp() * scale;
            let life = if o.churn_per_day > 0.0 {
                1 + (vd.open().ln() / (1.0 - o.churn_per_day).ln()).floor() as usize
            } else {
                usize::MAX
            };
            self.models.rate[mi] += r;
            self.models.new_today[mi] += r;
            if let Some(end) = g.checked_add(life).filter(|e| *e < self.removals.len()) {
                self.removals[end].push(Stream {
                    model: m,
                    rate: r,
                    epoch: self.models.epoch[mi],
                });
            }
        }
        if g >= self.terms.pilot && self.models.first_call[mi] == NEVER {
            self.models.first_call[mi] = (g - self.terms.pilot) as u32;
        }
    }
}

/// The calls a day of `k` adopters, each log-normal (`median`, `sigma`):
/// drawn one by one up to 32 adopters, by the normal approximation of their
/// sum beyond (the central limit); a fractional adopter counts its share.
pub fn adopters_calls(median: f64, sigma: f64, k: f64, vd: &mut Dice) -> f64 {
    let n = k.floor();
    let frac = k - n;
    let one = |vd: &mut Dice| (median.ln() + sigma * vd.normal()).exp();
    let whole = if n <= 32.0 {
        (0..n as usize).map(|_| one(vd)).sum::<f64>()
    } else {
        let mean = median * (sigma * sigma / 2.0).exp();
        let sd = mean * ((sigma * sigma).exp() - 1.0).sqrt();
        (n * mean + n.sqrt() * sd * vd.normal()).max(0.0)
    };
    whole + if frac > 0.0 { frac * one(vd) } else { 0.0 }
}

/// The ideal DCG of the candidates `items` of a type on a page whose
/// positions' discounts are `discount` (`log2(j + 2)`, j from 0): the best
/// grades first (grades are 0, 1, 2, so counting them is sorting).
fn ideal_dcg(ty: &QueryType, items: impl Iterator<Item = usize>, discount: &[f64]) -> f64 {
    let page_len = discount.len();
    let mut count = [0usize; 3];
    for i in items {
        count[(ty.cands[i].grade as usize).min(2)] += 1;
    }
    let mut dcg = 0.0;
    let mut j = 0;
    for grade in [2usize, 1] {
        for _ in 0..count[grade] {
            if j >= page_len {
                return dcg;
            }
            dcg += grade as f64 / discount[j];
            j += 1;
        }
    }
    dcg
}

/// `Year::fill_page`'s fast path for FairCo (see there): every listed
/// candidate's ratio `x / merit` and their max, booking each candidate's
/// merit for this page once its ratio is read (no model twice), then each
/// score, `relevance + lambda * (tau * max(0, max - ratio))`, offered to
/// the page; the page's best `page_len` left in `scored`.
#[allow(clippy::too_many_arguments)]
fn fair_fast(
    td: &TypeDay,
    book: &mut [Book],
    tau: f64,
    lambda: f64,
    page_len: usize,
    ratio: &mut Vec<f64>,
    topk: &mut TopK,
    scored: &mut Vec<Scored>,
) {
    // The ratios and their max, booking each candidate's merit
    // for this page once its ratio is read (no model twice).
    ratio.resize(td.listed.len(), 0.0);
    let mut max = f64::NEG_INFINITY;
    for (l, r) in td.listed.iter().zip(ratio.iter_mut()) {
        let b = &mut book[l.slot as usize];
        *r = if b.merit > 0.0 {
            b.x / b.merit
        } else {
            f64::NAN
        };
        // f64::max ignores the NaN of "no ratio".
        max = f64::max(max, *r);
        b.merit += l.relevance.max(0.0);
    }
    // No ratio (NaN): max(0, max - NaN) is 0, the general
    // path's error of 0. Each score over its ratio, offered
    // to the page.
    topk.start(page_len);
    for (j, (l, r)) in td.listed.iter().zip(ratio.iter_mut()).enumerate() {
        let err = tau * (max - *r).max(0.0);
        *r = l.relevance + lambda * err;
        topk.offer(*r, j as u32);
    }
    topk.finish(scored, |j| Scored {
        score: ratio[j as usize],
        key: td.listed[j as usize].key,
        item: td.active[j as usize],
    });
}

#[cfg(test)]
mod tests {
    use super::super::super::sim::Dice;
    use super::adopters_calls;

    /// A block of k adopters calls k times a log-normal's mean a day on
    /// average, exactly drawn (k <= 32) or by the normal approximation.
    #[test]
    fn a_block_of_adopters_calls_k_times_the_mean() {
        let (median, sigma) = (20.0f64, 1.0f64);
        let mean = median * (sigma * sigma / 2.0).exp();
        for k in [1.0, 2.5, 20.0, 400.0] {
            let mut d = Dice::new(&[k as u64, 9]);
            let n = 20_000;
            let avg = (0..n)
                .map(|_| adopters_calls(median, sigma, k, &mut d))
                .sum::<f64>()
                / n as f64;
            assert!(
                (avg / (k * mean) - 1.0).abs() < 0.05,
                "k {k}: {avg} vs {}",
                k * mean
            );
        }
    }
}
