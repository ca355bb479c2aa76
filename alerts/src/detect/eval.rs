//! Event-level evaluation of an alerting detector against labelled windows (reference notes §5.5).
//!
//! Alerts are counted as *episodes*: an onset is the instant a detector goes from not alerting
//! to alerting. A labelled window `[start, end]` is detected when an onset falls in
//! `[start, end + tolerance]`; the detection latency is that onset minus `start`. An onset in no
//! (extended) window is a false alarm. No point adjustment is applied.

use super::Sample;

/// Onset instants of a sequence of `(t_ms, alerting)` states.
pub fn onsets(states: impl IntoIterator<Item = (i64, bool)>) -> Vec<i64> {
    let mut out = Vec::new();
    let mut was = false;
    for (t, now) in states {
        if now && !was {
            out.push(t);
        }
        was = now;
    }
    out
}

/// Counts accumulated over many series.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventStats {
    /// Labelled windows.
    pub windows: usize,
    /// Labelled windows with an onset in `[start, end + tolerance]`.
    pub detected: usize,
    /// All onsets.
    pub onsets: usize,
    /// Onsets outside every extended window.
    pub false_alarms: usize,
    /// Latency of each detected window, in milliseconds.
    pub latencies_ms: Vec<i64>,
    /// Days of scored time, summed over the series.
    pub series_days: f64,
}

impl EventStats {
    /// Adds one series: its onsets, label windows, the tolerance after each window, and the
    /// scored span `[from_ms, to_ms]` (onsets outside it are ignored).
    pub fn add_series(
        &mut self,
        onsets: &[i64],
        windows: &[(i64, i64)],
        tolerance_ms: i64,
        from_ms: i64,
        to_ms: i64,
    ) {
        let scored: Vec<i64> = onsets
            .iter()
            .copied()
            .filter(|t| *t >= from_ms && *t <= to_ms)
            .collect();
        self.series_days += (to_ms - from_ms) as f64 / 86_400_000.0;
        self.onsets += scored.len();
        for &(s, e) in windows {
            self.windows += 1;
            if let Some(first) = scored.iter().find(|t| **t >= s && **t <= e + tolerance_ms) {
                self.detected += 1;
                self.latencies_ms.push(first - s);
            }
        }
        self.false_alarms += scored
            .iter()
            .filter(|t| {
                !windows
                    .iter()
                    .any(|&(s, e)| **t >= s && **t <= e + tolerance_ms)
            })
            .count();
    }

    /// Share of onsets that fell in a labelled window (1 when there were no onsets).
    pub fn precision(&self) -> f64 {
        if self.onsets == 0 {
            1.0
        } else {
            1.0 - self.false_alarms as f64 / self.onsets as f64
        }
    }

    /// Share of labelled windows detected (1 when there were none).
    pub fn recall(&self) -> f64 {
        if self.windows == 0 {
            1.0
        } else {
            self.detected as f64 / self.windows as f64
        }
    }

    /// False alarms per 100 days of one series.
    pub fn false_alarms_per_100_series_days(&self) -> f64 {
        if self.series_days == 0.0 {
            0.0
        } else {
            100.0 * self.false_alarms as f64 / self.series_days
        }
    }

    /// The `q` quantile (0..=1, nearest rank) of the detection latencies, in milliseconds.
    pub fn latency_quantile_ms(&self, q: f64) -> Option<i64> {
        if self.latencies_ms.is_empty() {
            return None;
        }
        let mut l = self.latencies_ms.clone();
        l.sort_unstable();
        let rank = ((q * l.len() as f64).ceil() as usize).clamp(1, l.len());
        Some(l[rank - 1])
    }
}

/// Runs `detector` over `samples` and returns its onsets.
pub fn run_onsets<F: FnMut(i64, f64) -> bool>(samples: &[Sample], mut detector: F) -> Vec<i64> {
    onsets(samples.iter().map(|&(t, v)| (t, detector(t, v))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onsets_are_rising_edges() {
        let s = [(0, false), (1, true), (2, true), (3, false), (4, true)];
        assert_eq!(onsets(s), vec![1, 4]);
    }

    #[test]
    fn event_counts() {
        let mut st = EventStats::default();
        // Window [100, 200] with tolerance 50: onset 230 detects it (latency 130), 300 is false.
        st.add_series(&[10, 230, 300], &[(100, 200)], 50, 0, 86_400_000);
        assert_eq!(
            (st.windows, st.detected, st.onsets, st.false_alarms),
            (1, 1, 3, 2)
        );
        assert_eq!(st.latencies_ms, vec![130]);
        assert!((st.precision() - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(st.recall(), 1.0);
        assert_eq!(st.false_alarms_per_100_series_days(), 200.0);
        assert_eq!(st.latency_quantile_ms(0.5), Some(130));
    }
}
