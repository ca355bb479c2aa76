//! A sample (millisecond timestamp, float value) and the unit of a write batch.

use serde::{Deserialize, Serialize};

use super::labels::{Labels, LabelsRef};

/// One data point: a millisecond Unix timestamp and a 64-bit float value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub t: i64,
    /// The value; NaN and ±Inf are stored bit-exactly.
    pub v: f64,
}

impl Sample {
    /// Builds a sample.
    pub fn new(t: i64, v: f64) -> Self {
        Sample { t, v }
    }

    /// True when both timestamp and value bits are identical (NaN payloads included).
    pub fn bit_eq(&self, other: &Sample) -> bool {
        self.t == other.t && self.v.to_bits() == other.v.to_bits()
    }
}

/// The samples of one series inside an append batch, in ascending timestamp order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesSamples {
    /// Identity of the series.
    pub labels: Labels,
    /// Samples to append, oldest first.
    pub samples: Vec<Sample>,
}

/// [`SeriesSamples`] borrowed: what [`super::Storage::append_refs`] takes, so a request
/// decoded in place is appended without copying its labels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesSamplesRef<'a> {
    /// Identity of the series.
    pub labels: LabelsRef<'a>,
    /// Samples to append, oldest first.
    pub samples: &'a [Sample],
}

/// Calls `f` with borrowed views of an owned batch (for APIs taking [`SeriesSamplesRef`]).
pub fn with_refs<R>(batch: &[SeriesSamples], f: impl FnOnce(&[SeriesSamplesRef<'_>]) -> R) -> R {
    let pairs: Vec<(&str, &str)> = batch.iter().flat_map(|s| s.labels.iter()).collect();
    let mut refs = Vec::with_capacity(batch.len());
    let mut start = 0;
    for s in batch {
        let end = start + s.labels.len();
        refs.push(SeriesSamplesRef {
            labels: LabelsRef::new(&pairs[start..end]),
            samples: &s.samples,
        });
        start = end;
    }
    f(&refs)
}
