//! The Numenta Anomaly Benchmark (NAB) scorer, implemented from its published rules
//! (Lavin & Ahmad 2015, arXiv:1510.03336, and NAB's `sweeper.py`).
//!
//! * Each labelled anomaly window `[start, end]` is scored once: by its earliest detection, worth
//!   `A_TP × σ(y) / σ(-1)` where `σ(y) = 2/(1+e^{5y}) − 1` and `y = −(right − i + 1)/width` runs
//!   from −1 at the window's first row towards 0 at its last; a window without a detection costs
//!   `−A_FN`.
//! * Each detection outside every window costs `A_FP × σ(y)` (negative), where `y` is its distance
//!   in rows from the previous window's last row divided by that window's width − 1 (detections
//!   before any window, and from 3 widths on, cost the full `A_FP`).
//! * Rows in the probationary period (the first 15 % of the file, at most 750 rows) are not
//!   scored, and a window lying wholly in it is not counted.
//! * A corpus (or category) score is normalised as `100 × (S − S_null)/(S_perfect − S_null)`,
//!   where the null detector never fires and the perfect one fires on every window row.

/// Costs of a NAB application profile (all positive; signs are applied by the scorer).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CostProfile {
    /// Reward for a detection at the very start of a window.
    pub a_tp: f64,
    /// Cost of a detection far from any window.
    pub a_fp: f64,
    /// Cost of a window without a detection.
    pub a_fn: f64,
}

/// NAB's standard profile.
pub const STANDARD: CostProfile = CostProfile {
    a_tp: 1.0,
    a_fp: 0.11,
    a_fn: 1.0,
};
/// NAB's "reward low false-positive rate" profile.
pub const REWARD_LOW_FP: CostProfile = CostProfile {
    a_tp: 1.0,
    a_fp: 0.22,
    a_fn: 1.0,
};
/// NAB's "reward low false-negative rate" profile.
pub const REWARD_LOW_FN: CostProfile = CostProfile {
    a_tp: 1.0,
    a_fp: 0.11,
    a_fn: 2.0,
};

/// NAB's scaled sigmoid of the relative position `y` (−1 at a window's left edge, 0 at its right
/// edge, positive after it): `2/(1+e^{5y}) − 1`, and −1 from `y = 3` on.
pub fn scaled_sigmoid(y: f64) -> f64 {
    if y >= 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * y).exp()) - 1.0
    }
}

/// Rows at the start of a file of `rows` rows that are not scored.
pub fn probationary_rows(rows: usize) -> usize {
    ((0.15 * rows as f64).floor()).min(0.15 * 5000.0) as usize
}

/// A labelled window as row indices (inclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// First row of the window.
    pub first: usize,
    /// Last row of the window.
    pub last: usize,
}

/// Maps labelled `[start, end]` timestamps to row windows: the first row at or after `start`
/// and the last row at or before `end`. Windows with no row are dropped.
pub fn windows_from_times(timestamps: &[i64], windows: &[(i64, i64)]) -> Vec<Window> {
    windows
        .iter()
        .filter_map(|&(s, e)| {
            let first = timestamps.partition_point(|t| *t < s);
            let last = timestamps.partition_point(|t| *t <= e).checked_sub(1)?;
            (first <= last).then_some(Window { first, last })
        })
        .collect()
}

/// Score of one file.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FileScore {
    /// Raw (unnormalised) score.
    pub score: f64,
    /// Counted windows with a detection.
    pub tp: usize,
    /// Detections outside every window (after the probationary period).
    pub fp: usize,
    /// Counted windows without a detection.
    pub fn_: usize,
    /// Counted windows (not wholly probationary).
    pub windows: usize,
}

impl std::ops::AddAssign for FileScore {
    fn add_assign(&mut self, o: FileScore) {
        self.score += o.score;
        self.tp += o.tp;
        self.fp += o.fp;
        self.fn_ += o.fn_;
        self.windows += o.windows;
    }
}

/// Scores the rows flagged in `detections` (one flag per row) against `windows` (sorted, not
/// overlapping) with `profile`.
///
/// # Panics
/// When a window lies outside the rows or windows are unsorted or overlap.
pub fn score_file(detections: &[bool], windows: &[Window], profile: CostProfile) -> FileScore {
    let rows = detections.len();
    let probation = probationary_rows(rows);
    let max_tp = scaled_sigmoid(-1.0);
    let mut out = FileScore::default();
    // Best score per window, None while undetected; only windows with a scorable row count.
    let mut best: Vec<Option<f64>> = vec![None; windows.len()];
    let mut counted = vec![false; windows.len()];
    let mut w = 0; // next window not yet passed
    let mut prev: Option<Window> = None;
    for (i, &detected) in detections.iter().enumerate() {
        while w < windows.len() && windows[w].last < i {
            prev = Some(windows[w]);
            w += 1;
        }
        let inside = windows.get(w).filter(|win| win.first <= i);
        if i < probation {
            continue;
        }
        if let Some(win) = inside {
            assert!(win.last < rows, "window beyond the data");
            counted[w] = true;
            if detected {
                let width = (win.last - win.first + 1) as f64;
                let y = -((win.last - i + 1) as f64) / width;
                let s = scaled_sigmoid(y) * profile.a_tp / max_tp;
                best[w] = Some(best[w].map_or(s, |b: f64| b.max(s)));
            }
        } else if detected {
            let y = match prev {
                None => 3.0,
                Some(p) => {
                    let width = (p.last - p.first + 1) as f64;
                    (i - p.last) as f64 / (width - 1.0).max(1.0)
                }
            };
            out.score += scaled_sigmoid(y) * profile.a_fp;
            out.fp += 1;
        }
    }
    for (b, c) in best.iter().zip(&counted) {
        if !c {
            continue;
        }
        out.windows += 1;
        match b {
            Some(s) => {
                out.score += s;
                out.tp += 1;
            }
            None => {
                out.score -= profile.a_fn;
                out.fn_ += 1;
            }
        }
    }
    out
}

/// Raw scores of the null detector (never fires) and the perfect detector (fires on every
/// window row) for a file of `rows` rows: the two ends of the normalisation.
pub fn null_and_perfect(rows: usize, windows: &[Window], profile: CostProfile) -> (f64, f64) {
    let none = vec![false; rows];
    let mut all = vec![false; rows];
    for w in windows {
        all[w.first..=w.last].iter_mut().for_each(|d| *d = true);
    }
    (
        score_file(&none, windows, profile).score,
        score_file(&all, windows, profile).score,
    )
}

/// NAB's normalised score `100 × (raw − null)/(perfect − null)`; 0 when perfect = null.
pub fn normalised(raw: f64, null: f64, perfect: f64) -> f64 {
    if perfect == null {
        0.0
    } else {
        100.0 * (raw - null) / (perfect - null)
    }
}
