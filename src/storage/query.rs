//! Query building blocks: counter-aware rate/increase, per-step aggregation over time
//! (automatically served from rollups for coarse steps), reductions across series grouped
//! by labels, and min/max-preserving downsampling for graphs.

use std::collections::BTreeMap;
use std::time::Instant;

use super::engine::Storage;
use super::error::Result;
use super::labels::Labels;
use super::matcher::Matcher;
use super::rollup::{self, Bucket, RESOLUTIONS, counter_step};
use super::sample::Sample;

/// A per-step function over the samples of one series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeFn {
    /// Mean of the samples in the step.
    Avg,
    /// Smallest sample.
    Min,
    /// Largest sample.
    Max,
    /// Sum of samples.
    Sum,
    /// Number of samples.
    Count,
    /// Newest sample.
    Last,
    /// Counter increase (resets handled).
    Increase,
    /// Counter increase per second over the step.
    Rate,
}

/// A reduction across series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggOp {
    /// Sum of the series' values.
    Sum,
    /// Mean of the series' values.
    Avg,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Number of series with a value.
    Count,
}

/// Counter increase over consecutive samples: a drop is a reset, after which the new value
/// counts as increase (no extrapolation to window edges).
pub fn increase(samples: &[Sample]) -> f64 {
    samples
        .windows(2)
        .map(|w| counter_step(w[0].v, w[1].v))
        .sum()
}

/// Per-second counter rate between the first and the last sample; `None` with fewer than
/// two samples.
pub fn rate(samples: &[Sample]) -> Option<f64> {
    let (first, last) = (samples.first()?, samples.last()?);
    (last.t > first.t).then(|| increase(samples) / ((last.t - first.t) as f64 / 1000.0))
}

/// The coarsest rollup resolution that divides `step_ms` (0 = use raw samples).
pub fn choose_resolution(step_ms: i64) -> i64 {
    RESOLUTIONS
        .iter()
        .rev()
        .copied()
        .find(|&r| step_ms >= r && step_ms % r == 0)
        .unwrap_or(0)
}

/// The value of `f` for one bucket of width `step_ms`; `increase` is the bucket's counter
/// increase including the step from the previous bucket (see [`rollup::increases`]).
pub fn bucket_value(b: &Bucket, increase: f64, f: RangeFn, step_ms: i64) -> f64 {
    match f {
        RangeFn::Avg => b.avg(),
        RangeFn::Min => b.min,
        RangeFn::Max => b.max,
        RangeFn::Sum => b.sum,
        RangeFn::Count => b.count,
        RangeFn::Last => b.last,
        RangeFn::Increase => increase,
        RangeFn::Rate => increase / (step_ms as f64 / 1000.0),
    }
}

/// Merges buckets into wider ones of `step_ms` (aligned to multiples of it).
pub fn rebucket(buckets: &[Bucket], step_ms: i64) -> Vec<Bucket> {
    let mut out: Vec<Bucket> = Vec::new();
    for b in buckets {
        let t = b.t.div_euclid(step_ms) * step_ms;
        match out.last_mut() {
            Some(last) if last.t == t => last.merge(b),
            _ => out.push(Bucket { t, ..*b }),
        }
    }
    out
}

/// Reduces series point-wise across series sharing the values of the `by` labels
/// (`sum by (by) (...)`). Points are matched by timestamp.
pub fn group_by(
    series: &[(Labels, Vec<Sample>)],
    by: &[&str],
    op: AggOp,
) -> Vec<(Labels, Vec<Sample>)> {
    let mut groups: BTreeMap<Labels, BTreeMap<i64, (f64, f64)>> = BTreeMap::new();
    for (labels, points) in series {
        let g = groups.entry(labels.keep_only(by)).or_default();
        for p in points {
            let e = g.entry(p.t).or_insert((
                match op {
                    AggOp::Min => f64::INFINITY,
                    AggOp::Max => f64::NEG_INFINITY,
                    _ => 0.0,
                },
                0.0,
            ));
            e.0 = match op {
                AggOp::Sum | AggOp::Avg => e.0 + p.v,
                AggOp::Min => e.0.min(p.v),
                AggOp::Max => e.0.max(p.v),
                AggOp::Count => e.0 + 1.0,
            };
            e.1 += 1.0;
        }
    }
    groups
        .into_iter()
        .map(|(l, pts)| {
            let pts = pts
                .into_iter()
                .map(|(t, (acc, n))| Sample::new(t, if op == AggOp::Avg { acc / n } else { acc }))
                .collect();
            (l, pts)
        })
        .collect()
}

/// One point of a graph downsampled for display: the extremes of its bucket survive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinMaxPoint {
    /// Bucket start.
    pub t: i64,
    /// Smallest sample in the bucket.
    pub min: f64,
    /// Largest sample in the bucket.
    pub max: f64,
    /// Newest sample in the bucket.
    pub last: f64,
}

/// At most `max_points` points over `[start, end]`, each keeping its bucket's min and max
/// so peaks survive downsampling.
pub fn downsample_min_max(
    samples: &[Sample],
    start: i64,
    end: i64,
    max_points: usize,
) -> Vec<MinMaxPoint> {
    let span = (end - start + 1).max(1);
    let width = (span + max_points.max(1) as i64 - 1) / max_points.max(1) as i64;
    let shifted: Vec<Sample> = samples
        .iter()
        .filter(|s| s.t >= start && s.t <= end)
        .map(|s| Sample::new(s.t - start, s.v))
        .collect();
    rollup::aggregate(&shifted, width)
        .into_iter()
        .map(|b| MinMaxPoint {
            t: b.t + start,
            min: b.min,
            max: b.max,
            last: b.last,
        })
        .collect()
}

impl Storage {
    /// Applies `f` per step of `step_ms` over `[start_ms, end_ms]` to every matching series.
    /// Steps that are multiples of 5 m or 1 h are served from rollups (raw data fills in the
    /// range the rollups do not cover yet); finer steps read raw samples.
    pub fn range_query(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        f: RangeFn,
    ) -> Result<Vec<(Labels, Vec<Sample>)>> {
        let t0 = Instant::now();
        let res = if self.options().rollups {
            choose_resolution(step_ms)
        } else {
            0
        };
        let per_series: Vec<(Labels, Vec<Bucket>)> = if res > 0 {
            self.select_rollup(matchers, start_ms, end_ms, res)?
        } else {
            let mut v = Vec::new();
            for s in self.select(matchers, start_ms, end_ms)? {
                let s = s?;
                v.push((s.labels, rollup::aggregate(&s.samples, step_ms)));
            }
            v
        };
        let out = per_series
            .into_iter()
            .map(|(l, b)| {
                let steps = rebucket(&b, step_ms);
                let increases = rollup::increases(&steps);
                let pts = steps
                    .iter()
                    .zip(increases)
                    .map(|(b, inc)| Sample::new(b.t, bucket_value(b, inc, f, step_ms)))
                    .collect();
                (l, pts)
            })
            .collect();
        self.record_query(t0.elapsed());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(pts: &[(i64, f64)]) -> Vec<Sample> {
        pts.iter().map(|&(t, v)| Sample::new(t, v)).collect()
    }

    #[test]
    fn rate_and_increase_handle_counter_resets() {
        let c = s(&[(0, 100.0), (10_000, 110.0), (20_000, 5.0), (30_000, 25.0)]);
        assert_eq!(increase(&c), 10.0 + 5.0 + 20.0);
        assert_eq!(rate(&c), Some(35.0 / 30.0));
        assert_eq!(rate(&c[..1]), None);
    }

    #[test]
    fn resolution_choice() {
        assert_eq!(choose_resolution(10_000), 0);
        assert_eq!(choose_resolution(300_000), rollup::RES_5M);
        assert_eq!(choose_resolution(900_000), rollup::RES_5M);
        assert_eq!(choose_resolution(3_600_000), rollup::RES_1H);
        assert_eq!(choose_resolution(86_400_000), rollup::RES_1H);
        assert_eq!(choose_resolution(450_000), 0);
    }

    #[test]
    fn group_by_reduces_across_series() {
        let a = Labels::from_pairs([("__name__", "m"), ("pod", "a"), ("ns", "x")]);
        let b = Labels::from_pairs([("__name__", "m"), ("pod", "b"), ("ns", "x")]);
        let c = Labels::from_pairs([("__name__", "m"), ("pod", "c"), ("ns", "y")]);
        let input = vec![
            (a, s(&[(0, 1.0), (10, 2.0)])),
            (b, s(&[(0, 3.0)])),
            (c, s(&[(0, 10.0)])),
        ];
        let sum = group_by(&input, &["ns"], AggOp::Sum);
        assert_eq!(sum.len(), 2);
        assert_eq!(sum[0].0, Labels::from_pairs([("ns", "x")]));
        assert_eq!(sum[0].1, s(&[(0, 4.0), (10, 2.0)]));
        assert_eq!(
            group_by(&input, &[], AggOp::Max)[0].1,
            s(&[(0, 10.0), (10, 2.0)])
        );
        assert_eq!(group_by(&input, &[], AggOp::Avg)[0].1[0].v, 14.0 / 3.0);
        assert_eq!(group_by(&input, &[], AggOp::Count)[0].1[0].v, 3.0);
        assert_eq!(group_by(&input, &["ns"], AggOp::Min)[1].1, s(&[(0, 10.0)]));
    }

    #[test]
    fn downsampling_keeps_peaks() {
        let mut samples: Vec<Sample> = (0..1000).map(|i| Sample::new(i * 1000, 1.0)).collect();
        samples[537].v = 99.0;
        samples[12].v = -5.0;
        let pts = downsample_min_max(&samples, 0, 999_999, 10);
        assert_eq!(pts.len(), 10);
        assert_eq!(pts.iter().map(|p| p.max).fold(f64::MIN, f64::max), 99.0);
        assert_eq!(pts.iter().map(|p| p.min).fold(f64::MAX, f64::min), -5.0);
        assert_eq!(pts[5].max, 99.0);
    }
}
