//! The baseline detector on fixed (seeded) series.

use std::f64::consts::TAU;

use osprey_alerts::detect::Sample;
use osprey_alerts::detect::baseline::{
    Baseline, BaselineConfig, BaselineDetector, Hysteresis, Season, Verdict,
};

const STEP: i64 = 5 * 60_000;
const DAY: i64 = 86_400_000;
const PER_DAY: i64 = DAY / STEP;

/// A standard normal variate (Box–Muller) from a seeded generator.
fn gaussian(rng: &mut fastrand::Rng) -> f64 {
    let u1 = 1.0 - rng.f64();
    (-2.0 * u1.ln()).sqrt() * (TAU * rng.f64()).cos()
}

/// `days` of 5-minute samples of `f(t) + noise × N(0, 1)`.
fn series(days: i64, noise: f64, seed: u64, f: impl Fn(i64) -> f64) -> Vec<Sample> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..days * PER_DAY)
        .map(|i| i * STEP)
        .map(|t| (t, f(t) + noise * gaussian(&mut rng)))
        .collect()
}

/// A daily cycle between 50 and 150.
fn daily(t: i64) -> f64 {
    100.0 + 50.0 * (TAU * t as f64 / DAY as f64).sin()
}

/// Onsets (entries into the anomalous state) over `samples`.
fn onsets(d: &mut BaselineDetector, samples: &[Sample]) -> Vec<i64> {
    let mut was = false;
    let mut out = Vec::new();
    for &(t, v) in samples {
        let now = d.observe(t, v).is_anomalous();
        if now && !was {
            out.push(t);
        }
        was = now;
    }
    out
}

#[test]
fn daily_seasonality_is_learned_not_alarmed() {
    let s = series(10, 1.0, 1, daily);
    let cut = (4 * PER_DAY) as usize;
    let mut d = BaselineDetector::from_history(&s[..cut], BaselineConfig::default()).unwrap();
    assert_eq!(onsets(&mut d, &s[cut..]), Vec::<i64>::new());
    // The band follows the cycle: at the daily peak and trough the centre is near the truth.
    for t in [10 * DAY + DAY / 4, 10 * DAY + 3 * DAY / 4] {
        let band = d.baseline().band(t).unwrap();
        assert!(band.seasonal);
        assert!(
            (band.centre - daily(t)).abs() < 3.0,
            "{band:?} vs {}",
            daily(t)
        );
        assert!(band.hi - band.lo < 30.0, "{band:?}");
    }
}

#[test]
fn spike_is_caught_at_once() {
    let mut s = series(6, 1.0, 2, daily);
    let at = (5 * PER_DAY + 37) as usize;
    s[at].1 += 15.0;
    let cut = (4 * PER_DAY) as usize;
    let mut d = BaselineDetector::from_history(&s[..cut], BaselineConfig::default()).unwrap();
    for (i, &(t, v)) in s.iter().enumerate().skip(cut) {
        let verdict = d.observe(t, v);
        if i == at {
            assert!(
                matches!(verdict, Verdict::Anomalous { score, since_ms } if score > 6.0 && since_ms == t),
                "{verdict:?}"
            );
        } else if i < at {
            assert!(
                !verdict.is_anomalous(),
                "false alarm at row {i}: {verdict:?}"
            );
        }
    }
    // The spike did not drag the band: it clears within the exit points.
    let (t, v) = s[at + 10];
    assert!(!d.observe(t + 1, v).is_anomalous());
}

#[test]
fn level_shift_is_caught_then_relearned() {
    let shift_at = 5 * DAY + 3 * 3_600_000;
    let s = series(8, 1.0, 3, |t| {
        daily(t) + if t >= shift_at { 30.0 } else { 0.0 }
    });
    let cut = (4 * PER_DAY) as usize;
    let mut d = BaselineDetector::from_history(&s[..cut], BaselineConfig::default()).unwrap();
    let on = onsets(&mut d, &s[cut..]);
    assert!(!on.is_empty(), "shift not caught");
    assert!(
        on[0] >= shift_at && on[0] <= shift_at + 2 * STEP,
        "caught late: {on:?}"
    );
    // Relearned: normal again a few hours later, with the band around the new level.
    let later = s
        .iter()
        .filter(|p| p.0 >= shift_at + DAY)
        .collect::<Vec<_>>();
    assert!(
        on.iter().all(|t| *t < shift_at + DAY),
        "still alarming a day later: {on:?}"
    );
    assert!(!d.last_verdict().is_anomalous(), "{:?}", d.last_verdict());
    let (t, _) = *later[later.len() - 1];
    let band = d.baseline().band(t + STEP).unwrap();
    assert!(
        (band.centre - (daily(t + STEP) + 30.0)).abs() < 5.0,
        "{band:?}"
    );
}

#[test]
fn flat_series_do_not_alarm_on_noise() {
    // Exactly flat, and flat with noise of 0.05 % of the level: the floor keeps both quiet.
    for noise in [0.0, 0.5] {
        let s = series(3, noise, 4, |_| 1000.0);
        let cfg = BaselineConfig {
            season: Season::None,
            ..BaselineConfig::default()
        };
        let mut d = BaselineDetector::new(cfg).unwrap();
        assert_eq!(onsets(&mut d, &s), Vec::<i64>::new(), "noise {noise}");
        let band = d.baseline().band(s.last().unwrap().0).unwrap();
        assert!(band.hi - band.centre >= 4.0 * 0.01 * 999.0, "{band:?}");
    }
    // A real step on the flat series still alarms.
    let s = series(3, 0.5, 4, |t| if t >= 2 * DAY { 1100.0 } else { 1000.0 });
    let cfg = BaselineConfig {
        season: Season::None,
        ..BaselineConfig::default()
    };
    let mut d = BaselineDetector::new(cfg).unwrap();
    assert_eq!(onsets(&mut d, &s).first(), Some(&(2 * DAY)));
}

#[test]
fn warm_up_is_reported() {
    let cfg = BaselineConfig {
        warmup_points: 10,
        ..BaselineConfig::default()
    };
    let mut d = BaselineDetector::new(cfg.clone()).unwrap();
    for i in 0..9 {
        assert_eq!(d.observe(i * STEP, 5.0), Verdict::WarmingUp);
        assert!(d.baseline().band(i * STEP).is_none());
    }
    assert_eq!(d.observe(9 * STEP, 5.0), Verdict::WarmingUp);
    assert!(matches!(d.observe(10 * STEP, 5.0), Verdict::Normal { .. }));
    let band = d.baseline().band(11 * STEP).unwrap();
    assert!(!band.seasonal && band.lo < 5.0 && band.hi > 5.0, "{band:?}");
    // Seasonal slots join only after `seasons_required` days.
    let s = series(4, 1.0, 5, daily);
    let b = Baseline::learn(&s[..(2 * PER_DAY) as usize], cfg.clone()).unwrap();
    assert!(!b.band(2 * DAY).unwrap().seasonal);
    let b = Baseline::learn(&s, cfg).unwrap();
    assert!(b.band(4 * DAY).unwrap().seasonal);
}

/// A flat series at 100 (scale = the 1 % floor = 1, band 96..104), then `tail` values.
fn edge_case(h: Hysteresis, tail: &[f64]) -> Vec<i64> {
    let cfg = BaselineConfig {
        season: Season::None,
        sensitivity: 4.0,
        level_half_life: 1000,
        tail_factor: 0.0,
        sustained_half_life: 0,
        hysteresis: h,
        ..BaselineConfig::default()
    };
    let mut d = BaselineDetector::new(cfg).unwrap();
    let s: Vec<Sample> = (0..100)
        .map(|_| 100.0)
        .chain(tail.iter().copied())
        .enumerate()
        .map(|(i, v)| (i as i64 * STEP, v))
        .collect();
    onsets(&mut d, &s)
}

#[test]
fn hysteresis_prevents_flapping() {
    // Hovering around the band edge: 105 is beyond it, 103 inside it but outside the clear band
    // (0.7 × 4 = 2.8 scales).
    let hover: Vec<f64> = (0..20)
        .map(|i| if i % 2 == 0 { 105.0 } else { 103.0 })
        .collect();
    assert_eq!(edge_case(Hysteresis::default(), &hover).len(), 1);
    let none = Hysteresis {
        exit_points: 1,
        clear_ratio: 1.0,
        ..Hysteresis::default()
    };
    assert_eq!(edge_case(none, &hover).len(), 10);
    // It leaves after `exit_points` clear points, not before.
    let five = Hysteresis {
        exit_points: 5,
        ..Hysteresis::default()
    };
    let mut back = vec![105.0];
    back.extend([100.0; 4]);
    back.push(105.0);
    assert_eq!(edge_case(five, &back).len(), 1);
    back.extend([100.0; 5]);
    back.push(105.0);
    assert_eq!(edge_case(five, &back).len(), 2);
    // k-of-n entry: a lone point does not enter with 2 of 3.
    let two_of_three = Hysteresis {
        enter_points: 2,
        enter_window: 3,
        ..Hysteresis::default()
    };
    assert_eq!(
        edge_case(two_of_three, &[105.0, 100.0, 100.0, 100.0]).len(),
        0
    );
    assert_eq!(
        edge_case(two_of_three, &[105.0, 100.0, 105.0, 100.0]).len(),
        1
    );
}

#[test]
fn state_survives_serialisation() {
    let s = series(6, 1.0, 6, |t| {
        daily(t) + if t >= 5 * DAY { 20.0 } else { 0.0 }
    });
    let cut = (5 * PER_DAY - 10) as usize;
    let mut a = BaselineDetector::from_history(&s[..cut], BaselineConfig::default()).unwrap();
    let json = serde_json::to_string(&a).unwrap();
    let mut b: BaselineDetector = serde_json::from_str(&json).unwrap();
    for &(t, v) in &s[cut..] {
        assert_eq!(a.observe(t, v), b.observe(t, v));
    }
    assert!(serde_json::from_str::<BaselineConfig>(r#"{"sensitivity": 3, "bogus": 1}"#).is_err());
}

#[test]
fn bad_samples_and_configs() {
    let mut d = BaselineDetector::new(BaselineConfig {
        warmup_points: 2,
        ..Default::default()
    })
    .unwrap();
    d.observe(1000, 1.0);
    d.observe(2000, 1.0);
    let before = d.clone();
    assert_eq!(d.observe(2000, 50.0), d.last_verdict()); // not after the last sample
    assert_eq!(d.observe(3000, f64::NAN), d.last_verdict());
    assert_eq!(d, before);
    let bad = |c: BaselineConfig| BaselineDetector::new(c).unwrap_err().to_string();
    assert!(
        bad(BaselineConfig {
            slot_ms: 7_000_000,
            ..Default::default()
        })
        .contains("slot_ms")
    );
    assert!(
        bad(BaselineConfig {
            sensitivity: 0.0,
            ..Default::default()
        })
        .contains("sensitivity")
    );
    assert!(
        bad(BaselineConfig {
            rel_floor: 0.0,
            abs_floor: 0.0,
            ..Default::default()
        })
        .contains("floor")
    );
}

#[test]
fn weekly_pattern_is_learned_by_auto_seasons() {
    // Weekdays around 100, weekends around 40 (1970-01-01 was a Thursday: days 2 and 3 of each
    // week are the weekend), with a small daily cycle.
    let weekly = |t: i64| {
        let day = (t / DAY) % 7;
        let base = if day == 2 || day == 3 { 40.0 } else { 100.0 };
        base + 5.0 * (TAU * t as f64 / DAY as f64).sin()
    };
    let s = series(35, 1.0, 9, weekly);
    let cut = (28 * PER_DAY) as usize;
    let auto = BaselineConfig {
        season: Season::Auto,
        ..BaselineConfig::default()
    };
    let mut d = BaselineDetector::from_history(&s[..cut], auto).unwrap();
    assert_eq!(onsets(&mut d, &s[cut..]), Vec::<i64>::new());
    let saturday_noon = 30 * DAY + DAY / 2;
    let band = d.baseline().band(saturday_noon).unwrap();
    assert!(
        (band.centre - weekly(saturday_noon)).abs() < 5.0,
        "{band:?}"
    );
    // Time-of-day slots alone expect a weekday on Saturday, and flag the weekend unless the
    // new-extreme gate has seen weekends in its horizon before.
    let daily = BaselineConfig {
        season: Season::Daily,
        extreme_horizon: 0,
        ..BaselineConfig::default()
    };
    let mut d = BaselineDetector::from_history(&s[..cut], daily).unwrap();
    assert!(!onsets(&mut d, &s[cut..]).is_empty());
    let band = d.baseline().band(saturday_noon).unwrap();
    assert!(
        (band.centre - weekly(saturday_noon)).abs() > 20.0,
        "{band:?}"
    );
}

#[test]
fn detector_state_can_move_between_threads() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<BaselineDetector>();
    send_sync::<Baseline>();
    send_sync::<osprey_alerts::detect::host_comparison::HostComparisonDetector<String>>();
}

/// A Student-t variate with 3 degrees of freedom (heavy tails).
fn student_t3(rng: &mut fastrand::Rng) -> f64 {
    let chi2: f64 = (0..3).map(|_| gaussian(rng).powi(2)).sum();
    gaussian(rng) / (chi2 / 3.0).sqrt()
}

#[test]
fn usual_bursts_are_not_new_extremes() {
    // A flat series with a burst of about +40 every 400 points (each a little smaller than the
    // one before): the point score crosses the band on every burst, but once a burst has been
    // seen within the horizon, a similar one is not a new extreme. A burst twice as large is.
    let cfg = BaselineConfig {
        season: Season::None,
        tail_factor: 0.0,
        extreme_horizon: 1_000,
        ..BaselineConfig::default()
    };
    let mut rng = fastrand::Rng::with_seed(11);
    let mut s: Vec<Sample> = (0..6_000)
        .map(|i| {
            let burst = if i % 400 == 399 {
                40.0 - i as f64 / 1_000.0
            } else {
                0.0
            };
            (i * STEP, 100.0 + 0.1 * gaussian(&mut rng) + burst)
        })
        .collect();
    s[5_555].1 += 80.0;
    let mut gated = BaselineDetector::new(cfg.clone()).unwrap();
    let on = onsets(&mut gated, &s);
    // Before a whole horizon is known every burst alarms; afterwards only the big one.
    assert!(on.iter().any(|t| *t < 1_000 * STEP), "{on:?}");
    let late: Vec<i64> = on.iter().copied().filter(|t| *t >= 2_000 * STEP).collect();
    assert_eq!(late, vec![5_555 * STEP]);
    // Without the gate every burst is an alarm.
    let mut plain = BaselineDetector::new(BaselineConfig {
        extreme_horizon: 0,
        ..cfg
    })
    .unwrap();
    let late = onsets(&mut plain, &s)
        .into_iter()
        .filter(|t| *t >= 2_000 * STEP)
        .count();
    assert!(late >= 9, "{late}");
}

#[test]
fn rare_tail_quantiles_are_extrapolated() {
    // The same heavy-tailed noise: a pager-grade quantile (1 in 100 000) is far beyond the
    // 0.998 one, which the histogram holds directly; on Gaussian noise both stay near the
    // sensitivity.
    let learn = |q: f64, heavy: bool| {
        let mut rng = fastrand::Rng::with_seed(12);
        let s: Vec<Sample> = (0..20_000)
            .map(|i| {
                let e = if heavy {
                    student_t3(&mut rng)
                } else {
                    gaussian(&mut rng)
                };
                (i * STEP, 1000.0 + 10.0 * e)
            })
            .collect();
        let cfg = BaselineConfig {
            season: Season::None,
            tail_quantile: q,
            ..BaselineConfig::default()
        };
        Baseline::learn(&s, cfg).unwrap().threshold()
    };
    let (direct, pager) = (learn(0.998, true), learn(0.99999, true));
    assert!(direct > 5.0, "{direct}");
    assert!(pager > 2.0 * direct, "{pager} vs {direct}");
    let (direct, pager) = (learn(0.998, false), learn(0.99999, false));
    assert_eq!(direct, 5.0);
    assert!(pager < 8.0, "{pager}");
}

#[test]
fn state_is_small() {
    let s = series(8, 1.0, 13, daily);
    for (season, most) in [(Season::Daily, 4 * 1024), (Season::Auto, 20 * 1024)] {
        let cfg = BaselineConfig {
            season,
            ..BaselineConfig::default()
        };
        let b = Baseline::learn(&s, cfg).unwrap();
        assert!(b.band(8 * DAY).unwrap().seasonal);
        assert!(b.state_bytes() < most, "{season:?}: {}", b.state_bytes());
    }
}

#[test]
fn usual_slow_swings_are_not_new_extremes() {
    // A plateau of about +2 scales for 100 points every 600 (each a little lower than the one
    // before): no point crosses the band, the sustained score crosses its threshold on every
    // plateau. With the gate only the first ones (before a whole horizon is known) and a plateau
    // twice as high alarm.
    let cfg = BaselineConfig {
        season: Season::None,
        tail_factor: 0.0,
        level_half_life: 5_000,
        extreme_horizon: 1_200,
        ..BaselineConfig::default()
    };
    let mut rng = fastrand::Rng::with_seed(14);
    let s: Vec<Sample> = (0..7_000)
        .map(|i| {
            let k = i / 600;
            let plateau = match (i % 600 >= 500, k) {
                (false, _) => 0.0,
                (true, 10) => 3.5,
                (true, k) => 2.0 - 0.1 * k as f64,
            };
            (i * STEP, 100.0 + 0.2 * gaussian(&mut rng) + plateau)
        })
        .collect();
    let late = |cfg: BaselineConfig| {
        let mut d = BaselineDetector::new(cfg).unwrap();
        onsets(&mut d, &s)
            .into_iter()
            .filter(|t| *t >= 2_000 * STEP)
            .collect::<Vec<_>>()
    };
    let gated = late(cfg.clone());
    assert_eq!(gated.len(), 1, "{gated:?}");
    assert!(
        gated[0] >= 6_500 * STEP && gated[0] < 6_600 * STEP,
        "{gated:?}"
    );
    let plain = late(BaselineConfig {
        extreme_horizon: 0,
        ..cfg
    });
    assert!(plain.len() >= 8, "{plain:?}");
}
