//! A synthetic hub: N cards with the structure of a real one, deterministic
//! for a seed. It is what a fresh clone runs on without `../shared`, and the
//! source of the 100k and 1M card scale runs.
//!
//! Structure, modelled on the 2022 Hugging Face snapshot: tasks with their
//! real frequencies; architectures, datasets and languages that fit the task;
//! builders of Zipf-distributed size (a few publish hundreds of models, most
//! one or two); downloads heavy-tailed (log-normal with ~30% zeros, so the top
//! 1% hold most of them); prices: 40% free, the rest log-normal around
//! $0.002 per call.

use hubsearch_core::card::rfc3339;
use hubsearch_core::{lang, ModelCard};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

struct Task {
    name: &'static str,
    weight: f64,
    archs: &'static [&'static str],
    datasets: &'static [&'static str],
    words: &'static str,
}

const fn task(
    name: &'static str,
    weight: f64,
    archs: &'static [&'static str],
    datasets: &'static [&'static str],
    words: &'static str,
) -> Task {
    Task {
        name,
        weight,
        archs,
        datasets,
        words,
    }
}

/// Tasks with their frequency in the 2022 snapshot: (name, weight, architectures,
/// datasets, what the card says the model does), one row each.
#[rustfmt::skip]
const TASKS: &[Task] = &[
    task("text-generation", 3935.0, &["gpt2", "gpt-neo", "gptj", "bloom"], &["openwebtext", "wikitext", "the_pile", "bookcorpus"], "generates fluent text, stories and poetry"),
    task("text-classification", 3091.0, &["bert", "roberta", "distilbert", "electra", "deberta"], &["sst2", "imdb", "tweet_eval", "emotion", "ag_news"], "classifies text into labels such as sentiment or topic"),
    task("fill-mask", 2369.0, &["bert", "roberta", "xlm-roberta", "albert", "camembert"], &["wikipedia", "bookcorpus", "cc100", "oscar"], "a pretrained masked language model"),
    task("text2text-generation", 2236.0, &["t5", "mt5", "bart", "pegasus"], &["c4", "squad", "paws", "jfleg"], "rewrites, paraphrases and corrects text"),
    task("automatic-speech-recognition", 1477.0, &["wav2vec2", "hubert", "whisper", "xlsr"], &["common_voice", "librispeech_asr", "timit_asr", "voxpopuli"], "transcribes spoken audio to text"),
    task("translation", 1458.0, &["marian", "opus-mt", "mbart", "m2m100", "t5"], &["wmt16", "opus100", "tatoeba", "europarl"], "translates between languages"),
    task("token-classification", 1257.0, &["bert", "roberta", "xlm-roberta", "biobert"], &["conll2003", "wikiann", "ncbi_disease", "ontonotes"], "tags named entities such as people, places and organisations"),
    task("conversational", 1028.0, &["dialogpt", "blenderbot", "gpt2"], &["daily_dialog", "persona_chat", "blended_skill_talk"], "a dialogue chatbot that holds a conversation"),
    task("feature-extraction", 972.0, &["bert", "sentence-transformers", "mpnet", "minilm"], &["snli", "msmarco", "wikipedia"], "produces embeddings of sentences and documents"),
    task("question-answering", 967.0, &["bert", "roberta", "distilbert", "albert", "deberta"], &["squad", "squad_v2", "natural_questions", "pubmed_qa"], "answers questions from a context passage"),
    task("sentence-similarity", 333.0, &["sentence-transformers", "mpnet", "minilm"], &["stsb", "snli", "multi_nli", "quora"], "sentence embeddings for semantic search and similarity"),
    task("summarization", 320.0, &["bart", "pegasus", "t5", "led"], &["cnn_dailymail", "xsum", "arxiv", "billsum"], "summarizes long documents and news articles"),
    task("image-classification", 243.0, &["vit", "resnet", "convnext", "deit", "efficientnet"], &["imagenet-1k", "cifar10", "food101"], "classifies images into categories"),
    task("text-to-speech", 160.0, &["tacotron2", "fastspeech2", "vits"], &["ljspeech", "vctk", "common_voice"], "synthesizes natural speech from text"),
    task("zero-shot-classification", 68.0, &["bart", "roberta", "deberta"], &["multi_nli", "xnli", "anli"], "classifies text into any labels via natural language inference"),
    task("audio-classification", 51.0, &["wav2vec2", "hubert", "ast"], &["superb", "esc50", "speech_commands"], "classifies audio clips, speakers and emotions"),
    task("object-detection", 11.0, &["detr", "yolos"], &["coco", "pascal_voc"], "detects objects in images with bounding boxes"),
];

const LANGS: &[(&str, f64)] = &[
    ("en", 50.0),
    ("de", 4.0),
    ("fr", 4.0),
    ("es", 4.0),
    ("zh", 3.0),
    ("ja", 2.5),
    ("ru", 2.5),
    ("ar", 2.0),
    ("pt", 2.0),
    ("nl", 1.5),
    ("sv", 1.5),
    ("fi", 1.5),
    ("it", 1.5),
    ("tr", 1.5),
    ("ko", 1.0),
    ("hi", 1.0),
    ("pl", 1.0),
    ("id", 1.0),
    ("fa", 1.0),
    ("vi", 0.5),
    ("multilingual", 2.5),
];
const SIZES: &[&str] = &["tiny", "small", "base", "medium", "large", "xl"];
const DOMAINS: &[&str] = &[
    "",
    "",
    "",
    "biomedical",
    "legal",
    "financial",
    "news",
    "tweets",
    "code",
    "scientific",
    "clinical",
    "reviews",
];
const LIBRARIES: &[(&str, f64)] = &[
    ("transformers", 80.0),
    ("pytorch", 6.0),
    ("sentence-transformers", 4.0),
    ("speechbrain", 2.0),
    ("espnet", 2.0),
    ("keras", 2.0),
    ("onnx", 2.0),
    ("timm", 2.0),
];
const LICENSES: &[(&str, f64)] = &[
    ("", 60.0),
    ("apache-2.0", 20.0),
    ("mit", 10.0),
    ("cc-by-4.0", 5.0),
    ("cc-by-nc-4.0", 3.0),
    ("openrail", 2.0),
];
const SYLLABLES: &[&str] = &[
    "ka", "ri", "mo", "len", "ta", "so", "vi", "dan", "el", "ar", "qu", "ne", "bo", "lin", "ze",
    "fa", "hu", "ga", "pi", "ron",
];

/// Generator of a synthetic hub.
pub struct HubGenerator {
    rng: ChaCha8Rng,
    builders: Vec<String>,
    /// Cumulative Zipf weights over builders.
    builder_cdf: Vec<f64>,
    task_cdf: Vec<f64>,
    lang_cdf: Vec<f64>,
    lib_cdf: Vec<f64>,
    lic_cdf: Vec<f64>,
    next: usize,
    total: usize,
}

fn cdf(weights: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut acc = 0.0;
    let mut v: Vec<f64> = weights
        .map(|w| {
            acc += w;
            acc
        })
        .collect();
    for x in &mut v {
        *x /= acc;
    }
    v
}

fn pick(cdf: &[f64], rng: &mut ChaCha8Rng) -> usize {
    let u: f64 = rng.gen();
    cdf.partition_point(|&c| c < u).min(cdf.len() - 1)
}

impl HubGenerator {
    /// A hub of `models` cards from `seed`.
    pub fn new(models: usize, seed: u64) -> HubGenerator {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // ~3.7 models per builder, as in the 2022 snapshot (29,432 / 8,026).
        let n_builders = (models as f64 / 3.7).ceil().max(1.0) as usize;
        let builders = (0..n_builders)
            .map(|i| {
                let len = rng.gen_range(2..4);
                let mut s: String = (0..len)
                    .map(|_| SYLLABLES[rng.gen_range(0..SYLLABLES.len())])
                    .collect();
                s.push_str(&format!("{}", i % 1000));
                if i % 7 == 0 {
                    s.push_str("-lab");
                }
                s
            })
            .collect();
        HubGenerator {
            builder_cdf: cdf((0..n_builders).map(|i| 1.0 / (i as f64 + 1.0).powf(1.05))),
            task_cdf: cdf(TASKS.iter().map(|t| t.weight)),
            lang_cdf: cdf(LANGS.iter().map(|l| l.1)),
            lib_cdf: cdf(LIBRARIES.iter().map(|l| l.1)),
            lic_cdf: cdf(LICENSES.iter().map(|l| l.1)),
            rng,
            builders,
            next: 0,
            total: models,
        }
    }

    fn card(&mut self, i: usize) -> ModelCard {
        let rng = &mut self.rng;
        let builder = self.builders[pick(&self.builder_cdf, rng)].clone();
        let task = &TASKS[pick(&self.task_cdf, rng)];
        let arch = task.archs[rng.gen_range(0..task.archs.len())];
        let size = SIZES[rng.gen_range(0..SIZES.len())];
        let dataset = task.datasets[rng.gen_range(0..task.datasets.len())];
        let domain = DOMAINS[rng.gen_range(0..DOMAINS.len())];
        let mut languages = vec![LANGS[pick(&self.lang_cdf, rng)].0.to_string()];
        if task.name == "translation" {
            let other = LANGS[pick(&self.lang_cdf, rng)].0.to_string();
            if other != languages[0] && other != "multilingual" {
                languages.push(other);
            }
        }
        let lang_word = |code: &str| {
            lang::language_names(code)
                .and_then(|n| n.split(' ').next())
                .unwrap_or(code)
                .to_string()
        };
        let mut name_parts = vec![arch.to_string(), size.to_string()];
        if languages[0] != "en" {
            name_parts.push(languages.join("-"));
        }
        if !domain.is_empty() {
            name_parts.push(domain.to_string());
        }
        name_parts.push(dataset.replace('_', "-"));
        name_parts.push(format!("{:x}", i));
        let name = name_parts.join("-");
        let lang_text = languages
            .iter()
            .map(|l| lang_word(l))
            .collect::<Vec<_>>()
            .join(" and ");
        let domain_text = if domain.is_empty() {
            String::new()
        } else {
            format!(" for {domain} text")
        };
        let description = format!(
            "A {size} {arch} model fine-tuned on {dataset}{domain_text}: it {words}. Language: {lang_text}.",
            words = task.words
        );
        let card_text = format!(
            "# {name}\n\n{description}\n\n## Training\n\nTrained on {dataset} with a learning rate of {lr}e-5 for {ep} epochs.\n\n## Evaluation\n\nReaches {score:.1} on the {dataset} test split.\n\n## Usage\n\n```python\nfrom transformers import pipeline\np = pipeline(\"{task}\", model=\"{builder}/{name}\")\n```\n",
            lr = rng.gen_range(1..6),
            ep = rng.gen_range(1..10),
            score = rng.gen_range(60.0..95.0),
            task = task.name,
        );
        // Heavy tail: ~30% zeros, the rest log-normal(3, 2.6).
        let downloads = if rng.gen_bool(0.3) {
            0
        } else {
            let z: f64 = normal(rng);
            ((3.0 + 2.6 * z).exp().min(5e7) as u64).max(1)
        };
        let likes = ((downloads as f64).sqrt() * rng.gen_range(0.0..0.3)) as u64;
        let price_usd = if rng.gen_bool(0.4) {
            None
        } else {
            let z = normal(rng);
            Some(
                ((0.002f64.ln() + 1.0 * z).exp() * 1e6)
                    .round()
                    .clamp(1.0, 1e8)
                    / 1e6,
            )
        };
        let created = 1_577_836_800 + rng.gen_range(0..(3 * 365 * 86_400)); // 2020..2023
        let updated = created + rng.gen_range(0..(200 * 86_400));
        let library = LIBRARIES[pick(&self.lib_cdf, rng)].0.to_string();
        let license = LICENSES[pick(&self.lic_cdf, rng)].0;
        let mut tags = vec![library.clone(), arch.to_string()];
        if !domain.is_empty() {
            tags.push(domain.to_string());
        }
        tags.extend(languages.iter().cloned());
        ModelCard {
            id: format!("{builder}/{name}"),
            name,
            builder,
            task: Some(task.name.to_string()),
            library: Some(library),
            tags,
            languages,
            datasets: vec![dataset.to_string()],
            license: (!license.is_empty()).then(|| license.to_string()),
            architectures: vec![arch.to_string()],
            model_type: Some(arch.replace('-', "_")),
            description,
            card_text,
            last_modified: Some(rfc3339(updated)),
            downloads,
            likes,
            price_usd,
            paid_calls: 0,
            created_at: Some(rfc3339(created)),
            updated_at: Some(rfc3339(updated)),
        }
    }
}

/// Standard normal by Box-Muller (rand_distr is not needed for one draw).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

impl Iterator for HubGenerator {
    type Item = ModelCard;
    fn next(&mut self) -> Option<ModelCard> {
        if self.next >= self.total {
            return None;
        }
        let c = self.card(self.next);
        self.next += 1;
        Some(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubsearch_rank::Concentration;

    #[test]
    fn deterministic_for_a_seed() {
        let a: Vec<ModelCard> = HubGenerator::new(50, 7).collect();
        let b: Vec<ModelCard> = HubGenerator::new(50, 7).collect();
        let c: Vec<ModelCard> = HubGenerator::new(50, 8).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn realistic_structure() {
        let cards: Vec<ModelCard> = HubGenerator::new(20_000, 1).collect();
        let ids: std::collections::HashSet<_> = cards.iter().map(|c| &c.id).collect();
        assert_eq!(ids.len(), cards.len(), "ids are unique");
        let downloads: Vec<f64> = cards.iter().map(|c| c.downloads as f64).collect();
        let conc = Concentration::of(&downloads);
        assert!(conc.zero_share > 0.25 && conc.zero_share < 0.35, "{conc:?}");
        assert!(conc.top_1pct_share > 0.5, "heavy tail: {conc:?}");
        let mut per_builder = std::collections::HashMap::new();
        for c in &cards {
            *per_builder.entry(&c.builder).or_insert(0) += 1;
        }
        let max = per_builder.values().max().unwrap();
        assert!(*max > 100, "some builders publish many models");
        let free =
            cards.iter().filter(|c| c.price_usd.is_none()).count() as f64 / cards.len() as f64;
        assert!((0.35..0.45).contains(&free));
        // Every card reads back through the importer's parser.
        let line = serde_json::to_string(&cards[0]).unwrap();
        assert_eq!(hubsearch_core::record::parse_json(&line).unwrap(), cards[0]);
    }
}
