//! The classic rules the anomaly detectors are measured against, implemented directly.
//!
//! * [`StaticThreshold`]: `x > above` or `x < below`, held for `for_ms` (a Prometheus `for`).
//! * [`PromZScore`]: the usual PromQL z-score rule
//!   `abs(x - avg_over_time(x[1h])) > 3 * stddev_over_time(x[1h])`, also with a `for`.
//!   As in Prometheus the range `(t - window, t]` includes the current sample and the standard
//!   deviation is the population one.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// A Prometheus-style `for`: the condition must hold continuously this long before firing.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct ForClause {
    for_ms: i64,
    pending_since: Option<i64>,
}

impl ForClause {
    fn step(&mut self, t_ms: i64, condition: bool) -> bool {
        if !condition {
            self.pending_since = None;
            return false;
        }
        let since = *self.pending_since.get_or_insert(t_ms);
        t_ms - since >= self.for_ms
    }
}

/// A static threshold rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StaticThreshold {
    /// Fires above this value.
    pub above: Option<f64>,
    /// Fires below this value.
    pub below: Option<f64>,
    hold: ForClause,
}

impl StaticThreshold {
    /// A rule firing when `x > above` or `x < below` has held for `for_ms`.
    pub fn new(above: Option<f64>, below: Option<f64>, for_ms: i64) -> StaticThreshold {
        StaticThreshold {
            above,
            below,
            hold: ForClause {
                for_ms,
                pending_since: None,
            },
        }
    }

    /// Evaluates the rule on one sample; true while firing.
    pub fn observe(&mut self, t_ms: i64, value: f64) -> bool {
        let hit = self.above.is_some_and(|a| value > a) || self.below.is_some_and(|b| value < b);
        self.hold.step(t_ms, hit)
    }
}

/// The PromQL z-score rule over a sliding window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PromZScore {
    /// Range of `avg_over_time` / `stddev_over_time`, in milliseconds.
    pub window_ms: i64,
    /// Multiple of the standard deviation (3 in the usual rule).
    pub k: f64,
    samples: VecDeque<(i64, f64)>,
    /// Sums of `v - origin` and its square over `samples` (the shift keeps them accurate).
    origin: f64,
    sum: f64,
    sum_sq: f64,
    hold: ForClause,
}

impl PromZScore {
    /// `abs(x - avg_over_time(x[window])) > k * stddev_over_time(x[window])` held for `for_ms`.
    pub fn new(window_ms: i64, k: f64, for_ms: i64) -> PromZScore {
        PromZScore {
            window_ms,
            k,
            samples: VecDeque::new(),
            origin: 0.0,
            sum: 0.0,
            sum_sq: 0.0,
            hold: ForClause {
                for_ms,
                pending_since: None,
            },
        }
    }

    /// Evaluates the rule at a new sample (samples in time order); true while firing.
    pub fn observe(&mut self, t_ms: i64, value: f64) -> bool {
        if self.samples.is_empty() {
            self.origin = value;
            self.sum = 0.0;
            self.sum_sq = 0.0;
        }
        let d = value - self.origin;
        self.samples.push_back((t_ms, value));
        self.sum += d;
        self.sum_sq += d * d;
        while let Some(&(t0, v0)) = self.samples.front() {
            if t0 > t_ms - self.window_ms {
                break;
            }
            let d0 = v0 - self.origin;
            self.sum -= d0;
            self.sum_sq -= d0 * d0;
            self.samples.pop_front();
        }
        let n = self.samples.len() as f64;
        let mean = self.sum / n;
        let var = (self.sum_sq / n - mean * mean).max(0.0);
        let hit = (d - mean).abs() > self.k * var.sqrt();
        self.hold.step(t_ms, hit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_threshold_honours_for() {
        let mut r = StaticThreshold::new(Some(10.0), None, 120_000);
        assert!(!r.observe(0, 11.0));
        assert!(!r.observe(60_000, 11.0));
        assert!(r.observe(120_000, 11.0));
        assert!(!r.observe(180_000, 9.0));
    }

    #[test]
    fn zscore_matches_direct_computation() {
        let mut r = PromZScore::new(300_000, 1.0, 0);
        let vals = [5.0, 6.0, 5.0, 7.0, 5.0, 5.0, 20.0];
        let mut got = Vec::new();
        for (i, v) in vals.iter().enumerate() {
            got.push(r.observe(i as i64 * 60_000, *v));
        }
        // Direct: window (t-5m, t] holds the last 5 samples.
        for (i, g) in got.iter().enumerate() {
            let lo = i.saturating_sub(4);
            let w = &vals[lo..=i];
            let mean = w.iter().sum::<f64>() / w.len() as f64;
            let sd = (w.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / w.len() as f64).sqrt();
            assert_eq!(*g, (vals[i] - mean).abs() > sd, "at {i}");
        }
        assert!(got[6]);
    }
}
