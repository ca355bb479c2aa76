//! The NAB scorer against small hand-computed cases.

use osprey_alerts::detect::nab::{self, STANDARD, Window};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// 100 rows: rows 0..15 are probationary; one window on rows 40..=59 (width 20).
const WINDOW: Window = Window {
    first: 40,
    last: 59,
};

fn flags(rows: &[usize]) -> Vec<bool> {
    let mut d = vec![false; 100];
    rows.iter().for_each(|r| d[*r] = true);
    d
}

#[test]
fn sigmoid_and_probation() {
    assert!(close(nab::scaled_sigmoid(0.0), 0.0));
    assert!(close(
        nab::scaled_sigmoid(-1.0),
        2.0 / (1.0 + (-5f64).exp()) - 1.0
    ));
    assert_eq!(nab::scaled_sigmoid(3.0), -1.0);
    assert_eq!(nab::probationary_rows(100), 15);
    assert_eq!(nab::probationary_rows(10_000), 750);
}

#[test]
fn detection_at_window_start_is_worth_a_tp() {
    let s = nab::score_file(&flags(&[40]), &[WINDOW], STANDARD);
    assert!(close(s.score, 1.0), "{s:?}");
    assert_eq!((s.tp, s.fp, s.fn_, s.windows), (1, 0, 0, 1));
}

#[test]
fn only_the_earliest_detection_in_a_window_counts() {
    // Row 50: y = -(59 - 50 + 1)/20 = -0.5, σ(-0.5)/σ(-1) = 0.848283.../0.986614... = 0.859792...
    let s = nab::score_file(&flags(&[50, 55, 58]), &[WINDOW], STANDARD);
    assert!(close(s.score, 0.8597925669097837), "{s:?}");
    assert_eq!((s.tp, s.fp), (1, 0));
}

#[test]
fn false_positives_before_and_after_a_window() {
    // Row 10 is probationary (ignored); row 20 is before any window (-0.11); row 69 is
    // 10 rows after the window: y = 10/19, cost 0.11 × σ(10/19) = -0.0952306...
    let s = nab::score_file(&flags(&[10, 20, 50, 69]), &[WINDOW], STANDARD);
    assert!(
        close(s.score, 0.8597925669097837 - 0.11 - 0.09523063024539194),
        "{s:?}"
    );
    assert_eq!((s.tp, s.fp, s.fn_), (1, 2, 0));
}

#[test]
fn missed_window_costs_a_fn_and_probationary_windows_do_not_count() {
    let early = Window { first: 2, last: 8 };
    let s = nab::score_file(&flags(&[]), &[early, WINDOW], STANDARD);
    assert!(close(s.score, -1.0), "{s:?}");
    assert_eq!((s.tp, s.fn_, s.windows), (0, 1, 1));
}

#[test]
fn normalisation_by_null_and_perfect_detectors() {
    let (null, perfect) = nab::null_and_perfect(100, &[WINDOW], STANDARD);
    assert!(close(null, -1.0) && close(perfect, 1.0), "{null} {perfect}");
    let raw = nab::score_file(&flags(&[50]), &[WINDOW], STANDARD).score;
    assert!(close(
        nab::normalised(raw, null, perfect),
        100.0 * (raw + 1.0) / 2.0
    ));
    assert!(close(nab::normalised(null, null, perfect), 0.0));
    assert!(close(nab::normalised(perfect, null, perfect), 100.0));
}

#[test]
fn windows_from_timestamps() {
    let ts: Vec<i64> = (0..10).map(|i| i * 300).collect();
    let w = nab::windows_from_times(&ts, &[(600, 1500), (100_000, 200_000)]);
    assert_eq!(w, vec![Window { first: 2, last: 5 }]);
}
