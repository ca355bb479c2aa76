//! Host comparison on fixed groups.

use osprey_alerts::detect::Sample;
use osprey_alerts::detect::host_comparison::{
    self, GroupStatus, HostComparisonConfig, HostComparisonDetector,
};

const STEP: i64 = 60_000;

/// `n` members at `level` ± 1 % noise (seeded) over 30 one-minute ticks; `tweak(member, tick)`
/// returns an offset.
fn group(n: usize, level: f64, tweak: impl Fn(usize, i64) -> f64) -> Vec<Vec<Sample>> {
    noisy_group(n, level, 0.01, 30, tweak)
}

fn noisy_group(
    n: usize,
    level: f64,
    noise: f64,
    ticks: i64,
    tweak: impl Fn(usize, i64) -> f64,
) -> Vec<Vec<Sample>> {
    let mut rng = fastrand::Rng::with_seed(7);
    (0..n)
        .map(|m| {
            (0..ticks)
                .map(|i| {
                    (
                        i * STEP,
                        level * (1.0 + noise * (rng.f64() - 0.5)) + tweak(m, i),
                    )
                })
                .collect()
        })
        .collect()
}

fn views(g: &[Vec<Sample>]) -> Vec<(String, &[Sample])> {
    g.iter()
        .enumerate()
        .map(|(i, s)| (format!("host-{i}"), s.as_slice()))
        .collect()
}

#[test]
fn diverging_member_is_flagged() {
    let g = group(8, 100.0, |m, i| if m == 3 && i >= 10 { 50.0 } else { 0.0 });
    let c = host_comparison::compare(&views(&g), &HostComparisonConfig::default());
    assert!(
        matches!(c.status, GroupStatus::Compared { instants } if instants == 15),
        "{c:?}"
    );
    assert_eq!(c.outliers.len(), 1, "{c:?}");
    let o = &c.outliers[0];
    assert_eq!(o.member, "host-3");
    assert_eq!(o.fraction, 1.0);
    assert!(
        o.score > 3.5 && o.value > 145.0 && (o.centre - 100.0).abs() < 1.0,
        "{o:?}"
    );
}

#[test]
fn too_few_members_report_nothing() {
    let g = group(4, 100.0, |m, _| if m == 0 { 50.0 } else { 0.0 });
    let c = host_comparison::compare(&views(&g), &HostComparisonConfig::default());
    assert_eq!(
        c.status,
        GroupStatus::TooFewMembers {
            present: 4,
            required: 5
        }
    );
    assert!(c.outliers.is_empty());
    // Five members are enough for the default minimum, not for a minimum of six.
    let g = group(5, 100.0, |m, _| if m == 0 { 50.0 } else { 0.0 });
    let names: Vec<String> =
        host_comparison::outliers(&views(&g), &HostComparisonConfig::default())
            .into_iter()
            .map(|o| o.member)
            .collect();
    assert_eq!(names, vec!["host-0"]);
    let cfg = HostComparisonConfig {
        min_group: 6,
        ..HostComparisonConfig::default()
    };
    let c = host_comparison::compare(&views(&g), &cfg);
    assert_eq!(
        c.status,
        GroupStatus::TooFewMembers {
            present: 5,
            required: 6
        }
    );
    assert!(c.outliers.is_empty());
}

#[test]
fn a_brief_blip_is_not_most_of_the_window() {
    // Outlying for 4 of the 15 instants in the window: below 70 %.
    let g = group(8, 100.0, |m, i| {
        if m == 5 && (20..24).contains(&i) {
            50.0
        } else {
            0.0
        }
    });
    assert!(host_comparison::outliers(&views(&g), &HostComparisonConfig::default()).is_empty());
    let cfg = HostComparisonConfig {
        fraction_of_window: 0.2,
        ..HostComparisonConfig::default()
    };
    assert_eq!(host_comparison::outliers(&views(&g), &cfg).len(), 1);
}

#[test]
fn group_wide_change_is_not_a_host_problem() {
    // Five of eight members move together: the centre moves, nobody is outlying on their own.
    let g = group(8, 100.0, |m, i| if m < 5 && i >= 10 { 50.0 } else { 0.0 });
    assert!(host_comparison::outliers(&views(&g), &HostComparisonConfig::default()).is_empty());
}

#[test]
fn tight_group_of_large_values_needs_a_real_difference() {
    // 18.0 GB vs 18.1 GB: within the 5 % relative floor, so not an outlier (the plain MAD of a
    // tight group would flag it).
    let g = noisy_group(8, 18e9, 0.0005, 30, |m, _| if m == 2 { 0.1e9 } else { 0.0 });
    assert!(host_comparison::outliers(&views(&g), &HostComparisonConfig::default()).is_empty());
    let plain = HostComparisonConfig {
        rel_floor: 0.0,
        ..HostComparisonConfig::default()
    };
    assert_eq!(host_comparison::outliers(&views(&g), &plain).len(), 1);
}

#[test]
fn direction_and_stale_members() {
    let g = group(8, 100.0, |m, _| if m == 1 { -40.0 } else { 0.0 });
    let above = HostComparisonConfig {
        direction: osprey_alerts::detect::Direction::Above,
        ..HostComparisonConfig::default()
    };
    assert!(host_comparison::outliers(&views(&g), &above).is_empty());
    assert_eq!(
        host_comparison::outliers(&views(&g), &HostComparisonConfig::default()).len(),
        1
    );
    // A member whose samples stopped 20 minutes ago is not compared at all.
    let mut g = group(8, 100.0, |m, _| if m == 6 { 50.0 } else { 0.0 });
    g[6].truncate(10);
    assert!(host_comparison::outliers(&views(&g), &HostComparisonConfig::default()).is_empty());
}

#[test]
fn detector_holds_a_reported_member_until_it_clears() {
    // Member 3: outlying on ticks 0..15, on the odd ticks of 15..30 (8 of 15), then never.
    let g = noisy_group(8, 100.0, 0.01, 45, |m, i| {
        let out = i < 15 || (i < 30 && i % 2 == 1);
        if m == 3 && out { 50.0 } else { 0.0 }
    });
    let upto = |end: usize| -> Vec<(String, &[Sample])> {
        g.iter()
            .enumerate()
            .map(|(i, s)| (format!("host-{i}"), &s[..=end]))
            .collect()
    };
    let cfg = HostComparisonConfig::default();
    let mut d = HostComparisonDetector::new(cfg.clone());
    let (_, r) = d.observe(&upto(14));
    assert_eq!(r.len(), 1);
    assert_eq!(
        (r[0].outlier.member.as_str(), r[0].since_ms),
        ("host-3", 14 * STEP)
    );
    // 8 of 15: below the 70 % needed to enter, above the 10 % needed to stay.
    assert!(host_comparison::outliers(&upto(29), &cfg).is_empty());
    let (_, r) = d.observe(&upto(29));
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].since_ms, 14 * STEP);
    assert!((r[0].outlier.fraction - 8.0 / 15.0).abs() < 1e-9);
    // The state survives a round trip through JSON.
    let mut d: HostComparisonDetector<String> =
        serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
    let (_, r) = d.observe(&upto(44));
    assert!(r.is_empty(), "{r:?}");
}
