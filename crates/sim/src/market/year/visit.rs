//! A visit (docs/study.md, One day): its query type's page under the
//! policy, its exposure and nDCG@10, a look down the page and at most one
//! adoption by a multinomial logit with an outside option, with the
//! visitor's expected surplus (welfare).

use super::super::sim::{fair_scores_with, static_score, top, Dice, Scored, StudyPolicy, NEVER};
use super::super::world::QueryType;
use super::{Scratch, Stream, Year};

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
        self.fill_page(qt, g, vi);
        let dcg = self.expose(qt);
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
        let page_len = self.terms.page_len;
        let d = g.saturating_sub(self.terms.pilot);
        td.day = g as u32;
        td.active.clear();
        td.active.extend(
            ty.cands
                .iter()
                .enumerate()
                .filter(|(_, c)| active[c.model as usize])
                .map(|(i, _)| i as u32),
        );
        td.idcg = ideal_dcg(ty, td.active.iter().map(|&i| i as usize), page_len);
        let models = &self.world.models;
        td.idcg_full = ideal_dcg(
            ty,
            (0..ty.cands.len())
                .filter(|&i| models[ty.cands[i].model as usize].entry_day as usize <= d),
            page_len,
        );
        if self.spec.policy.is_static() {
            let scored = &mut self.scratch.scored;
            scored.clear();
            for &i in &td.active {
                let c = &ty.cands[i as usize];
                let m = c.model as usize;
                let s = static_score(
                    &self.spec.policy,
                    c.relevance,
                    self.models.pop[m],
                    self.models.quantile[m],
                );
                scored.push(Scored {
                    score: s,
                    key: self.world.models[m].key,
                    item: i,
                });
            }
            top(scored, page_len);
            td.page.clear();
            td.page.extend(scored.iter().take(page_len).map(|x| x.item));
        }
    }

    /// The visit's page into `scratch.page`: FairCo's and the stochastic
    /// policy's are drawn per visit, the static ones' are the day's.
    fn fill_page(&mut self, qt: usize, g: usize, vi: usize) {
        let ty = &self.world.types[qt];
        let td = &self.types[qt];
        let page_len = self.terms.page_len;
        let Scratch {
            scored,
            page,
            ratios,
            ..
        } = &mut self.scratch;
        page.clear();
        match self.spec.policy {
            StudyPolicy::Fair { lambda } | StudyPolicy::FairImpact { lambda } => {
                let x = if matches!(self.spec.policy, StudyPolicy::Fair { .. }) {
                    &self.models.exposure
                } else {
                    &self.models.impact
                };
                scored.clear();
                for &i in &td.active {
                    let c = &ty.cands[i as usize];
                    scored.push(Scored {
                        score: c.relevance,
                        key: self.world.models[c.model as usize].key,
                        item: c.model,
                    });
                }
                let m = &self.models;
                fair_scores_with(
                    scored,
                    x,
                    &m.merit,
                    &m.seen,
                    self.tally.pages,
                    lambda,
                    ratios,
                );
                // Back from model to candidate index.
                for (s, &i) in scored.iter_mut().zip(&td.active) {
                    s.item = i;
                }
                top(scored, page_len);
                page.extend(scored.iter().take(page_len).map(|x| x.item));
            }
            StudyPolicy::Stochastic { temperature } => {
                let t = temperature.max(1e-6);
                let mut gd = Dice::new(&[self.spec.behaviour_seed, g as u64, vi as u64, 3]);
                scored.clear();
                for &i in &td.active {
                    let c = &ty.cands[i as usize];
                    let g = -(-gd.open().ln()).ln();
                    scored.push(Scored {
                        score: c.relevance / t + g,
                        key: self.world.models[c.model as usize].key,
                        item: i,
                    });
                }
                top(scored, page_len);
                page.extend(scored.iter().take(page_len).map(|x| x.item));
            }
            _ => page.extend_from_slice(&td.page),
        }
    }

    /// The page's exposure (and, for FairCo's book, merit and rounds); its
    /// DCG@10.
    fn expose(&mut self, qt: usize) -> f64 {
        let ty = &self.world.types[qt];
        let td = &self.types[qt];
        let m = &mut self.models;
        self.tally.pages += 1;
        if matches!(
            self.spec.policy,
            StudyPolicy::Fair { .. } | StudyPolicy::FairImpact { .. }
        ) {
            for &i in &td.active {
                let c = &ty.cands[i as usize];
                m.merit[c.model as usize] += c.relevance.max(0.0);
                m.seen[c.model as usize] = true;
            }
        }
        let mut dcg = 0.0;
        for (j, &i) in self.scratch.page.iter().enumerate() {
            let c = &ty.cands[i as usize];
            m.exposure[c.model as usize] += self.terms.looks[j];
            dcg += c.grade as f64 / ((j + 2) as f64).log2();
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

/// The ideal DCG of the candidates `items` of a type on a page of `page_len`:
/// the best grades first (grades are 0, 1, 2, so counting them is sorting).
fn ideal_dcg(ty: &QueryType, items: impl Iterator<Item = usize>, page_len: usize) -> f64 {
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
            dcg += grade as f64 / ((j + 2) as f64).log2();
            j += 1;
        }
    }
    dcg
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
