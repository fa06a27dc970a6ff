//! A builder's forward-looking money (docs/study.md, Builders): the calls a
//! model can expect over a horizon from its adopters now and the adoptions
//! it keeps winning, the expected profit under each hosting regime, and the
//! choice between them.

/// Sums over a horizon of `h` days of adopters who each stay another day
/// with probability `q = 1 - churn`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Horizon {
    /// Days.
    pub h: f64,
    /// `sum_{t=1..h} q^t`: expected calls per call-per-day of today's
    /// adopters.
    pub s1: f64,
    /// `sum_{t=1..h} sum_{s=1..t} q^(t-s)`: expected calls per
    /// call-per-day of adoption inflow kept up every day.
    pub s2: f64,
}

impl Horizon {
    /// The horizon's sums in closed form (`h` rounded down to whole days).
    pub fn new(churn: f64, h: f64) -> Horizon {
        let n = h.max(0.0).floor();
        let c = churn.clamp(0.0, 1.0);
        if c <= 0.0 {
            return Horizon {
                h: n,
                s1: n,
                s2: n * (n + 1.0) / 2.0,
            };
        }
        let q = 1.0 - c;
        let s1 = q * (1.0 - q.powf(n)) / c;
        Horizon {
            h: n,
            s1,
            s2: (n - s1) / c,
        }
    }

    /// Expected calls over the horizon from `rate` calls a day now and
    /// `inflow` new calls a day added every day.
    pub fn calls(&self, rate: f64, inflow: f64) -> f64 {
        rate * self.s1 + inflow * self.s2
    }
}

/// A model's money per call and per day under each regime.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Terms {
    /// Price net of the platform's fee.
    pub net_price: f64,
    /// Serverless cost per call.
    pub serverless_cost: f64,
    /// Dedicated cost per call (overhead only).
    pub dedicated_cost: f64,
    /// Dedicated fixed cost per day.
    pub dedicated_day: f64,
}

impl Terms {
    /// Expected profit over the horizon of `calls` expected calls, hosted
    /// on a dedicated instance (`dedicated`) or serverless.
    pub fn profit(&self, calls: f64, dedicated: bool, hz: &Horizon) -> f64 {
        if dedicated {
            (self.net_price - self.dedicated_cost) * calls - self.dedicated_day * hz.h
        } else {
            (self.net_price - self.serverless_cost) * calls
        }
    }

    /// Whether a model now on `dedicated` hosting, expecting `calls`, moves
    /// to (or stays on) a dedicated instance: the other regime must gain
    /// more than `hysteresis` x the instance's cost over the horizon.
    pub fn choose_dedicated(
        &self,
        calls: f64,
        dedicated: bool,
        hz: &Horizon,
        hysteresis: f64,
    ) -> bool {
        let gain = self.profit(calls, true, hz) - self.profit(calls, false, hz);
        let band = hysteresis * self.dedicated_day * hz.h;
        if dedicated {
            gain > -band
        } else {
            gain > band
        }
    }
}

/// A Poisson-free estimate that forgets: an exponentially weighted mean
/// with half-life `half_life` days, bias-corrected by its weight (so a young
/// model's estimate is the mean of its days so far).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Ewma {
    sum: f64,
    weight: f64,
}

impl Ewma {
    /// An estimate that starts at `x` with full weight (the pilot's).
    pub fn settled(x: f64) -> Ewma {
        Ewma {
            sum: x,
            weight: 1.0,
        }
    }

    /// Add a day's value, the past decayed by `k` = 0.5^(1/half_life).
    pub fn push(&mut self, x: f64, k: f64) {
        self.sum = self.sum * k + (1.0 - k) * x;
        self.weight = self.weight * k + (1.0 - k);
    }

    /// The estimate (0 before any day).
    pub fn get(&self) -> f64 {
        if self.weight > 0.0 {
            self.sum / self.weight
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The closed forms against the sums term by term.
    #[test]
    fn horizon_sums_match_brute_force() {
        for (c, h) in [(1.0 / 90.0, 90.0), (0.3, 7.0), (0.0, 12.0), (1.0, 5.0)] {
            let q: f64 = 1.0 - c;
            let n = h as i32;
            let s1: f64 = (1..=n).map(|t| q.powi(t)).sum();
            let s2: f64 = (1..=n)
                .map(|t| (1..=t).map(|s| q.powi(t - s)).sum::<f64>())
                .sum();
            let hz = Horizon::new(c, h);
            assert!((hz.s1 - s1).abs() < 1e-9 * s1.max(1.0), "s1 c={c}");
            assert!((hz.s2 - s2).abs() < 1e-9 * s2.max(1.0), "s2 c={c}");
        }
    }

    /// The dedicated instance pays when its saving per call times the calls
    /// beats its cost; the hysteresis band keeps the incumbent.
    #[test]
    fn hosting_choice_breaks_even_where_it_should() {
        let t = Terms {
            net_price: 0.001,
            serverless_cost: 0.0003,
            dedicated_cost: 0.0001,
            dedicated_day: 1.0,
        };
        let hz = Horizon::new(0.0, 10.0);
        // Break-even: 0.0002 x calls = 10  =>  50,000 calls.
        assert!(!t.choose_dedicated(49_000.0, false, &hz, 0.0));
        assert!(t.choose_dedicated(51_000.0, false, &hz, 0.0));
        // With a 10% band: a serverless model needs 55,000, a dedicated one
        // leaves below 45,000.
        assert!(!t.choose_dedicated(54_000.0, false, &hz, 0.1));
        assert!(t.choose_dedicated(46_000.0, true, &hz, 0.1));
        assert!(!t.choose_dedicated(44_000.0, true, &hz, 0.1));
        assert!((t.profit(50_000.0, true, &hz) - t.profit(50_000.0, false, &hz)).abs() < 1e-9);
    }

    #[test]
    fn ewma_is_the_mean_while_young_and_forgets_later() {
        let k = 0.5f64.powf(1.0 / 30.0);
        let mut e = Ewma::default();
        assert_eq!(e.get(), 0.0);
        e.push(4.0, k);
        assert!((e.get() - 4.0).abs() < 1e-12);
        e.push(4.0, k);
        assert!((e.get() - 4.0).abs() < 1e-12);
        // After one half-life of zeros a settled estimate of 2 halves.
        let mut s = Ewma::settled(2.0);
        for _ in 0..30 {
            s.push(0.0, k);
        }
        assert!((s.get() - 1.0).abs() < 1e-9);
    }
}
