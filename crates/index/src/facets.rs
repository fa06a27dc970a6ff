//! Facet value counts for one flat facet field, by ordinal (docs/api.md,
//! Disjunctive facets).
//!
//! tantivy's `FacetCollector` streams the whole facet dictionary of every
//! segment on every query (to map ordinals to a facet level), then decodes
//! each counted ordinal's facet from the dictionary: for the builder facet
//! of the real corpus (~16k values) that was ~140 ms on a broad query. Our
//! facets are flat, so a document's ordinals are its values: this collector
//! counts them in a dense array per segment, and the values of each
//! segment's ordinals are read once per segment and kept
//! ([`crate::text_index::TextIndex`]'s facet cache; segments never change).

use std::sync::Arc;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

/// The values of one segment's facet ordinals, in ordinal order.
pub type OrdValues = Arc<Vec<Arc<str>>>;

/// Counts of one flat facet field's values among the matching documents;
/// the fruit is the `k` most frequent values (ties by value).
pub struct FlatFacetCounts {
    field: String,
    k: usize,
    /// Per segment ordinal, the values of its facet ordinals.
    values: Vec<OrdValues>,
}

impl FlatFacetCounts {
    pub fn new(field: impl Into<String>, k: usize, values: Vec<OrdValues>) -> FlatFacetCounts {
        FlatFacetCounts {
            field: field.into(),
            k,
            values,
        }
    }
}

pub struct FlatFacetSegment {
    /// Each document's facet ordinals.
    ords: tantivy::columnar::Column<u64>,
    /// At most one value per document: blocks are read in one call.
    single: bool,
    buffer: Vec<Option<u64>>,
    counts: Vec<u32>,
    values: OrdValues,
}

/// One segment's counts: (ordinal, count) and the values of its ordinals.
pub struct SegmentCounts {
    counted: Vec<(u32, u32)>,
    values: OrdValues,
}

/// The `k` largest counts, ties by value (a selection, then a sort of `k`).
fn top(mut all: Vec<(Arc<str>, u64)>, k: usize) -> Vec<(String, u64)> {
    let order =
        |a: &(Arc<str>, u64), b: &(Arc<str>, u64)| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0));
    if k == 0 {
        return Vec::new();
    }
    if all.len() > k {
        all.select_nth_unstable_by(k - 1, order);
        all.truncate(k);
    }
    all.sort_by(order);
    all.into_iter().map(|(v, n)| (v.to_string(), n)).collect()
}

impl Collector for FlatFacetCounts {
    type Fruit = Vec<(String, u64)>;
    type Child = FlatFacetSegment;

    fn for_segment(
        &self,
        ord: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<FlatFacetSegment> {
        let reader = segment.facet_reader(&self.field)?;
        let values = self.values.get(ord as usize).cloned().unwrap_or_default();
        if values.len() != reader.num_facets() {
            return Err(tantivy::TantivyError::InternalError(format!(
                "facet values of {} do not match segment {ord}",
                self.field
            )));
        }
        let ords = segment
            .fast_fields()
            .str(&self.field)?
            .ok_or_else(|| {
                tantivy::TantivyError::SchemaError(format!("no facet column {}", self.field))
            })?
            .ords()
            .clone();
        let single = ords.get_cardinality() != tantivy::columnar::Cardinality::Multivalued;
        Ok(FlatFacetSegment {
            counts: vec![0u32; reader.num_facets()],
            ords,
            single,
            buffer: Vec::new(),
            values,
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<SegmentCounts>) -> tantivy::Result<Self::Fruit> {
        if let [one] = &fruits[..] {
            // One segment: its ordinals are distinct values already.
            let all = one
                .counted
                .iter()
                .map(|&(o, n)| (one.values[o as usize].clone(), n as u64))
                .collect();
            return Ok(top(all, self.k));
        }
        // Each segment's ordinals are in value order (its dictionary's):
        // merge the sorted lists, adding the counts of equal values.
        let mut heads = vec![0usize; fruits.len()];
        let mut all: Vec<(Arc<str>, u64)> = Vec::new();
        loop {
            let mut min: Option<&Arc<str>> = None;
            for (f, &h) in fruits.iter().zip(&heads) {
                if let Some(&(o, _)) = f.counted.get(h) {
                    let v = &f.values[o as usize];
                    if min.is_none_or(|m| v < m) {
                        min = Some(v);
                    }
                }
            }
            let Some(min) = min.cloned() else { break };
            let mut n = 0u64;
            for (f, h) in fruits.iter().zip(heads.iter_mut()) {
                if let Some(&(o, c)) = f.counted.get(*h) {
                    if f.values[o as usize] == min {
                        n += c as u64;
                        *h += 1;
                    }
                }
            }
            all.push((min, n));
        }
        Ok(top(all, self.k))
    }
}

impl SegmentCollector for FlatFacetSegment {
    type Fruit = SegmentCounts;

    fn collect(&mut self, doc: DocId, _score: Score) {
        // A document's ordinals are sorted but may repeat (a card listing a
        // language twice): it counts once per value.
        let mut last = None;
        for ord in self.ords.values_for_doc(doc) {
            if last == Some(ord) {
                continue;
            }
            last = Some(ord);
            if let Some(c) = self.counts.get_mut(ord as usize) {
                *c += 1;
            }
        }
    }

    fn collect_block(&mut self, docs: &[DocId]) {
        if !self.single {
            for &doc in docs {
                self.collect(doc, 0.0);
            }
            return;
        }
        self.buffer.resize(docs.len(), None);
        self.ords.first_vals(docs, &mut self.buffer);
        for ord in self.buffer.iter().flatten() {
            if let Some(c) = self.counts.get_mut(*ord as usize) {
                *c += 1;
            }
        }
    }

    fn harvest(self) -> SegmentCounts {
        SegmentCounts {
            counted: self
                .counts
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(o, n)| (o as u32, *n))
                .collect(),
            values: self.values,
        }
    }
}

/// The values of every facet ordinal of `field` in `segment`, in one
/// ordered pass over its dictionary.
pub fn ord_values(segment: &SegmentReader, field: &str) -> tantivy::Result<OrdValues> {
    let reader = segment.facet_reader(field)?;
    let ords: Vec<u64> = (0..reader.num_facets() as u64).collect();
    let mut out: Vec<Arc<str>> = Vec::with_capacity(ords.len());
    reader
        .facet_dict()
        .sorted_ords_to_term_cb(&ords, |bytes| {
            let v = tantivy::schema::Facet::from_encoded(bytes.to_vec())
                .ok()
                .and_then(|f| f.to_path().last().map(|s| s.to_string()))
                .unwrap_or_default();
            out.push(Arc::from(v));
        })
        .map_err(|e| tantivy::TantivyError::InternalError(e.to_string()))?;
    Ok(Arc::new(out))
}
