//! Downsampled rollups: per series and per fixed time bucket (5 minutes, 1 hour) the
//! minimum, maximum, sum, count, first and last sample and the counter-aware increase
//! between them.
//!
//! Rollup blocks use the ordinary block format with one chunk column per aggregate (the
//! bucket start is the timestamp), so a regular grid of buckets costs one bit per timestamp.
//! The first and last samples keep their timestamps (as offsets from the bucket start), so a
//! window made of whole buckets plus the one sample on its closing edge — what a PromQL range
//! `[t - r, t]` is when `t` and `r` are multiples of the width — is answered exactly: see
//! `crate::promql::rollup`.
//!
//! Counters are summarised as Prometheus computes an increase: last − first plus, for each
//! drop (a reset), the value before the drop. The `resets` column holds that sum for the
//! drops *inside* a bucket; a drop between two buckets is rebuilt when reading, from one
//! bucket's last and the next one's first value ([`Bucket::merge`], [`increases`]), so it is
//! counted whichever blocks the two buckets come from.
//!
//! Prometheus staleness markers are not samples of the series and are left out.

use super::block::ChunkData;
use super::error::{Result, StorageError};
use super::sample::Sample;

/// Width of the fine rollup.
pub const RES_5M: i64 = 5 * 60_000;
/// Width of the coarse rollup.
pub const RES_1H: i64 = 60 * 60_000;
/// The rollup resolutions built, finest first.
pub const RESOLUTIONS: [i64; 2] = [RES_5M, RES_1H];

const COL_MIN: u8 = 0;
const COL_MAX: u8 = 1;
const COL_SUM: u8 = 2;
const COL_COUNT: u8 = 3;
const COL_LAST: u8 = 4;
const COL_RESETS: u8 = 5;
const COL_FIRST: u8 = 6;
const COL_FIRST_OFFSET: u8 = 7;
/// The column always read (see [`decode`]).
pub const FIRST_OFFSET_COLUMN: u8 = COL_FIRST_OFFSET;
const COL_LAST_OFFSET: u8 = 8;
/// Number of aggregate columns in a rollup block.
pub const COLUMNS: usize = 9;

/// The bit pattern of Prometheus's staleness marker (a NaN that ends a series).
const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// True for a Prometheus staleness marker.
#[inline]
pub fn is_stale_marker(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// Aggregates of the samples of one series inside one time bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Bucket start (aligned to the bucket width).
    pub t: i64,
    /// Smallest value (NaN only when all values are NaN).
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Sum of values.
    pub sum: f64,
    /// Number of samples.
    pub count: f64,
    /// Value of the oldest sample.
    pub first: f64,
    /// Timestamp of the oldest sample.
    pub first_t: i64,
    /// Value of the newest sample.
    pub last: f64,
    /// Timestamp of the newest sample.
    pub last_t: i64,
    /// Sum of the values just before each drop inside the bucket (counter resets).
    pub resets: f64,
}

impl Bucket {
    /// A bucket holding one sample.
    pub fn of(t: i64, s: Sample) -> Self {
        Bucket {
            t,
            min: s.v,
            max: s.v,
            sum: s.v,
            count: 1.0,
            first: s.v,
            first_t: s.t,
            last: s.v,
            last_t: s.t,
            resets: 0.0,
        }
    }

    /// Counter-aware increase from the first to the last sample.
    pub fn increase(&self) -> f64 {
        self.last - self.first + self.resets
    }

    /// Average of the bucket's samples.
    pub fn avg(&self) -> f64 {
        self.sum / self.count
    }

    /// Merges the samples of `later` (a later part of the same bucket, or the next bucket
    /// when widening) into this one; the step between the two counts as increase.
    pub fn merge(&mut self, later: &Bucket) {
        self.min = self.min.min(later.min);
        self.max = self.max.max(later.max);
        self.sum += later.sum;
        self.count += later.count;
        self.resets += reset_at(self.last, later.first) + later.resets;
        self.last = later.last;
        self.last_t = later.last_t;
    }
}

/// Counter increase from `prev` to `cur`: a drop means the counter was reset.
#[inline]
pub fn counter_step(prev: f64, cur: f64) -> f64 {
    if cur >= prev { cur - prev } else { cur }
}

/// What a step from `prev` to `cur` adds to the reset sum: `prev` when the value dropped
/// (compared as Prometheus does, so a NaN never counts as a drop).
#[inline]
pub fn reset_at(prev: f64, cur: f64) -> f64 {
    if cur < prev { prev } else { 0.0 }
}

/// The counter increase of each bucket including the step from the previous bucket's last
/// sample, so that the increases of consecutive buckets add up to the increase over all
/// their samples.
pub fn increases(buckets: &[Bucket]) -> Vec<f64> {
    let mut out = Vec::with_capacity(buckets.len());
    for (i, b) in buckets.iter().enumerate() {
        let step_in = match i.checked_sub(1).map(|j| &buckets[j]) {
            Some(prev) => b.first - prev.last + reset_at(prev.last, b.first),
            None => 0.0,
        };
        out.push(b.increase() + step_in);
    }
    out
}

/// Aggregates time-sorted samples into buckets of width `res` (aligned to multiples of it).
/// Staleness markers are skipped.
pub fn aggregate(samples: &[Sample], res: i64) -> Vec<Bucket> {
    let mut out: Vec<Bucket> = Vec::new();
    for s in samples.iter().filter(|s| !is_stale_marker(s.v)) {
        let t = s.t.div_euclid(res) * res;
        match out.last_mut() {
            Some(b) if b.t == t => {
                b.min = b.min.min(s.v);
                b.max = b.max.max(s.v);
                b.sum += s.v;
                b.count += 1.0;
                b.resets += reset_at(b.last, s.v);
                b.last = s.v;
                b.last_t = s.t;
            }
            _ => out.push(Bucket::of(t, *s)),
        }
    }
    out
}

/// Encodes buckets as sealed chunks, one column per aggregate.
pub fn encode(buckets: &[Bucket]) -> Vec<ChunkData> {
    let mut out = Vec::new();
    if buckets.is_empty() {
        return out;
    }
    for col in 0..COLUMNS as u8 {
        let samples: Vec<Sample> = buckets
            .iter()
            .map(|b| {
                let v = match col {
                    COL_MIN => b.min,
                    COL_MAX => b.max,
                    COL_SUM => b.sum,
                    COL_COUNT => b.count,
                    COL_LAST => b.last,
                    COL_RESETS => b.resets,
                    COL_FIRST => b.first,
                    // Offsets are below the bucket width: exact as floats.
                    COL_FIRST_OFFSET => (b.first_t - b.t) as f64,
                    _ => (b.last_t - b.t) as f64,
                };
                Sample::new(b.t, v)
            })
            .collect();
        out.extend(ChunkData::seal(col, &samples));
    }
    out
}

/// Which rollup columns a reader needs: a query decodes only those (a maximum
/// over a month needs one column of nine).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Columns(u16);

impl Columns {
    /// Every column.
    pub const ALL: Columns = Columns((1 << COLUMNS) - 1);
    /// Minimum.
    pub const MIN: Columns = Columns(1 << COL_MIN);
    /// Maximum.
    pub const MAX: Columns = Columns(1 << COL_MAX);
    /// Sum and count (for an average, also count alone).
    pub const SUM_COUNT: Columns = Columns(1 << COL_SUM | 1 << COL_COUNT);
    /// Count.
    pub const COUNT: Columns = Columns(1 << COL_COUNT);
    /// The first sample and its time.
    pub const FIRST: Columns = Columns(1 << COL_FIRST | 1 << COL_FIRST_OFFSET);
    /// The last sample and its time.
    pub const LAST: Columns = Columns(1 << COL_LAST | 1 << COL_LAST_OFFSET);
    /// What a rate or increase needs: first and last samples with times, count, resets.
    pub const COUNTER: Columns = Columns(
        1 << COL_FIRST
            | 1 << COL_FIRST_OFFSET
            | 1 << COL_LAST
            | 1 << COL_LAST_OFFSET
            | 1 << COL_COUNT
            | 1 << COL_RESETS,
    );

    /// Both sets.
    pub const fn with(self, other: Columns) -> Columns {
        Columns(self.0 | other.0)
    }

    /// True when column `c` is wanted.
    pub fn has(self, c: u8) -> bool {
        self.0 & (1 << c) != 0
    }
}

/// Rebuilds buckets from the decoded columns of one series. Columns not read
/// (empty) come back as NaN values and zero offsets; the first sample's
/// offset is always read, as its presence tells whether a sample sits on the
/// bucket start.
pub fn decode(columns: &[Vec<Sample>; COLUMNS]) -> Result<Vec<Bucket>> {
    let n = columns.iter().map(Vec::len).max().unwrap_or(0);
    if columns.iter().any(|c| c.len() != n && !c.is_empty()) {
        return Err(StorageError::CorruptChunk(
            "rollup columns differ in length".into(),
        ));
    }
    let Some(times) = columns.iter().find(|c| !c.is_empty()) else {
        return Ok(Vec::new());
    };
    let col = |c: u8, i: usize| columns[c as usize].get(i).map_or(f64::NAN, |s| s.v);
    let offset = |c: u8, i: usize| columns[c as usize].get(i).map_or(0, |s| s.v as i64);
    Ok((0..n)
        .map(|i| {
            let t = times[i].t;
            Bucket {
                t,
                min: col(COL_MIN, i),
                max: col(COL_MAX, i),
                sum: col(COL_SUM, i),
                count: col(COL_COUNT, i),
                first: col(COL_FIRST, i),
                first_t: t + offset(COL_FIRST_OFFSET, i),
                last: col(COL_LAST, i),
                last_t: t + offset(COL_LAST_OFFSET, i),
                resets: col(COL_RESETS, i),
            }
        })
        .collect())
}

/// Merges bucket lists of the same series from consecutive sources (sorted by time);
/// buckets with the same start are combined.
pub fn merge_sorted(parts: impl IntoIterator<Item = Vec<Bucket>>) -> Vec<Bucket> {
    let mut out: Vec<Bucket> = Vec::new();
    for part in parts {
        for b in part {
            match out.last_mut() {
                Some(last) if last.t == b.t => last.merge(&b),
                _ => out.push(b),
            }
        }
    }
    out.sort_by_key(|b| b.t);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_with_counter_resets() {
        // 10 s counter that resets in the second bucket of 60 s.
        let vals = [0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 5.0, 15.0];
        let samples: Vec<Sample> = vals
            .iter()
            .enumerate()
            .map(|(i, v)| Sample::new(i as i64 * 10_000, *v))
            .collect();
        let b = aggregate(&samples, 60_000);
        assert_eq!(b.len(), 2);
        assert_eq!(
            (b[0].t, b[0].count, b[0].min, b[0].max, b[0].last),
            (0, 6.0, 0.0, 50.0, 50.0)
        );
        assert_eq!(b[0].increase(), 50.0);
        // Inside the second bucket: 60, reset to 5 (+5), 5 → 15 (+10).
        assert_eq!(b[1].increase(), 15.0);
        assert_eq!(
            (b[1].first, b[1].first_t, b[1].last_t),
            (60.0, 60_000, 80_000)
        );
        assert_eq!(b[1].sum, 80.0);
        // With the step between the buckets (50 → 60).
        let total: f64 = increases(&b).iter().sum();
        assert_eq!(total, 75.0);
    }

    #[test]
    fn encode_decode_round_trip_and_merge() {
        let samples: Vec<Sample> = (0..1000)
            .map(|i| Sample::new(i * 10_000, (i % 17) as f64))
            .collect();
        let b = aggregate(&samples, RES_5M);
        let chunks = encode(&b);
        let mut cols: [Vec<Sample>; COLUMNS] = Default::default();
        for c in &chunks {
            cols[c.column as usize]
                .extend(crate::storage::codec::decode(c.encoding, &c.bytes).unwrap());
        }
        assert_eq!(decode(&cols).unwrap(), b);
        // Splitting the raw data anywhere and merging the partial buckets gives the same
        // min/max/sum/count/last.
        let (l, r) = samples.split_at(333);
        let merged = merge_sorted([aggregate(l, RES_5M), aggregate(r, RES_5M)]);
        assert_eq!(merged.len(), b.len());
        for (m, x) in merged.iter().zip(&b) {
            assert_eq!(m, x);
        }
    }

    #[test]
    fn staleness_markers_are_not_aggregated() {
        let stale = f64::from_bits(STALE_NAN_BITS);
        let samples = [
            Sample::new(0, 1.0),
            Sample::new(10_000, stale),
            Sample::new(20_000, 3.0),
        ];
        let b = aggregate(&samples, 60_000);
        assert_eq!((b[0].count, b[0].sum, b[0].last_t), (2.0, 4.0, 20_000));
    }

    #[test]
    fn increase_across_any_split_is_the_raw_increase() {
        // A counter with resets, split into parts at every position: merged buckets
        // give the same increase as the whole.
        let samples: Vec<Sample> = (0..200)
            .map(|i| Sample::new(i * 7_000, ((i * 13) % 90) as f64))
            .collect();
        let raw: f64 = samples
            .windows(2)
            .map(|w| counter_step(w[0].v, w[1].v))
            .sum();
        for cut in [1, 50, 99, 150] {
            let (l, r) = samples.split_at(cut);
            let merged = merge_sorted([aggregate(l, 60_000), aggregate(r, 60_000)]);
            let total: f64 = increases(&merged).iter().sum();
            assert!((total - raw).abs() < 1e-9, "cut {cut}: {total} vs {raw}");
        }
    }
}
