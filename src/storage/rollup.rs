//! Downsampled rollups: per series and per fixed time bucket (5 minutes, 1 hour) the
//! minimum, maximum, sum, count, last value and counter-aware increase.
//!
//! Rollup blocks use the ordinary block format with one chunk column per aggregate (the
//! bucket start is the timestamp), so a regular grid of buckets costs one bit per timestamp.
//! The increase column treats every series as a possible counter: a drop is a reset, after
//! which the new value counts as the increase (as Prometheus's `increase` does). It includes
//! the step from the previous sample of the same raw block; the step across a raw block
//! boundary is not included (a bucket that starts a block under-counts by at most one interval).

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
const COL_INCREASE: u8 = 5;
/// Number of aggregate columns in a rollup block.
pub const COLUMNS: usize = 6;

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
    /// Value of the newest sample.
    pub last: f64,
    /// Counter-aware increase within the bucket (resets handled).
    pub increase: f64,
}

impl Bucket {
    /// Average of the bucket's samples.
    pub fn avg(&self) -> f64 {
        self.sum / self.count
    }

    /// Merges a later partial bucket for the same `t` into this one.
    pub fn merge(&mut self, later: &Bucket) {
        self.min = self.min.min(later.min);
        self.max = self.max.max(later.max);
        self.sum += later.sum;
        self.count += later.count;
        self.last = later.last;
        self.increase += later.increase;
    }
}

/// Counter increase from `prev` to `cur`: a drop means the counter was reset.
#[inline]
pub fn counter_step(prev: f64, cur: f64) -> f64 {
    if cur >= prev { cur - prev } else { cur }
}

/// Aggregates time-sorted samples into buckets of width `res` (aligned to multiples of it).
pub fn aggregate(samples: &[Sample], res: i64) -> Vec<Bucket> {
    let mut out: Vec<Bucket> = Vec::new();
    let mut prev: Option<f64> = None;
    for s in samples {
        let t = s.t.div_euclid(res) * res;
        let inc = prev.map_or(0.0, |p| counter_step(p, s.v));
        prev = Some(s.v);
        match out.last_mut() {
            Some(b) if b.t == t => {
                b.min = b.min.min(s.v);
                b.max = b.max.max(s.v);
                b.sum += s.v;
                b.count += 1.0;
                b.last = s.v;
                b.increase += inc;
            }
            _ => out.push(Bucket {
                t,
                min: s.v,
                max: s.v,
                sum: s.v,
                count: 1.0,
                last: s.v,
                increase: inc,
            }),
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
                    _ => b.increase,
                };
                Sample::new(b.t, v)
            })
            .collect();
        out.extend(ChunkData::seal(col, &samples));
    }
    out
}

/// Rebuilds buckets from the decoded columns of one series.
pub fn decode(columns: &[Vec<Sample>; COLUMNS]) -> Result<Vec<Bucket>> {
    let n = columns[0].len();
    if columns.iter().any(|c| c.len() != n) {
        return Err(StorageError::CorruptChunk(
            "rollup columns differ in length".into(),
        ));
    }
    Ok((0..n)
        .map(|i| Bucket {
            t: columns[COL_MIN as usize][i].t,
            min: columns[COL_MIN as usize][i].v,
            max: columns[COL_MAX as usize][i].v,
            sum: columns[COL_SUM as usize][i].v,
            count: columns[COL_COUNT as usize][i].v,
            last: columns[COL_LAST as usize][i].v,
            increase: columns[COL_INCREASE as usize][i].v,
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
        assert_eq!(b[0].increase, 50.0);
        // 50 → 60 (+10), reset to 5 (+5), 5 → 15 (+10)
        assert_eq!(b[1].increase, 25.0);
        assert_eq!(b[1].sum, 80.0);
        let total: f64 = b.iter().map(|x| x.increase).sum();
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
            assert_eq!(
                (m.t, m.min, m.max, m.sum, m.count, m.last),
                (x.t, x.min, x.max, x.sum, x.count, x.last)
            );
        }
    }
}
