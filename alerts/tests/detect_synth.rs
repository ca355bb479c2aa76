//! The generated corpus is reproducible and labelled where the anomalies are.

use osprey_alerts::detect::synth::{self, GroupKind, Kind, SynthConfig};

fn small(seed: u64) -> SynthConfig {
    SynthConfig {
        seed,
        days: 6,
        history_days: 3,
        series_per_kind: 3,
        controls: 3,
        groups_per_kind: 2,
        group_size: 5,
        ..SynthConfig::default()
    }
}

#[test]
fn same_seed_same_data_other_seed_other_data() {
    assert_eq!(synth::series(&small(1)), synth::series(&small(1)));
    assert_eq!(synth::groups(&small(1)), synth::groups(&small(1)));
    assert_ne!(synth::series(&small(1)), synth::series(&small(2)));
}

#[test]
fn labels_sit_after_the_history_and_mark_the_injected_change() {
    let cfg = small(3);
    let series = synth::series(&cfg);
    assert_eq!(series.len(), 12);
    for s in &series {
        assert_eq!(s.samples.len() as i64, 6 * 1440);
        assert!(s.samples.iter().all(|p| p.1.is_finite() && p.1 >= 0.0));
        match s.kind {
            Kind::Control => assert!(s.windows.is_empty()),
            _ => {
                let [(start, end)] = s.windows[..] else {
                    panic!("{:?}", s.windows)
                };
                assert!(start >= cfg.history_end_ms() && end <= cfg.end_ms() && start <= end);
            }
        }
        if s.kind == Kind::Spike {
            // The labelled points stand out from the minutes around them.
            let (start, _) = s.windows[0];
            let i = s.samples.iter().position(|p| p.0 == start).unwrap();
            let around: Vec<f64> = s.samples[i - 30..i - 5]
                .iter()
                .map(|p| p.1)
                .collect::<Vec<_>>();
            let mean = around.iter().sum::<f64>() / around.len() as f64;
            let sd = (around.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / around.len() as f64)
                .sqrt();
            assert!(
                (s.samples[i].1 - mean).abs() > 2.0 * sd,
                "{} at {start}",
                s.name
            );
        }
    }
    for g in synth::groups(&cfg) {
        assert_eq!(g.members.len(), 5);
        match g.kind {
            GroupKind::HostDiverges => assert!(g.diverging.is_some() && g.group_spike.is_none()),
            GroupKind::GroupWideSpike => assert!(g.diverging.is_none() && g.group_spike.is_some()),
        }
    }
}
