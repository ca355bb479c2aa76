//! Anomaly detectors behind the `baseline` and `host comparison` rule kinds, and the tools that
//! score them.
//!
//! Everything here is plain data in, plain data out: samples are `(t_ms, value)` pairs, no I/O,
//! no clocks, no threads. Detector state is `Send` and serde-serialisable so the alert engine can
//! persist it next to its rule state and resume after a restart without relearning.
//!
//! * [`baseline`]: a per-series robust seasonal band (median and MAD per time-of-day or
//!   time-of-week slot, blended with an exponentially weighted robust level so a level shift is
//!   caught and then relearned), with a warm-up state, a sensitivity in robust standard
//!   deviations, floors for flat series and hysteresis.
//! * [`host_comparison`]: flags the members of a group that sit far from their peers' robust
//!   centre (median, double MAD) for most of a window.
//! * [`classic`]: the rules the detectors are compared against (static threshold, PromQL z-score).
//! * [`nab`]: the Numenta Anomaly Benchmark scorer (windows, scaled sigmoid, cost profiles,
//!   normalisation by the null and perfect detectors).
//! * [`synth`]: a seeded generator of labelled container-metric series.
//! * [`eval`]: event-level precision, recall, detection latency and false alarms per series-day.
//!
//! See `docs/anomaly-detection.md` for the algorithms and the evaluation.

pub mod baseline;
pub mod classic;
pub mod eval;
pub mod host_comparison;
pub mod nab;
pub mod robust;
pub mod synth;

use serde::{Deserialize, Serialize};

/// One sample: timestamp in milliseconds since the Unix epoch and its value.
pub type Sample = (i64, f64);

/// Which deviations count as anomalous.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Only values above the expected range.
    Above,
    /// Only values below the expected range.
    Below,
    /// Values on either side.
    #[default]
    Both,
}

impl Direction {
    /// Whether a signed score `z` (positive above, negative below) counts in this direction
    /// when its magnitude reaches `limit`.
    pub fn exceeds(self, z: f64, limit: f64) -> bool {
        match self {
            Direction::Above => z >= limit,
            Direction::Below => -z >= limit,
            Direction::Both => z.abs() >= limit,
        }
    }
}
