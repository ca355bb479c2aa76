//! The time-series math behind the Heapster views: summing sub-series of
//! one cgroup, counter rates that never go negative, alignment of series
//! from different nodes on the collection grid, choosing the newest
//! incarnation of a restarted container, and summing members into pods,
//! namespaces, nodes and the cluster.

use std::collections::BTreeMap;

use crate::storage::Sample;
use crate::storage::rollup::counter_step;

/// The grid used when the data has too few samples to show its own
/// interval: the agent's default collection interval.
pub const DEFAULT_RESOLUTION_MS: i64 = 10_000;

/// The collection interval of the data: the smallest median spacing of
/// consecutive samples among the series, rounded to whole seconds (at least
/// one second); [`DEFAULT_RESOLUTION_MS`] when no series has two samples.
pub fn infer_resolution<'a>(series: impl Iterator<Item = &'a [Sample]>) -> i64 {
    series
        .filter_map(|s| {
            let mut deltas: Vec<i64> = s
                .windows(2)
                .map(|w| w[1].t - w[0].t)
                .filter(|d| *d > 0)
                .collect();
            if deltas.is_empty() {
                return None;
            }
            deltas.sort_unstable();
            Some(deltas[deltas.len() / 2])
        })
        .min()
        .map_or(DEFAULT_RESOLUTION_MS, |d| {
            ((d + 500).div_euclid(1000) * 1000).max(1000)
        })
}

/// Point-wise sum of series by exact timestamp (the interfaces of one
/// cgroup, reported together on every collection).
pub fn sum_by_timestamp(parts: &[Vec<Sample>]) -> Vec<Sample> {
    if parts.len() == 1 {
        return parts[0].clone();
    }
    let mut acc: BTreeMap<i64, f64> = BTreeMap::new();
    for p in parts {
        for s in p {
            *acc.entry(s.t).or_default() += s.v;
        }
    }
    acc.into_iter().map(|(t, v)| Sample::new(t, v)).collect()
}

/// Per-second rate of a counter between consecutive samples, times
/// `scale`, stamped at the later sample. A drop is a counter reset: the new
/// value counts as the increase (never a negative rate). The first sample
/// has no rate.
pub fn counter_rate(samples: &[Sample], scale: f64) -> Vec<Sample> {
    samples
        .windows(2)
        .filter(|w| w[1].t > w[0].t && w[0].v.is_finite() && w[1].v.is_finite())
        .map(|w| {
            let secs = (w[1].t - w[0].t) as f64 / 1000.0;
            Sample::new(w[1].t, counter_step(w[0].v, w[1].v) / secs * scale)
        })
        .collect()
}

/// A value placed on the grid: the bucket it belongs to and the raw
/// timestamp it came from (to prefer the newest).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aligned {
    /// Raw sample timestamp.
    pub t: i64,
    /// Value.
    pub v: f64,
}

/// Places samples on the grid of `res`: each bucket `[k·res, (k+1)·res)`
/// keeps its newest sample, stamped with the bucket start.
pub fn align(samples: &[Sample], res: i64) -> BTreeMap<i64, Aligned> {
    let mut out = BTreeMap::new();
    for s in samples.iter().filter(|s| s.v.is_finite()) {
        out.insert(s.t.div_euclid(res) * res, Aligned { t: s.t, v: s.v });
    }
    out
}

/// Merges the incarnations of one member (a container restarted under a
/// new cgroup): per bucket, the value sampled last wins.
pub fn newest(incarnations: Vec<BTreeMap<i64, Aligned>>) -> BTreeMap<i64, f64> {
    let mut best: BTreeMap<i64, Aligned> = BTreeMap::new();
    for inc in incarnations {
        for (bucket, a) in inc {
            match best.get(&bucket) {
                Some(b) if b.t >= a.t => {}
                _ => {
                    best.insert(bucket, a);
                }
            }
        }
    }
    best.into_iter().map(|(b, a)| (b, a.v)).collect()
}

/// How members' values make the entity's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    /// Sum (pod = Σ containers, namespace = Σ pods, cluster = Σ nodes).
    Sum,
    /// Largest (a pod's uptime is its oldest member's).
    Max,
}

/// Combines members point-wise on the grid. A sum's newest bucket is left
/// out while fewer members reported in it than in the bucket before: nodes
/// collect at different moments of the interval, and a sum over the ones
/// that already reported would show a false dip.
pub fn combine(members: Vec<BTreeMap<i64, f64>>, how: Combine) -> Vec<Sample> {
    let mut acc: BTreeMap<i64, (f64, usize)> = BTreeMap::new();
    for m in members {
        for (t, v) in m {
            acc.entry(t)
                .and_modify(|(a, n)| {
                    *a = match how {
                        Combine::Sum => *a + v,
                        Combine::Max => a.max(v),
                    };
                    *n += 1;
                })
                .or_insert((v, 1));
        }
    }
    if how == Combine::Sum {
        let mut newest = acc.iter().rev();
        if let (Some((&t, &(_, last))), Some((_, &(_, before)))) = (newest.next(), newest.next())
            && last < before
        {
            acc.remove(&t);
        }
    }
    acc.into_iter()
        .map(|(t, (v, _))| Sample::new(t, v))
        .collect()
}

/// Point-wise `num / den` where both exist and `den > 0`.
pub fn ratio(num: &[Sample], den: &[Sample]) -> Vec<Sample> {
    let den: BTreeMap<i64, f64> = den.iter().map(|s| (s.t, s.v)).collect();
    num.iter()
        .filter_map(|s| {
            let d = *den.get(&s.t)?;
            (d > 0.0).then(|| Sample::new(s.t, s.v / d))
        })
        .collect()
}

/// The value of `series` at or before each timestamp of `base` (the last
/// one reported), `None` where there is none yet.
pub fn sample_at(series: &[Sample], t: i64) -> Option<f64> {
    let i = series.partition_point(|s| s.t <= t);
    (i > 0).then(|| series[i - 1].v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(pts: &[(i64, f64)]) -> Vec<Sample> {
        pts.iter().map(|&(t, v)| Sample::new(t, v)).collect()
    }

    #[test]
    fn resolution_is_the_collection_interval() {
        let a = s(&[(3_100, 0.0), (13_100, 0.0), (23_090, 0.0)]);
        let b = s(&[(0, 0.0), (60_000, 0.0)]);
        assert_eq!(
            infer_resolution([a.as_slice(), b.as_slice()].into_iter()),
            10_000
        );
        assert_eq!(
            infer_resolution([s(&[(0, 1.0)]).as_slice()].into_iter()),
            DEFAULT_RESOLUTION_MS
        );
    }

    #[test]
    fn rates_never_go_negative_across_a_reset() {
        let c = s(&[(0, 10.0), (10_000, 30.0), (20_000, 5.0), (30_000, 25.0)]);
        let r = counter_rate(&c, 1.0);
        assert_eq!(r, s(&[(10_000, 2.0), (20_000, 0.5), (30_000, 2.0)]));
        assert!(counter_rate(&c[..1], 1.0).is_empty());
    }

    #[test]
    fn alignment_and_newest_incarnation() {
        let old = align(&s(&[(1_000, 1.0), (11_000, 2.0)]), 10_000);
        let new = align(&s(&[(12_000, 7.0), (21_000, 8.0)]), 10_000);
        let merged = newest(vec![old, new]);
        assert_eq!(
            merged.into_iter().collect::<Vec<_>>(),
            vec![(0, 1.0), (10_000, 7.0), (20_000, 8.0)]
        );
    }

    #[test]
    fn members_sum_or_max_on_the_grid() {
        let a: BTreeMap<i64, f64> = [(0, 1.0), (10, 2.0)].into_iter().collect();
        let b: BTreeMap<i64, f64> = [(10, 5.0)].into_iter().collect();
        assert_eq!(
            combine(vec![a.clone(), b.clone()], Combine::Sum),
            s(&[(0, 1.0), (10, 7.0)])
        );
        assert_eq!(
            combine(vec![a.clone(), b], Combine::Max),
            s(&[(0, 1.0), (10, 5.0)])
        );
        // A newest bucket that only some members reported in yet is held
        // back from sums.
        let late: BTreeMap<i64, f64> = [(0, 4.0)].into_iter().collect();
        assert_eq!(
            combine(vec![a.clone(), late.clone()], Combine::Sum),
            s(&[(0, 5.0)])
        );
        assert_eq!(
            combine(vec![a, late], Combine::Max),
            s(&[(0, 4.0), (10, 2.0)])
        );
        assert_eq!(
            ratio(&s(&[(0, 1.0), (10, 3.0)]), &s(&[(10, 4.0)])),
            s(&[(10, 0.75)])
        );
        assert_eq!(sample_at(&s(&[(5, 1.0), (15, 2.0)]), 10), Some(1.0));
        assert_eq!(sample_at(&s(&[(5, 1.0)]), 4), None);
    }
}
