//! The closed sets of choices a request or the config makes: retrieval mode,
//! fusion, ranking policy, attention model, fairness group, embedding model.
//!
//! Each is an enum whose names are written once, in [`choice!`]: the same
//! table gives `FromStr` (with an error listing every value), `Display`,
//! serde (for the config file and JSON), clap's `ValueEnum` (so `--help`
//! lists the values) and the OpenAPI schema (a string with these values, so
//! the published document cannot drift from what the server parses).
//! Nothing else in the project compares these names as strings.

/// Defines a choice enum from `Variant => "name"` pairs.
macro_rules! choice {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident => $label:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value's name (as in the config file, flags and the API).
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $label,)+
                }
            }

            /// Every name, comma-separated (for messages).
            pub fn names() -> String {
                let v: Vec<&str> = Self::ALL.iter().map(|c| c.as_str()).collect();
                v.join(", ")
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($label => Ok($name::$variant),)+
                    other => Err(format!(
                        concat!("unknown ", $what, " {:?} (expected one of {})"),
                        other,
                        Self::names()
                    )),
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($label),+]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl clap::ValueEnum for $name {
            fn value_variants<'a>() -> &'a [Self] {
                Self::ALL
            }
            fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
                Some(clap::builder::PossibleValue::new(self.as_str()))
            }
        }
    };
}

choice! {
    /// How a listing (`GET /v1/listings`) is ordered.
    #[derive(Default)]
    pub enum ListingSort ("sort") {
        /// Most downloaded (and called) first.
        #[default]
        Trending => "trending",
        /// Most paid calls first.
        Calls => "calls",
        /// Most recently published first.
        Newest => "newest",
        /// Cheapest first.
        Price => "price",
        /// Most liked first.
        Likes => "likes",
        /// Most recently modified first.
        Updated => "updated",
        /// The bounded FairCo controller (`fair_bounded`, docs/ranking.md)
        /// over the most popular candidates: every candidate has merit 1, so
        /// exposure rotates across page views toward the least exposed.
        Fair => "fair",
    }
}

choice! {
    /// Which retrievers produce candidates.
    #[derive(Default)]
    pub enum Mode ("mode") {
        /// BM25 over the card fields only.
        #[default]
        Text => "text",
        /// Embedding nearest neighbours only.
        Vector => "vector",
        /// Both, fused.
        Hybrid => "hybrid",
    }
}

choice! {
    /// How hybrid search fuses the two retrievers (docs/retrieval.md, Fusion).
    pub enum Fusion ("fusion") {
        /// Text min-max normalised plus the raw cosine, weighted.
        Cosine => "cosine",
        /// Both sides min-max normalised, weighted.
        Weighted => "weighted",
        /// Reciprocal rank fusion.
        Rrf => "rrf",
    }
}

choice! {
    /// How a query word is scored over the card's text fields
    /// (docs/retrieval.md, BM25F).
    pub enum WordScoring ("scoring") {
        /// One BM25F score per word: weighted term frequencies pooled
        /// across fields, one IDF.
        Bm25f => "bm25f",
        /// Per-field BM25, the best field plus a share of the others.
        DisMax => "dismax",
    }
}

choice! {
    /// A ranking policy (docs/ranking.md, Policies).
    pub enum PolicyKind ("policy") {
        Relevance => "relevance",
        Popularity => "popularity",
        TailBoost => "tail_boost",
        Fair => "fair",
        FairImpact => "fair_impact",
        FairBounded => "fair_bounded",
        Stochastic => "stochastic",
    }
}

choice! {
    /// A position-bias model (docs/ranking.md, Attention).
    pub enum AttentionKind ("attention model") {
        Log => "log",
        Trec => "trec",
        Rbp => "rbp",
        Cascade => "cascade",
    }
}

choice! {
    /// What FairCo's `tau - 1` counts (docs/ranking.md, `fair`).
    pub enum Rounds ("rounds") {
        /// The served pages on which the candidate's group was a candidate.
        Group => "group",
        /// All served pages.
        Global => "global",
        /// None: the error is FairCo's average per-round disparity itself,
        /// so one `lambda` means the same at any traffic (docs/ranking.md).
        Average => "average",
    }
}

choice! {
    /// What `fair_impact` counts as a group's impact.
    pub enum Impact ("impact") {
        /// Paid calls.
        Calls => "calls",
        /// Income in USD.
        Income => "income",
    }
}

choice! {
    /// Whom exposure fairness is owed to.
    pub enum Group ("group") {
        /// Each model on its own.
        Model => "model",
        /// Each builder, over all their models.
        Builder => "builder",
    }
}

choice! {
    /// The embedding model of the vector side.
    pub enum EmbeddingModel ("embedding model") {
        /// all-MiniLM-L6-v2 (384 dimensions).
        MiniLm => "minilm",
        /// A hashing stand-in (384 dimensions) for scale runs: fast, not semantic.
        Hash => "hash",
        /// No vectors: text search only.
        None => "none",
    }
}

choice! {
    /// What runs the embedding model (docs/embeddings.md).
    pub enum EmbeddingRuntime ("embedding runtime") {
        /// candle (pure Rust) on the safetensors.
        Candle => "candle",
        /// ONNX Runtime on the fp32 graph: the same vectors as candle.
        Onnx => "onnx",
        /// ONNX Runtime on the dynamically quantised int8 graph.
        OnnxInt8 => "onnx-int8",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_errors_list_values() {
        for p in PolicyKind::ALL {
            assert_eq!(p.as_str().parse::<PolicyKind>().unwrap(), *p);
            let json = serde_json::to_string(p).unwrap();
            assert_eq!(serde_json::from_str::<PolicyKind>(&json).unwrap(), *p);
        }
        let err = "best".parse::<PolicyKind>().unwrap_err();
        assert!(
            err.contains("tail_boost") && err.contains("\"best\""),
            "{err}"
        );
        assert!(serde_json::from_str::<Fusion>("\"sum\"").is_err());
        assert_eq!(Mode::default(), Mode::Text);
    }
}
