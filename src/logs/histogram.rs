//! Matching lines per time bucket: a collector over the timestamp fast
//! field, summed over the partitions the range overlaps.

use std::sync::Arc;

use serde::Serialize;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::ColumnValues;
use tantivy::query::Query;
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

use super::{LogError, LogStore};

/// The buckets the server picks when no step is given.
pub const DEFAULT_BUCKETS: i64 = 100;

/// Most buckets one request may ask for.
pub const MAX_BUCKETS: i64 = 11_000;

/// One bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// Start of the bucket, Unix milliseconds.
    pub t: i64,
    /// Matching lines in it.
    pub count: u64,
}

/// The histogram.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Histogram {
    /// Bucket width, milliseconds.
    pub step_ms: i64,
    /// Every bucket of the range, empty ones included.
    pub buckets: Vec<Bucket>,
}

/// The step giving about [`DEFAULT_BUCKETS`] buckets over a range: a
/// round number of milliseconds (1, 2, 5 × 10ⁿ ms, or whole minutes/hours).
pub fn auto_step_ms(start_ms: i64, end_ms: i64) -> i64 {
    // Saturating: the range comes from the request and may span the
    // whole of i64.
    let span = end_ms.saturating_sub(start_ms).max(1);
    let raw = ceil_div(span, DEFAULT_BUCKETS);
    const NICE: &[i64] = &[
        1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000,
        120_000, 300_000, 600_000, 900_000, 1_800_000, 3_600_000, 7_200_000, 10_800_000,
        21_600_000, 43_200_000, 86_400_000,
    ];
    NICE.iter()
        .copied()
        .find(|&n| n >= raw)
        .unwrap_or_else(|| ceil_div(raw, 86_400_000).saturating_mul(86_400_000))
}

/// `a / b` rounded up, for positive `a` and `b`, without overflow.
fn ceil_div(a: i64, b: i64) -> i64 {
    a / b + i64::from(a % b != 0)
}

/// Which bucket of `step_ns` from `start_ns` holds `ts`, computed without
/// overflow whatever the range (the caller checks `ts` is in it).
fn bucket_of(ts: i64, start_ns: i64, step_ns: i64) -> usize {
    ((i128::from(ts) - i128::from(start_ns)) / i128::from(step_ns)) as usize
}

/// Adds one to bucket `i` if it exists.
fn count(counts: &mut [u64], i: usize) {
    if let Some(c) = counts.get_mut(i) {
        *c += 1;
    }
}

struct Counts {
    start_ns: i64,
    end_ns: i64,
    step_ns: i64,
    n: usize,
    /// The query matches every document: read the timestamp column
    /// sequentially instead of running the query.
    all: bool,
}

struct CountsSegment {
    ts: Arc<dyn ColumnValues<i64>>,
    start_ns: i64,
    end_ns: i64,
    step_ns: i64,
    counts: Vec<u64>,
    buf: Vec<i64>,
}

impl Collector for Counts {
    type Fruit = Vec<u64>;
    type Child = CountsSegment;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<CountsSegment> {
        Ok(CountsSegment {
            ts: super::segments::timestamps(reader)?,
            start_ns: self.start_ns,
            end_ns: self.end_ns,
            step_ns: self.step_ns,
            counts: vec![0; self.n],
            buf: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    /// Skips segments entirely outside the range.
    fn collect_segment(
        &self,
        weight: &dyn tantivy::query::Weight,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<Vec<u64>> {
        let mut c = self.for_segment(segment, reader)?;
        if !super::segments::may_overlap(c.ts.as_ref(), self.start_ns, self.end_ns) {
            return Ok(c.counts);
        }
        if self.all && reader.alive_bitset().is_none() {
            let max = reader.max_doc();
            let mut buf = vec![0i64; 4096];
            let mut start = 0u32;
            while start < max {
                let len = (max - start).min(4096) as usize;
                c.ts.get_range(u64::from(start), &mut buf[..len]);
                for &ts in &buf[..len] {
                    if ts >= c.start_ns && ts < c.end_ns {
                        count(&mut c.counts, bucket_of(ts, c.start_ns, c.step_ns));
                    }
                }
                start += len as u32;
            }
            return Ok(c.counts);
        }
        super::segments::for_each_alive(weight, reader, &mut |docs| c.collect_block(docs))?;
        Ok(c.harvest())
    }

    fn merge_fruits(&self, fruits: Vec<Vec<u64>>) -> tantivy::Result<Vec<u64>> {
        let mut total = vec![0; self.n];
        for f in fruits {
            for (t, c) in total.iter_mut().zip(f) {
                *t += c;
            }
        }
        Ok(total)
    }
}

impl SegmentCollector for CountsSegment {
    type Fruit = Vec<u64>;

    fn collect(&mut self, doc: DocId, _: Score) {
        let ts = self.ts.get_val(doc);
        if ts >= self.start_ns && ts < self.end_ns {
            count(&mut self.counts, bucket_of(ts, self.start_ns, self.step_ns));
        }
    }

    /// Reads the timestamps of a block at once (one call into the
    /// column instead of one per document).
    fn collect_block(&mut self, docs: &[DocId]) {
        self.buf.resize(docs.len(), 0);
        self.ts.get_vals(docs, &mut self.buf);
        for &ts in &self.buf {
            if ts >= self.start_ns && ts < self.end_ns {
                count(&mut self.counts, bucket_of(ts, self.start_ns, self.step_ns));
            }
        }
    }

    fn harvest(self) -> Vec<u64> {
        self.counts
    }
}

/// How many `step_ms` buckets cover `[start_ms, end_ms)` (the last one
/// whole); `Err` for an empty range, a step that is not positive or more
/// than [`MAX_BUCKETS`] buckets.
pub fn bucket_count(start_ms: i64, end_ms: i64, step_ms: i64) -> Result<i64, LogError> {
    if step_ms <= 0 {
        return Err(LogError::BadQuery("step must be positive".into()));
    }
    if end_ms <= start_ms {
        return Err(LogError::BadQuery("end must be after start".into()));
    }
    // In i128: the range comes from the request and may span all of i64.
    let n =
        (i128::from(end_ms) - i128::from(start_ms) + i128::from(step_ms) - 1) / i128::from(step_ms);
    if n > i128::from(MAX_BUCKETS) {
        return Err(LogError::BadQuery(format!(
            "{n} buckets asked for; at most {MAX_BUCKETS} (choose a larger step)"
        )));
    }
    Ok(n as i64)
}

impl LogStore {
    /// Counts `query`'s matches in `[start_ms, end_ms)` per `step_ms`
    /// bucket (the first bucket starts at `start_ms`).
    pub fn histogram(
        &self,
        query: &dyn Query,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Histogram, LogError> {
        let n = bucket_count(start_ms, end_ms, step_ms)?;
        let start_ns = start_ms.saturating_mul(1_000_000);
        // The last bucket is whole, so every bucket counts the same span.
        let end_ns = start_ms
            .saturating_add(n.saturating_mul(step_ms))
            .saturating_mul(1_000_000);
        let collector = Counts {
            start_ns,
            end_ns,
            step_ns: step_ms.saturating_mul(1_000_000),
            n: n as usize,
            all: query.is::<tantivy::query::AllQuery>(),
        };
        let mut counts = vec![0u64; n as usize];
        for part in self.partitions(start_ns, end_ns) {
            let searcher = part.reader.searcher();
            let bound = super::query::bind(self.schema(), query, &part);
            let q = if collector.all
                || (start_ns <= part.span.start_ns && end_ns >= part.span.end_ns)
            {
                bound
            } else {
                Box::new(tantivy::query::BooleanQuery::new(vec![
                    (tantivy::query::Occur::Must, bound),
                    (
                        tantivy::query::Occur::Must,
                        Box::new(tantivy::query::RangeQuery::new(
                            std::ops::Bound::Included(tantivy::Term::from_field_i64(
                                self.schema().timestamp,
                                start_ns,
                            )),
                            std::ops::Bound::Excluded(tantivy::Term::from_field_i64(
                                self.schema().timestamp,
                                end_ns,
                            )),
                        )),
                    ),
                ])) as Box<dyn Query>
            };
            let c = searcher
                .search(&q, &collector)
                .map_err(|e| LogError::Index(e.to_string()))?;
            for (t, x) in counts.iter_mut().zip(c) {
                *t += x;
            }
        }
        Ok(Histogram {
            step_ms,
            buckets: counts
                .into_iter()
                .enumerate()
                .map(|(i, count)| Bucket {
                    t: start_ms.saturating_add((i as i64).saturating_mul(step_ms)),
                    count,
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_round_and_near_a_hundred_buckets() {
        assert_eq!(auto_step_ms(0, 3_600_000), 60_000);
        assert_eq!(auto_step_ms(0, 300_000), 5_000);
        assert_eq!(auto_step_ms(0, 86_400_000), 900_000);
        assert_eq!(auto_step_ms(0, 1), 1);
        // Found by the query_params fuzz target: ranges spanning all of
        // i64 overflowed.
        assert!(auto_step_ms(i64::MIN, i64::MAX) > 0);
        assert!(auto_step_ms(-9_000_000_000_000_000_000, 9_000_000_000_000_000_000) > 0);
        assert!(bucket_count(i64::MIN, i64::MAX, 1).is_err());
        assert!(bucket_count(i64::MIN, i64::MAX, i64::MAX).is_ok());
        assert_eq!(bucket_of(i64::MAX, i64::MIN, i64::MAX), 2);
        let n = 3_600_000 / auto_step_ms(0, 3_600_000);
        assert!((50..=100).contains(&n));
    }
}
