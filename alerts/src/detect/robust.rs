//! Robust statistics shared by the detectors: median, MAD and the double MAD.

/// Factor that turns a median absolute deviation into an estimate of the standard deviation for
/// normally distributed data.
pub const MAD_TO_SIGMA: f64 = 1.4826;

/// Median of `values` (reorders the slice). `None` when empty. NaNs sort last (total order).
pub fn median(values: &mut [f64]) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mid = n / 2;
    let (lower, m, _) = values.select_nth_unstable_by(mid, f64::total_cmp);
    let upper = *m;
    if n % 2 == 1 {
        Some(upper)
    } else {
        // The largest element of the lower half is the other middle value.
        let lower_max = lower.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some((lower_max + upper) / 2.0)
    }
}

/// Median absolute deviation of `values` around `centre` (uses `scratch` as working space).
pub fn mad(values: &[f64], centre: f64, scratch: &mut Vec<f64>) -> Option<f64> {
    scratch.clear();
    scratch.extend(values.iter().map(|v| (v - centre).abs()));
    median(scratch)
}

/// The double MAD: medians of the absolute deviations of the values at or below `centre` and at
/// or above it, so skewed groups (one-sided latency tails) get a scale per side. `(lower, upper)`;
/// a side with no values gets 0.
pub fn double_mad(values: &[f64], centre: f64, scratch: &mut Vec<f64>) -> (f64, f64) {
    scratch.clear();
    scratch.extend(values.iter().filter(|v| **v <= centre).map(|v| centre - v));
    let lower = median(scratch).unwrap_or(0.0);
    scratch.clear();
    scratch.extend(values.iter().filter(|v| **v >= centre).map(|v| v - centre));
    let upper = median(scratch).unwrap_or(0.0);
    (lower, upper)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_lengths() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn mad_ignores_one_outlier() {
        let v = [1.0, 2.0, 3.0, 4.0, 1000.0];
        let mut s = Vec::new();
        assert_eq!(mad(&v, 3.0, &mut s), Some(1.0));
    }

    #[test]
    fn double_mad_has_one_scale_per_side() {
        let v = [9.0, 10.0, 10.0, 11.0, 20.0, 30.0];
        let mut s = Vec::new();
        let (lo, hi) = double_mad(&v, 10.5, &mut s);
        assert_eq!(lo, 0.5);
        assert!(hi > 5.0, "{hi}");
    }
}
