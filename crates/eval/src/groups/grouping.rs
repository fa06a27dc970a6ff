//! How models are grouped (builder, popularity tier, age band) and the
//! assigner that places each candidate in its group.

use std::collections::HashMap;

use hubsearch_core::{BuilderKey, ModelKey};
use serde::Serialize;

use super::cards::{CardFacts, Cards};

/// Where a tier's popularity quantile comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TierSource {
    /// The quantile the page logged for the candidate (what the hub knew
    /// when it ranked), falling back to the cards' when a page has no
    /// candidate list.
    Logged,
    /// The quantile of the card's downloads among the cards given.
    Cards,
}

/// How models are grouped.
#[derive(Debug, Clone, PartialEq)]
pub enum Grouping {
    /// One group per builder.
    Builder,
    /// Popularity tiers: quantile cut points, ascending, in (0, 1).
    Tier { cuts: Vec<f64>, source: TierSource },
    /// Age at page time in days: cut points, ascending, > 0.
    Age { cuts_days: Vec<f64> },
}

/// The label of the group of models nothing places.
pub const UNKNOWN: &str = "unknown";

impl Grouping {
    pub fn name(&self) -> &'static str {
        match self {
            Grouping::Builder => "builder",
            Grouping::Tier { .. } => "tier",
            Grouping::Age { .. } => "age",
        }
    }

    /// Cut points must be finite and strictly ascending (tiers in (0, 1),
    /// ages above 0).
    pub fn check(&self) -> Result<(), String> {
        let (cuts, what, lo, hi) = match self {
            Grouping::Builder => return Ok(()),
            Grouping::Tier { cuts, .. } => (cuts, "--tiers", 0.0, 1.0),
            Grouping::Age { cuts_days } => (cuts_days, "--age-days", 0.0, f64::INFINITY),
        };
        for c in cuts {
            if !(c.is_finite() && *c > lo && *c < hi) {
                return Err(format!(
                    "{what} {c}: each cut point must be a number in ({lo}, {hi})"
                ));
            }
        }
        if cuts.windows(2).any(|w| w[0] >= w[1]) {
            return Err(format!("{what}: cut points must be strictly ascending"));
        }
        Ok(())
    }

    /// The fixed groups of tiers and ages, in order (a builder grouping's
    /// groups are found in the data).
    pub fn bucket_labels(&self) -> Vec<String> {
        let (cuts, var, unit) = match self {
            Grouping::Builder => return Vec::new(),
            Grouping::Tier { cuts, .. } => (cuts, "q", ""),
            Grouping::Age { cuts_days } => (cuts_days, "age", "d"),
        };
        if cuts.is_empty() {
            return vec!["all".into()];
        }
        let mut out = vec![format!("{var} < {}{unit}", cuts[0])];
        for w in cuts.windows(2) {
            out.push(format!("{}{unit} <= {var} < {}{unit}", w[0], w[1]));
        }
        out.push(format!("{var} >= {}{unit}", cuts[cuts.len() - 1]));
        out
    }

    /// Whether the grouping reads cards (ages always; tiers by the cards'
    /// downloads).
    pub fn needs_cards(&self) -> bool {
        matches!(
            self,
            Grouping::Age { .. }
                | Grouping::Tier {
                    source: TierSource::Cards,
                    ..
                }
        )
    }

    /// One line saying what the groups are.
    pub fn describe(&self) -> String {
        match self {
            Grouping::Builder => "one group per builder (the model id's namespace, as logged)".into(),
            Grouping::Tier { cuts, source } => format!(
                "popularity tiers by download quantile q (mid-rank, 1 = most downloaded) cut at {}; q from {}",
                join(cuts),
                match source {
                    TierSource::Logged => "the quantile each page logged for the candidate (cards' downloads where a page logged none)",
                    TierSource::Cards => "the cards' downloads",
                }
            ),
            Grouping::Age { cuts_days } => format!(
                "model age at page time in days (page time minus the card's created date, else its last-modified date) cut at {}; `unknown`: no card, no date, or a date after the page",
                join(cuts_days)
            ),
        }
    }
}

fn join(v: &[f64]) -> String {
    v.iter().map(f64::to_string).collect::<Vec<_>>().join(", ")
}

/// Index of the bucket of `x` among ascending cut points.
fn bucket(cuts: &[f64], x: f64) -> usize {
    cuts.iter().take_while(|c| x >= **c).count()
}

/// Candidate slots the grouping could not place, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Unplaced {
    /// Tier: neither a logged quantile nor a card.
    pub no_quantile: usize,
    /// Age: the model has no card.
    pub no_card: usize,
    /// Age: the card has neither a created nor a last-modified date.
    pub no_date: usize,
    /// Age: the card's date is after the page (the card changed since).
    pub dated_after_page: usize,
}

/// What is known of a candidate where it is placed.
pub(super) struct Ctx<'a> {
    pub model: ModelKey,
    pub builder: BuilderKey,
    /// The builder's name where the record names it.
    pub builder_name: Option<&'a str>,
    pub quantile: Option<f64>,
    pub time: u64,
}

impl<'a> Ctx<'a> {
    /// A model and builder named by their ids, at `time`, with no logged
    /// quantile (a shown item, a paid call, a judged document).
    pub fn named(model: &str, builder: &'a str, time: u64) -> Ctx<'a> {
        Ctx {
            model: ModelKey::of(model),
            builder: BuilderKey::of(builder),
            builder_name: Some(builder),
            quantile: None,
            time,
        }
    }
}

/// Places candidates in groups, interning the groups' labels.
pub(super) struct Assigner<'a> {
    grouping: &'a Grouping,
    cards: Option<&'a Cards>,
    names: HashMap<u64, String>,
    /// The groups' labels: a group is its index here.
    pub labels: Vec<String>,
    index: HashMap<String, usize>,
    pub unplaced: Unplaced,
}

impl<'a> Assigner<'a> {
    pub fn new(
        grouping: &'a Grouping,
        cards: Option<&'a Cards>,
        names: HashMap<u64, String>,
    ) -> Self {
        let mut a = Assigner {
            grouping,
            cards,
            names,
            labels: Vec::new(),
            index: HashMap::new(),
            unplaced: Unplaced::default(),
        };
        for l in grouping.bucket_labels() {
            a.intern(l);
        }
        a
    }

    fn intern(&mut self, label: String) -> usize {
        if let Some(&i) = self.index.get(&label) {
            return i;
        }
        self.labels.push(label.clone());
        self.index.insert(label, self.labels.len() - 1);
        self.labels.len() - 1
    }

    /// The cards the grouping reads, if any.
    pub fn cards(&self) -> Option<&'a Cards> {
        self.cards
    }

    fn card(&self, model: u64) -> Option<&'a CardFacts> {
        self.cards.and_then(|c| c.get(model))
    }

    /// The group of a candidate (interning its label if new).
    pub fn group(&mut self, c: &Ctx) -> usize {
        match self.grouping {
            Grouping::Builder => {
                let label = match c.builder_name {
                    Some(n) => n.to_string(),
                    None => self
                        .names
                        .get(&c.builder.0)
                        .cloned()
                        .unwrap_or_else(|| format!("#{:016x}", c.builder.0)),
                };
                self.intern(label)
            }
            Grouping::Tier { cuts, source } => {
                let from_card = || {
                    self.cards
                        .and_then(|cs| cs.get(c.model.0).map(|f| cs.quantile(f.downloads)))
                };
                let q = match source {
                    TierSource::Logged => c.quantile.or_else(from_card),
                    TierSource::Cards => from_card(),
                };
                match q {
                    Some(q) => bucket(cuts, q),
                    None => {
                        self.unplaced.no_quantile += 1;
                        self.intern(UNKNOWN.into())
                    }
                }
            }
            Grouping::Age { cuts_days } => {
                let date = match self.card(c.model.0) {
                    None => Err(0),
                    Some(f) => f.date().ok_or(1),
                };
                match date {
                    Ok(d) if d <= c.time as i64 => {
                        bucket(cuts_days, (c.time as i64 - d) as f64 / 86_400.0)
                    }
                    other => {
                        match other {
                            Err(0) => self.unplaced.no_card += 1,
                            Err(_) => self.unplaced.no_date += 1,
                            Ok(_) => self.unplaced.dated_after_page += 1,
                        }
                        self.intern(UNKNOWN.into())
                    }
                }
            }
        }
    }
}
