//! The filter parameters every /v1 read shares (docs/api.md, Filters):
//! several values per facet (repeat the parameter or separate values by
//! commas; OR within a facet, AND across), a leading `-` to exclude a
//! value, and ranges on price, downloads, likes and dates.

use hubsearch_core::{FacetFilter, Filter, Range};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::{ApiError, Code};

/// The filter parameters, as a query string gives them. Facet values:
/// repeat the parameter or separate values by commas (any of them); a
/// leading `-` excludes a value.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query, style = Form)]
pub struct FilterParams {
    /// Pipeline tags (`text-classification`); `-x` excludes.
    #[serde(default)]
    pub task: Vec<String>,
    /// Libraries (`transformers`); `-x` excludes.
    #[serde(default)]
    pub library: Vec<String>,
    /// Language codes (`de`); `-x` excludes.
    #[serde(default)]
    pub language: Vec<String>,
    /// Licenses (`mit`); `-x` excludes.
    #[serde(default)]
    pub license: Vec<String>,
    /// Builders (the id's namespace); `-x` excludes.
    #[serde(default)]
    pub builder: Vec<String>,
    /// Tags as the Hub writes them (`dataset:squad`, `license:mit`, `pytorch`); `-x` excludes.
    #[serde(default)]
    pub tag: Vec<String>,
    /// Lowest price per call in USD (free models count as 0).
    #[param(minimum = 0.0)]
    pub min_price: Option<f64>,
    /// Highest price per call in USD.
    #[param(minimum = 0.0)]
    pub max_price: Option<f64>,
    /// Fewest downloads.
    pub min_downloads: Option<u64>,
    /// Most downloads.
    pub max_downloads: Option<u64>,
    /// Fewest likes.
    pub min_likes: Option<u64>,
    /// Most likes.
    pub max_likes: Option<u64>,
    /// Created at or after this time (RFC 3339, or a day `YYYY-MM-DD`).
    #[param(schema_with = time_param)]
    pub created_after: Option<String>,
    /// Created before this time (exclusive).
    #[param(schema_with = time_param)]
    pub created_before: Option<String>,
    /// Last modified at or after this time.
    #[param(schema_with = time_param)]
    pub updated_after: Option<String>,
    /// Last modified before this time (exclusive).
    #[param(schema_with = time_param)]
    pub updated_before: Option<String>,
}

/// A time bound's schema: an RFC 3339 time, a day, or blank (no bound).
fn time_param() -> utoipa::openapi::Schema {
    use utoipa::openapi::schema::{AnyOfBuilder, KnownFormat, SchemaFormat, Type};
    use utoipa::openapi::ObjectBuilder;
    let string = |format: KnownFormat| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(format)))
            .build()
    };
    let blank = ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(0))
        .build();
    AnyOfBuilder::new()
        .item(string(KnownFormat::DateTime))
        .item(string(KnownFormat::Date))
        .item(blank)
        .description(Some(
            "An RFC 3339 time, a day YYYY-MM-DD, or blank for no bound",
        ))
        .build()
        .into()
}

/// The names of [`FilterParams`]' fields: the query keys that are filters.
pub const FILTER_KEYS: [&str; 16] = [
    "task",
    "library",
    "language",
    "license",
    "builder",
    "tag",
    "min_price",
    "max_price",
    "min_downloads",
    "max_downloads",
    "min_likes",
    "max_likes",
    "created_after",
    "created_before",
    "updated_after",
    "updated_before",
];

/// One facet's values: comma-separated or repeated, `-x` to exclude,
/// blanks ignored.
fn facet(values: Vec<String>) -> FacetFilter {
    let mut out = FacetFilter::default();
    for v in values.iter().flat_map(|v| v.split(',')) {
        let v = v.trim();
        match v.strip_prefix('-') {
            Some(not) if !not.is_empty() => out.not.push(not.to_string()),
            Some(_) => {}
            None if !v.is_empty() => out.any.push(v.to_string()),
            None => {}
        }
    }
    out
}

/// Unix seconds of an RFC 3339 time or a day (`YYYY-MM-DD`, midnight UTC).
pub fn parse_time(field: &str, s: &str) -> Result<i64, ApiError> {
    let s = s.trim();
    let day = || {
        let is_day = s.len() == 10 && s.as_bytes()[4] == b'-' && s.as_bytes()[7] == b'-';
        is_day
            .then(|| hubsearch_core::card::unix_seconds(&format!("{s}T00:00:00Z")))
            .flatten()
    };
    hubsearch_core::card::unix_seconds(s)
        .or_else(day)
        .ok_or_else(|| {
            ApiError::new(
                Code::InvalidFilter,
                format!("{field} must be an RFC 3339 time or a day YYYY-MM-DD, not {s:?}"),
            )
        })
}

impl FilterParams {
    /// The engine's filter.
    pub fn into_filter(self) -> Result<Filter, ApiError> {
        // An empty value is no bound (what an HTML form sends for a field
        // left blank; the document allows it).
        let time = |field: &str, v: &Option<String>| {
            v.as_deref()
                .filter(|s| !s.trim().is_empty())
                .map(|s| parse_time(field, s))
                .transpose()
        };
        let before = |field: &str, v: &Option<String>| -> Result<Option<i64>, ApiError> {
            Ok(time(field, v)?.map(|t| t.saturating_sub(1)))
        };
        Ok(Filter {
            created: Range {
                min: time("created_after", &self.created_after)?,
                max: before("created_before", &self.created_before)?,
            },
            updated: Range {
                min: time("updated_after", &self.updated_after)?,
                max: before("updated_before", &self.updated_before)?,
            },
            task: facet(self.task),
            library: facet(self.library),
            language: facet(self.language),
            license: facet(self.license),
            builder: facet(self.builder),
            tags: facet(self.tag),
            price: Range {
                min: self.min_price,
                max: self.max_price,
            },
            downloads: Range {
                min: self.min_downloads,
                max: self.max_downloads,
            },
            likes: Range {
                min: self.min_likes,
                max: self.max_likes,
            },
            id_contains: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_negations_and_dates() {
        let p: FilterParams = serde_html_form::from_str(
            "task=a,b&task=-c&language=de&tag=dataset%3Asquad&created_after=2022-01-02&created_before=2022-02-01T00:00:00Z",
        )
        .unwrap();
        let f = p.into_filter().unwrap();
        assert_eq!(f.task.any, ["a", "b"]);
        assert_eq!(f.task.not, ["c"]);
        assert_eq!(f.language.any, ["de"]);
        assert_eq!(f.tags.any, ["dataset:squad"]);
        assert_eq!(f.created.min, Some(1_641_081_600));
        assert_eq!(f.created.max, Some(1_643_673_600 - 1));
        let bad: FilterParams = serde_html_form::from_str("updated_after=yesterday").unwrap();
        assert!(bad.into_filter().is_err());
        assert!(serde_html_form::from_str::<FilterParams>("min_downloads=-1").is_err());
        // Counts are u64, as the document states (maximum 2^64 - 1).
        assert!(
            serde_html_form::from_str::<FilterParams>("max_likes=18446744073709551616").is_err()
        );
    }
}
