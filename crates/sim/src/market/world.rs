//! The study's world (docs/study.md, World): the hub's models and builders,
//! the query types people search with and each type's candidates, retrieved
//! once with the real engine; then, per world seed, prices, costs and the
//! models that will enter during the year.

use std::collections::{HashMap, HashSet};

use hubsearch_core::{lang, Mode, ModelCard, SearchRequest};
use hubsearch_engine::Engine;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, Poisson};
use rayon::prelude::*;
use serde::Serialize;

use super::StudyOptions;

/// A model as the study sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Model {
    pub builder: u32,
    pub task: u32,
    /// Stable key (the id's), for ties.
    pub key: u64,
    /// 30-day downloads at the start (0 for entrants).
    pub downloads: f64,
    /// Parameters, millions (from the card's architecture, else the prior).
    pub params_m: f64,
    /// Whether `params_m` came from the card (architecture or id) or the prior.
    pub params_known: bool,
    /// Price per call, USD.
    pub price: f64,
    /// Day the model enters (0 = there at the start).
    pub entry_day: u32,
}

impl Model {
    /// A free model there from the start, its parameters the prior's 110M
    /// (not from a card): for tests here and in `tests/`.
    #[doc(hidden)]
    pub fn free(builder: u32, task: u32, key: u64, downloads: f64) -> Model {
        Model {
            builder,
            task,
            key,
            downloads,
            params_m: 110.0,
            params_known: false,
            price: 0.0,
            entry_day: 0,
        }
    }
}

/// A builder.
#[derive(Debug, Clone, Serialize)]
pub struct Builder {
    /// Outside the top 10% of builders by 2022 downloads (entrants: always).
    pub tail: bool,
    /// Arrived during the year.
    pub entrant: bool,
}

impl Builder {
    /// A builder there from the start (no entrant), in the tail or not.
    pub fn incumbent(tail: bool) -> Builder {
        Builder {
            tail,
            entrant: false,
        }
    }
}

/// One candidate of a query type.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Cand {
    pub model: u32,
    /// The engine's relevance, in [0, 1] (what the policies see).
    pub relevance: f64,
    /// How well the model does what was asked: 0, 1, 2 (what users see).
    pub grade: u8,
}

/// Whether a query type names a need or a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A task, with a language, dataset or model type.
    Need,
    /// A model's name (its id words): navigational.
    Name,
}

/// What people search for.
#[derive(Debug, Clone, Serialize)]
pub struct QueryType {
    pub text: String,
    pub kind: Kind,
    pub task: u32,
    /// Sum of 2022 downloads of the models whose own type this is (the
    /// demand calibration).
    pub downloads: f64,
    pub cands: Vec<Cand>,
}

/// The part of the world that comes from the index, the same for every seed.
#[derive(Debug, Clone)]
pub struct Base {
    pub models: Vec<Model>,
    pub builders: Vec<Builder>,
    pub tasks: Vec<String>,
    pub types: Vec<QueryType>,
    /// Models of the hub without a task (no query type reaches them).
    pub models_without_task: usize,
}

/// Share of the hub that can ever be shown.
#[derive(Debug, Clone, Serialize)]
pub struct Coverage {
    pub models: usize,
    pub models_with_task: usize,
    pub models_covered: usize,
    /// Covered by a need (not only by its own name).
    pub models_covered_by_needs: usize,
    pub builders: usize,
    pub builders_covered: usize,
    pub builders_covered_by_needs: usize,
    pub query_types: usize,
    pub name_types: usize,
}

impl Base {
    /// Coverage of the query types' candidate lists.
    pub fn coverage(&self) -> Coverage {
        let covered = |needs_only: bool| -> (usize, usize) {
            let mut seen = vec![false; self.models.len()];
            for t in self
                .types
                .iter()
                .filter(|t| !needs_only || t.kind == Kind::Need)
            {
                for c in &t.cands {
                    seen[c.model as usize] = true;
                }
            }
            let mut b_seen = vec![false; self.builders.len()];
            for (m, s) in self.models.iter().zip(&seen) {
                if *s {
                    b_seen[m.builder as usize] = true;
                }
            }
            (
                seen.iter().filter(|s| **s).count(),
                b_seen.iter().filter(|s| **s).count(),
            )
        };
        let (all_m, all_b) = covered(false);
        let (need_m, need_b) = covered(true);
        Coverage {
            models: self.models.len() + self.models_without_task,
            models_with_task: self.models.len(),
            models_covered: all_m,
            models_covered_by_needs: need_m,
            builders: self.builders.len(),
            builders_covered: all_b,
            builders_covered_by_needs: need_b,
            query_types: self.types.len(),
            name_types: self.types.iter().filter(|t| t.kind == Kind::Name).count(),
        }
    }
}

/// A world for one seed: the base plus prices and the year's entrants.
#[derive(Debug, Clone)]
pub struct World {
    pub models: Vec<Model>,
    pub builders: Vec<Builder>,
    pub tasks: Vec<String>,
    pub types: Vec<QueryType>,
    /// Demand per type (sums to 1).
    pub demand: Vec<f64>,
    /// Models that start in the hub.
    pub initial_models: usize,
    pub initial_builders: usize,
}

/// Parameters (millions) of a card's model: from its id ("1.3B", "350m"),
/// else its model type and size word, else `None` (the prior applies).
pub fn params_of(card: &ModelCard) -> Option<f64> {
    let id = card.id.to_ascii_lowercase();
    // An explicit size in the id: 125m, 1.3b, 6b.
    for w in id.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.')) {
        let (num, unit) = w.split_at(w.len().saturating_sub(1));
        if let Ok(x) = num.parse::<f64>() {
            if x > 0.0 && x < 1000.0 {
                match unit {
                    "b" => return Some(x * 1000.0),
                    "m" if x >= 1.0 => return Some(x),
                    _ => {}
                }
            }
        }
    }
    let size = |small: f64, base: f64, large: f64| -> f64 {
        if id.contains("xxl") {
            large * 8.0
        } else if id.contains("xl") {
            large * 2.0
        } else if id.contains("large") {
            large
        } else if id.contains("small") || id.contains("tiny") || id.contains("mini") {
            small
        } else {
            base
        }
    };
    let t = card.model_type.as_deref().unwrap_or("");
    Some(match t {
        "bert" | "electra" | "camembert" | "mpnet" | "funnel" | "xlnet" => size(14.0, 110.0, 340.0),
        "roberta" => size(30.0, 125.0, 355.0),
        "distilbert" => 66.0,
        "albert" => size(12.0, 12.0, 18.0),
        "xlm-roberta" => size(118.0, 270.0, 560.0),
        "gpt2" => {
            if id.contains("medium") {
                355.0
            } else {
                size(124.0, 124.0, 774.0)
            }
        }
        "gpt_neo" => size(125.0, 125.0, 1300.0),
        "gptj" => 6000.0,
        "marian" => 74.0,
        "t5" => size(60.0, 220.0, 770.0),
        "mt5" => size(300.0, 580.0, 1200.0),
        "bart" | "mbart" | "pegasus" => size(140.0, 140.0, 400.0),
        "wav2vec2" | "hubert" => size(95.0, 95.0, 317.0),
        "vit" | "deit" | "beit" => size(22.0, 86.0, 307.0),
        "m2m_100" => 418.0,
        "encoder-decoder" => 250.0,
        _ => return None,
    })
}

/// The demand-key of a card: task, its first named language (other than
/// English), its first dataset.
fn primary_key(c: &ModelCard) -> NeedKey {
    let language = c
        .languages
        .iter()
        .find(|l| *l != "en" && lang::language_names(l).is_some())
        .cloned();
    NeedKey {
        task: c.task.clone().unwrap_or_default(),
        language,
        dataset: c.datasets.first().cloned(),
    }
}

/// A query type before retrieval.
struct Query {
    text: String,
    task: String,
    language: Option<String>,
    dataset: Option<String>,
    model_type: Option<String>,
    /// The model a name query names.
    named: Option<String>,
    downloads: f64,
}

impl Query {
    /// How well `card` does what was asked (docs/study.md, World).
    fn grade(&self, card: &ModelCard) -> u8 {
        if let Some(id) = &self.named {
            return if &card.id == id { 2 } else { 0 };
        }
        if card.task.as_deref() != Some(self.task.as_str()) {
            return 0;
        }
        if let Some(mt) = &self.model_type {
            return if card.model_type.as_deref() == Some(mt.as_str()) {
                2
            } else {
                1
            };
        }
        if self.language.is_none() && self.dataset.is_none() {
            // The task alone: a documented card does what was asked.
            return if card.card_text.trim().is_empty() {
                1
            } else {
                2
            };
        }
        let lang_ok = self
            .language
            .as_ref()
            .is_none_or(|l| card.languages.contains(l));
        let ds_ok = self
            .dataset
            .as_ref()
            .is_none_or(|d| card.datasets.contains(d));
        if lang_ok && ds_ok {
            2
        } else {
            1
        }
    }
}

/// The words a person types for a key.
fn key_text(task: &str, language: Option<&str>, dataset: Option<&str>) -> String {
    let mut words = Vec::new();
    if let Some(l) = language {
        words.push(
            lang::language_names(l)
                .and_then(|n| n.split(' ').next())
                .unwrap_or(l)
                .to_string(),
        );
    }
    words.push(task.replace('-', " "));
    if let Some(d) = dataset {
        words.push(d.replace(['_', '-', '/'], " "));
    }
    words.join(" ")
}

/// The demand key of a need.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct NeedKey {
    task: String,
    language: Option<String>,
    /// A dataset, or `model_type:<type>`.
    dataset: Option<String>,
}

/// The hub's models with a task, in id order, with their builders and tasks.
struct Catalog<'c> {
    models: Vec<Model>,
    builders: Vec<Builder>,
    tasks: Vec<String>,
    task_idx: HashMap<String, u32>,
    /// Model id -> index into `models`.
    idx_of: HashMap<String, u32>,
    /// The cards of `models`, in the same order.
    with_task: Vec<&'c ModelCard>,
}

impl<'c> Catalog<'c> {
    /// The catalog of `cards`; builders in `head` are not in the tail.
    fn of(cards: &'c [ModelCard], head: &HashSet<u64>, o: &StudyOptions) -> Catalog<'c> {
        let mut cat = Catalog {
            models: Vec::new(),
            builders: Vec::new(),
            tasks: Vec::new(),
            task_idx: HashMap::new(),
            idx_of: HashMap::new(),
            with_task: Vec::new(),
        };
        let mut builder_idx: HashMap<String, u32> = HashMap::new();
        let mut sorted: Vec<&ModelCard> = cards.iter().collect();
        // Index order differs between index builds: the world must not.
        sorted.sort_by(|a, b| a.id.cmp(&b.id));
        for c in sorted {
            let Some(task) = c.task.clone() else { continue };
            let tasks = &mut cat.tasks;
            let t = *cat.task_idx.entry(task.clone()).or_insert_with(|| {
                tasks.push(task.clone());
                (tasks.len() - 1) as u32
            });
            let builders = &mut cat.builders;
            let b = *builder_idx.entry(c.builder.clone()).or_insert_with(|| {
                let key = hubsearch_core::card::key_of(&c.builder);
                builders.push(Builder::incumbent(!head.contains(&key)));
                (builders.len() - 1) as u32
            });
            let params = params_of(c);
            cat.idx_of.insert(c.id.clone(), cat.models.len() as u32);
            cat.models.push(Model {
                builder: b,
                task: t,
                key: hubsearch_core::card::key_of(&c.id),
                downloads: c.downloads as f64,
                params_m: params.unwrap_or(o.prior_params_m),
                params_known: params.is_some(),
                price: 0.0,
                entry_day: 0,
            });
            cat.with_task.push(c);
        }
        cat
    }
}

/// The need query types: each card's own key, the task alone, and task +
/// model type, each with the downloads of the models it is the key of.
fn need_queries(with_task: &[&ModelCard]) -> Vec<Query> {
    let mut keys: Vec<NeedKey> = Vec::new();
    let mut key_downloads: HashMap<NeedKey, f64> = HashMap::new();
    let mut add = |k: NeedKey, d: f64| {
        if !key_downloads.contains_key(&k) {
            keys.push(k.clone());
        }
        *key_downloads.entry(k).or_default() += d;
    };
    for c in with_task {
        let d = c.downloads as f64;
        let own = primary_key(c);
        let task = own.task.clone();
        if own.language.is_some() || own.dataset.is_some() {
            add(own, d);
        }
        let key = |dataset| NeedKey {
            task: task.clone(),
            language: None,
            dataset,
        };
        add(key(None), d);
        if let Some(mt) = c.model_type.as_deref().filter(|m| !m.is_empty()) {
            add(key(Some(format!("model_type:{mt}"))), d);
        }
    }
    keys.iter()
        .map(|k| {
            let NeedKey {
                task,
                language,
                dataset,
            } = k;
            let model_type = dataset
                .as_deref()
                .and_then(|d| d.strip_prefix("model_type:"))
                .map(String::from);
            let text = match &model_type {
                Some(mt) => format!("{mt} {}", task.replace('-', " ")),
                None => key_text(task, language.as_deref(), dataset.as_deref()),
            };
            Query {
                text,
                task: task.clone(),
                language: language.clone(),
                dataset: dataset.clone().filter(|_| model_type.is_none()),
                model_type,
                named: None,
                downloads: key_downloads[k],
            }
        })
        .collect()
}

/// The query type that names card `c`'s model.
fn name_query(c: &ModelCard) -> Query {
    Query {
        text: c.id.replace(['/', '-', '_'], " "),
        task: c.task.clone().unwrap_or_default(),
        language: None,
        dataset: None,
        model_type: None,
        named: Some(c.id.clone()),
        downloads: c.downloads as f64,
    }
}

/// Each query's candidates, retrieved in parallel on `o.threads`: needs
/// with the task as a filter (`o.depth` best), names without
/// (`o.name_depth`); text mode.
fn retrieve_all(
    engine: &Engine,
    queries: &[Query],
    idx_of: &HashMap<String, u32>,
    o: &StudyOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Vec<Result<Vec<Cand>, hubsearch_engine::Error>> {
    let searcher = engine.text_index().searcher();
    let threads = if o.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        o.threads
    };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let total = queries.len();
    let one = |q: &Query| -> Result<Vec<Cand>, hubsearch_engine::Error> {
        let depth = if q.named.is_some() {
            o.name_depth
        } else {
            o.depth
        };
        let mut req = SearchRequest::new(q.text.clone(), depth);
        req.mode = Mode::Text;
        if q.named.is_none() {
            req.filter.task = hubsearch_core::FacetFilter::is(q.task.clone());
        }
        let r = engine.retrieve(&searcher, &req, depth)?;
        let mut cands = Vec::with_capacity(r.rows.len());
        for f in &r.rows {
            let card = engine.text_index().card(&searcher, f.addr)?;
            let Some(&m) = idx_of.get(&card.id) else {
                continue;
            };
            cands.push(Cand {
                model: m,
                relevance: f.relevance,
                grade: q.grade(&card),
            });
        }
        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if n % 5000 == 0 {
            progress(&format!("retrieved {n} of {total} query types"));
        }
        Ok(cands)
    };
    let work = || -> Vec<Result<Vec<Cand>, hubsearch_engine::Error>> {
        queries.par_iter().map(&one).collect()
    };
    match pool {
        Ok(pool) => pool.install(work),
        Err(_) => work(),
    }
}

impl Base {
    /// Read the hub from `engine` and retrieve each query type's candidates
    /// (`o.depth` best, text mode, the type's task as a filter).
    pub fn from_engine(
        engine: &Engine,
        o: &StudyOptions,
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<Base, hubsearch_engine::Error> {
        let cards = engine.all_cards()?;
        let hub = engine.hub();
        let cat = Catalog::of(&cards, &hub.builder_heads.head, o);
        let mut queries = need_queries(&cat.with_task);
        let needs = queries.len();
        queries.extend(cat.with_task.iter().map(|c| name_query(c)));
        let found = retrieve_all(engine, &queries, &cat.idx_of, o, progress);
        let mut types = Vec::with_capacity(queries.len());
        for (i, (q, cands)) in queries.into_iter().zip(found).enumerate() {
            let cands = cands?;
            if cands.is_empty() {
                continue;
            }
            types.push(QueryType {
                text: q.text,
                kind: if i < needs { Kind::Need } else { Kind::Name },
                task: cat.task_idx[&q.task],
                downloads: q.downloads,
                cands,
            });
        }
        Ok(Base {
            models: cat.models,
            builders: cat.builders,
            tasks: cat.tasks,
            types,
            models_without_task: cards.len() - cat.with_task.len(),
        })
    }
}

impl World {
    /// The world of `seed`: prices for every model, the entrants of the
    /// whole horizon (`o.horizon_days()`; each
    /// a copy of a random existing model's place in the query types, with no
    /// downloads), and the demand per type at concentration `o.concentration`.
    pub fn sample(base: &Base, o: &StudyOptions, seed: u64) -> World {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x005E_ED0F_u64.rotate_left(29));
        let markup = LogNormal::new(o.markup_median.ln(), o.markup_sigma).expect("sigma >= 0");
        let mut models = base.models.clone();
        let mut builders = base.builders.clone();
        for m in &mut models {
            m.price = serverless_cost(o, m.params_m) * markup.sample(&mut rng);
        }
        // Where each model appears, to copy for entrants.
        let mut places: Vec<Vec<(u32, Cand)>> = vec![Vec::new(); models.len()];
        for (t, qt) in base.types.iter().enumerate() {
            for c in &qt.cands {
                places[c.model as usize].push((t as u32, *c));
            }
        }
        let mut types = base.types.clone();
        let initial_models = models.len();
        let initial_builders = builders.len();
        // Existing builders are picked in proportion to their models.
        let owners: Vec<u32> = base.models.iter().map(|m| m.builder).collect();
        // Profit-seeking entrants (exponent `entry_seeking` > 0) copy a
        // template in proportion to its opportunity^s; 0: uniformly.
        let seeking = (o.entry_seeking > 0.0 && initial_models > 0)
            .then(|| {
                let w: Vec<f64> = opportunity(base, o)
                    .iter()
                    .map(|x| x.max(1e-300).powf(o.entry_seeking))
                    .collect();
                rand::distributions::WeightedIndex::new(&w).ok()
            })
            .flatten();
        let per_day = o.entry_rate * initial_models as f64;
        let mut entrant_builders = 0usize;
        for day in 1..o.horizon_days() as u32 {
            let n = if per_day > 0.0 {
                Poisson::new(per_day).expect("rate > 0").sample(&mut rng) as usize
            } else {
                0
            };
            for _ in 0..n {
                if initial_models == 0 {
                    break;
                }
                let template = match &seeking {
                    Some(w) => w.sample(&mut rng),
                    None => rng.gen_range(0..initial_models),
                };
                let builder = if rng.gen::<f64>() < o.new_builder_share || owners.is_empty() {
                    builders.push(Builder {
                        tail: true,
                        entrant: true,
                    });
                    entrant_builders += 1;
                    (builders.len() - 1) as u32
                } else {
                    owners[rng.gen_range(0..owners.len())]
                };
                let t = &base.models[template];
                let id = models.len() as u32;
                models.push(Model {
                    builder,
                    task: t.task,
                    key: (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed,
                    downloads: 0.0,
                    params_m: t.params_m,
                    params_known: t.params_known,
                    price: serverless_cost(o, t.params_m) * markup.sample(&mut rng),
                    entry_day: day,
                });
                for (ty, c) in &places[template] {
                    // A copy does what its template does, except answer to
                    // the template's name: there it is another model.
                    let grade = match types[*ty as usize].kind {
                        Kind::Name => 0,
                        Kind::Need => c.grade,
                    };
                    types[*ty as usize].cands.push(Cand {
                        model: id,
                        grade,
                        ..*c
                    });
                }
            }
        }
        let _ = entrant_builders;
        // Needs share 1 - navigational_share, names the rest, each in
        // proportion to (1 + downloads)^concentration.
        let weight = |t: &QueryType| (1.0 + t.downloads).powf(o.concentration);
        let total = |k: Kind| -> f64 { types.iter().filter(|t| t.kind == k).map(weight).sum() };
        let (needs, names) = (total(Kind::Need), total(Kind::Name));
        let share = |k: Kind| -> f64 {
            match (k, names > 0.0, needs > 0.0) {
                (Kind::Name, true, true) => o.navigational_share / names,
                (Kind::Name, true, false) => 1.0 / names,
                (Kind::Need, _, true) if names > 0.0 => (1.0 - o.navigational_share) / needs,
                (Kind::Need, _, true) => 1.0 / needs,
                _ => 0.0,
            }
        };
        let demand = types.iter().map(|t| weight(t) * share(t.kind)).collect();
        World {
            models,
            builders,
            tasks: base.tasks.clone(),
            types,
            demand,
            initial_models,
            initial_builders,
        }
    }

    /// Builders that arrived during the year.
    pub fn entrant_builders(&self) -> usize {
        self.builders.len() - self.initial_builders
    }
}

/// Each initial model's opportunity: over the need types it is a candidate
/// of, their share of demand per candidate (what a newcomer copying it could
/// hope to win); weights as the demand's, at the base's concentration.
pub fn opportunity(base: &Base, o: &StudyOptions) -> Vec<f64> {
    let weight = |t: &QueryType| (1.0 + t.downloads).powf(o.concentration);
    let total: f64 = base
        .types
        .iter()
        .filter(|t| t.kind == Kind::Need)
        .map(weight)
        .sum();
    let mut x = vec![0.0; base.models.len()];
    for t in base.types.iter().filter(|t| t.kind == Kind::Need) {
        let per = weight(t) / total.max(f64::MIN_POSITIVE) / t.cands.len().max(1) as f64;
        for c in &t.cands {
            x[c.model as usize] += per;
        }
    }
    x
}

/// Serverless cost per call of a model of `params_m` million parameters
/// (docs/study.md, Money).
pub fn serverless_cost(o: &StudyOptions, params_m: f64) -> f64 {
    o.cost_per_call_usd + o.cost_per_call_per_m_params_usd * params_m
}

/// Dedicated hosting: fixed cost per month by size (docs/study.md, Money).
pub fn dedicated_month(o: &StudyOptions, params_m: f64) -> f64 {
    if params_m <= 400.0 {
        o.dedicated_month_usd[0]
    } else if params_m <= 3000.0 {
        o.dedicated_month_usd[1]
    } else {
        o.dedicated_month_usd[2]
    }
}

/// Distinct builders among `models`.
pub fn builders_of(models: &[Model]) -> HashSet<u32> {
    models.iter().map(|m| m.builder).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(id: &str, model_type: Option<&str>) -> ModelCard {
        ModelCard {
            id: id.into(),
            model_type: model_type.map(String::from),
            ..Default::default()
        }
    }

    /// Opportunity: a type's demand share split among its candidates;
    /// names do not count.
    #[test]
    fn opportunity_splits_demand_among_candidates() {
        let m = |b| Model {
            builder: b,
            task: 0,
            key: 0,
            downloads: 0.0,
            params_m: 1.0,
            params_known: true,
            price: 0.0,
            entry_day: 0,
        };
        let c = |model| Cand {
            model,
            relevance: 1.0,
            grade: 2,
        };
        let t = |kind, cands| QueryType {
            text: String::new(),
            kind,
            task: 0,
            downloads: 0.0,
            cands,
        };
        let base = Base {
            models: vec![m(0), m(0), m(1)],
            builders: vec![],
            tasks: vec![],
            types: vec![
                t(Kind::Need, vec![c(0), c(1)]),
                t(Kind::Need, vec![c(0)]),
                t(Kind::Name, vec![c(2)]),
            ],
            models_without_task: 0,
        };
        let x = opportunity(&base, &StudyOptions::default());
        // Two need types of equal demand, 1/2 each: model 0 gets 1/4 + 1/2.
        assert_eq!(x, vec![0.75, 0.25, 0.0]);
    }

    #[test]
    fn parameter_counts_from_ids_and_types() {
        assert_eq!(
            params_of(&card("EleutherAI/gpt-neo-1.3B", Some("gpt_neo"))),
            Some(1300.0)
        );
        assert_eq!(params_of(&card("x/opt-350m", None)), Some(350.0));
        assert_eq!(
            params_of(&card("bert-large-uncased", Some("bert"))),
            Some(340.0)
        );
        assert_eq!(
            params_of(&card("bert-base-uncased", Some("bert"))),
            Some(110.0)
        );
        assert_eq!(params_of(&card("gpt2-medium", Some("gpt2"))), Some(355.0));
        assert_eq!(params_of(&card("someone/thing", None)), None);
        // A version number is not a size.
        assert_eq!(params_of(&card("x/model-v2", None)), None);
    }
}
