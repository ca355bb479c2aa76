//! Walking the segments of a partition: the fast-field columns every
//! collector reads, the test that skips a segment whose lines all fall
//! outside a time range (without running the query on it), and the walk
//! over a segment's live matching documents, a block at a time. Shared by
//! searches ([`super::query`]), histograms ([`super::histogram`]) and
//! index stats ([`super::stats`]).

use std::sync::Arc;

use tantivy::columnar::ColumnValues;
use tantivy::query::Weight;
use tantivy::{DocId, SegmentReader};

/// A segment's `u64` fast-field column `name` (every line has a value).
pub fn u64_column(
    reader: &SegmentReader,
    name: &str,
) -> tantivy::Result<Arc<dyn ColumnValues<u64>>> {
    Ok(reader.fast_fields().u64(name)?.first_or_default_col(0))
}

/// A segment's line timestamps (Unix nanoseconds).
pub fn timestamps(reader: &SegmentReader) -> tantivy::Result<Arc<dyn ColumnValues<i64>>> {
    Ok(reader
        .fast_fields()
        .i64("timestamp")?
        .first_or_default_col(0))
}

/// Whether some line with timestamps `ts` may fall in `[start_ns,
/// end_ns)`, by the column's bounds: a segment that cannot hold one is
/// skipped (new lines sit in new segments, so recent searches, tails and
/// stats touch little).
pub fn may_overlap(ts: &dyn ColumnValues<i64>, start_ns: i64, end_ns: i64) -> bool {
    ts.max_value() >= start_ns && ts.min_value() < end_ns
}

/// Runs `weight` over the segment's live documents (without scores), a
/// block of documents at a time.
pub fn for_each_alive(
    weight: &dyn Weight,
    reader: &SegmentReader,
    f: &mut dyn FnMut(&[DocId]),
) -> tantivy::Result<()> {
    match reader.alive_bitset() {
        Some(alive) => {
            let mut live = Vec::new();
            weight.for_each_no_score(reader, &mut |docs| {
                live.clear();
                live.extend(docs.iter().copied().filter(|&d| alive.is_alive(d)));
                f(&live)
            })
        }
        None => weight.for_each_no_score(reader, f),
    }
}
