//! End-to-end behaviour of the storage engine through its public API.

use osprey::storage::query::{AggOp, RangeFn, group_by};
use osprey::storage::rollup::{self, RES_1H};
use osprey::storage::{
    Labels, METRIC_NAME, Matcher, Sample, SeriesSamples, Storage, StorageError, StorageOptions,
};

const H: i64 = 3_600_000;
const T0: i64 = 1_800_000_000_000 - 1_800_000_000_000 % (24 * H);

fn opts() -> StorageOptions {
    StorageOptions {
        block_duration_ms: H,
        retention_age_ms: None,
        ..StorageOptions::default()
    }
}

fn labels(name: &str, pod: usize) -> Labels {
    Labels::from_pairs([
        (METRIC_NAME.to_string(), name.to_string()),
        ("pod".to_string(), format!("pod-{pod}")),
        (
            "ns".to_string(),
            if pod.is_multiple_of(2) { "even" } else { "odd" }.to_string(),
        ),
    ])
}

fn value(pod: usize, i: i64) -> f64 {
    // A counter with a reset every 500 samples.
    ((i % 500) * (pod as i64 + 1)) as f64
}

/// Appends `n` samples at 10 s per series starting at sample index `from`, in batches of one
/// timestamp across all series (the shape of a scrape / remote-write request).
fn fill(s: &Storage, pods: usize, from: i64, n: i64, maintain: bool) {
    for i in from..from + n {
        let batch: Vec<SeriesSamples> = (0..pods)
            .map(|p| SeriesSamples {
                labels: labels("m", p),
                samples: vec![Sample::new(T0 + i * 10_000, value(p, i))],
            })
            .collect();
        let r = s.append(&batch).unwrap();
        assert_eq!(r.accepted, pods as u64);
        if maintain && i % 100 == 0 {
            s.maintain().unwrap();
        }
    }
}

fn all(s: &Storage, m: &[Matcher], start: i64, end: i64) -> Vec<(Labels, Vec<Sample>)> {
    s.select_all(m, start, end)
        .unwrap()
        .into_iter()
        .map(|x| (x.labels, x.samples))
        .collect()
}

fn check_complete(s: &Storage, pods: usize, from: i64, n: i64) {
    let got = all(
        s,
        &[Matcher::eq(METRIC_NAME, "m")],
        T0 + from * 10_000,
        T0 + (from + n) * 10_000 - 1,
    );
    assert_eq!(got.len(), pods);
    for (l, samples) in got {
        let p: usize = l.get("pod").unwrap()[4..].parse().unwrap();
        assert_eq!(samples.len() as i64, n, "{l}");
        for (k, smp) in samples.iter().enumerate() {
            let i = from + k as i64;
            assert_eq!((smp.t, smp.v), (T0 + i * 10_000, value(p, i)), "{l}");
        }
    }
}

#[test]
fn data_survives_restart_in_head_and_in_blocks() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = Storage::open(dir.path(), opts()).unwrap();
        fill(&s, 20, 0, 1500, true);
        assert!(s.metrics().raw_blocks >= 2, "{:?}", s.metrics());
    }
    let s = Storage::open(dir.path(), opts()).unwrap();
    check_complete(&s, 20, 0, 1500);
    assert_eq!(s.label_values("ns"), vec!["even", "odd"]);
    assert_eq!(s.label_names(), vec![METRIC_NAME, "ns", "pod"]);
    let odd = all(
        &s,
        &[
            Matcher::eq("ns", "odd"),
            Matcher::re("pod", "pod-1.*").unwrap(),
        ],
        i64::MIN,
        i64::MAX,
    );
    assert_eq!(odd.len(), 6); // pod-1, pod-11, ..., pod-19
    s.seal_head().unwrap();
    drop(s);
    let s = Storage::open(dir.path(), opts()).unwrap();
    assert_eq!(s.metrics().head_samples, 0);
    check_complete(&s, 20, 0, 1500);
}

#[test]
fn invalid_batch_stores_nothing_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(dir.path(), opts()).unwrap();
    let good = SeriesSamples {
        labels: labels("m", 1),
        samples: vec![Sample::new(T0, 1.0)],
    };
    let cases = vec![
        SeriesSamples {
            labels: Labels::from_pairs([("pod", "x")]),
            samples: vec![Sample::new(T0, 1.0)],
        },
        SeriesSamples {
            labels: Labels::from_pairs([(METRIC_NAME, "m"), ("a", "1"), ("a", "2")]),
            samples: vec![],
        },
        SeriesSamples {
            labels: labels("m", 2),
            samples: vec![Sample::new(T0 + 10, 1.0), Sample::new(T0, 1.0)],
        },
        SeriesSamples {
            labels: Labels::from_pairs([(METRIC_NAME, "bad name")]),
            samples: vec![Sample::new(T0, 1.0)],
        },
    ];
    for bad in cases {
        let err = s.append(&[good.clone(), bad]).unwrap_err();
        match err {
            StorageError::InvalidBatch { series_index, .. } => assert_eq!(series_index, 1),
            other => panic!("unexpected {other}"),
        }
    }
    assert!(all(&s, &[], i64::MIN, i64::MAX).is_empty());
    assert_eq!(s.metrics().samples_appended, 0);
    drop(s);
    let s = Storage::open(dir.path(), opts()).unwrap();
    assert!(
        all(&s, &[], i64::MIN, i64::MAX).is_empty(),
        "nothing reached the WAL"
    );
    // Series the head already holds are not validated again, but a batch
    // of them with one bad series still stores nothing; and a known series
    // with samples out of order is refused like a new one.
    s.append(std::slice::from_ref(&good)).unwrap();
    let next = SeriesSamples {
        labels: good.labels.clone(),
        samples: vec![Sample::new(T0 + 10_000, 2.0)],
    };
    let bad = SeriesSamples {
        labels: Labels::from_pairs([(METRIC_NAME, "m"), ("1a", "1")]),
        samples: vec![Sample::new(T0, 1.0)],
    };
    let unordered = SeriesSamples {
        labels: good.labels.clone(),
        samples: vec![Sample::new(T0 + 30_000, 1.0), Sample::new(T0 + 20_000, 1.0)],
    };
    for (batch, index) in [(vec![next.clone(), bad], 1), (vec![unordered, next], 0)] {
        match s.append(&batch).unwrap_err() {
            StorageError::InvalidBatch { series_index, .. } => assert_eq!(series_index, index),
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(s.metrics().samples_appended, 1);
}

#[test]
fn retried_batches_are_harmless_duplicates_also_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let batch: Vec<SeriesSamples> = (0..10)
        .map(|p| SeriesSamples {
            labels: labels("m", p),
            samples: (0..30)
                .map(|i| Sample::new(T0 + i * 10_000 + (i % 3), value(p, i)))
                .collect(),
        })
        .collect();
    {
        let s = Storage::open(dir.path(), opts()).unwrap();
        let r = s.append(&batch).unwrap();
        assert_eq!(r.accepted, 300);
        assert!(r.snapped > 0, "jittered timestamps snapped: {r:?}");
        let r = s.append(&batch).unwrap();
        assert_eq!((r.accepted, r.duplicates, r.rejected()), (0, 300, 0));
    }
    let s = Storage::open(dir.path(), opts()).unwrap();
    let r = s.append(&batch).unwrap();
    assert_eq!((r.accepted, r.duplicates), (0, 300));
    let got = all(&s, &[], i64::MIN, i64::MAX);
    assert!(got.iter().all(|(_, v)| v.len() == 30));
    // Snapped to the 10 s grid.
    assert!(
        got.iter()
            .all(|(_, v)| v.iter().all(|x| (x.t - T0) % 10_000 == 0))
    );
    let m = s.metrics();
    assert_eq!(m.samples_duplicate, 300);
}

#[test]
fn a_batch_retried_after_its_range_was_sealed_is_a_duplicate_and_a_new_old_sample_is_too_old() {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(dir.path(), opts()).unwrap();
    // Jittered timestamps, stored snapped to the grid.
    let first: Vec<SeriesSamples> = (0..4)
        .map(|p| SeriesSamples {
            labels: labels("m", p),
            samples: (0..30)
                .map(|i| Sample::new(T0 + i * 10_000 + (i % 3), value(p, i)))
                .collect(),
        })
        .collect();
    assert_eq!(s.append(&first).unwrap().accepted, 120);
    // Three hours later the first hour is sealed into a block.
    fill(&s, 4, 3 * 360, 10, false);
    s.maintain().unwrap();
    assert!(!s.block_metas(0).is_empty(), "the first hour is in a block");
    let r = s.append(&first).unwrap();
    assert_eq!((r.accepted, r.duplicates, r.too_old), (0, 120, 0), "{r:?}");
    // A sample never stored, in the sealed range, and one with another value, are refused.
    let new_old = vec![SeriesSamples {
        labels: labels("m", 0),
        samples: vec![
            Sample::new(T0 + 10_000, -1.0),
            Sample::new(T0 + 45 * 10_000, 1.0),
        ],
    }];
    let r = s.append(&new_old).unwrap();
    assert_eq!((r.accepted, r.duplicates, r.too_old), (0, 0, 2), "{r:?}");
}

#[test]
fn maintenance_compacts_and_applies_retention_by_age_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let o = StorageOptions {
        retention_age_ms: Some(24 * H),
        rollups: false,
        ..opts()
    };
    let s = Storage::open(dir.path(), o.clone()).unwrap();
    // 40 hours of data.
    fill(&s, 4, 0, 40 * 360, true);
    s.maintain().unwrap();
    let metas = s.block_metas(0);
    let m = s.metrics();
    assert!(m.compactions > 0, "{m:?}");
    // Retention 24 h caps compacted blocks at 10% of it, rounded down to whole blocks: 2 h.
    assert!(
        metas
            .iter()
            .any(|b| b.level >= 1 && b.max_t - b.min_t == 2 * H),
        "{metas:?}"
    );
    assert!(metas.iter().all(|b| b.max_t - b.min_t <= 2 * H));
    assert!(m.blocks_deleted > 0);
    // Blocks ending more than 24 h before the newest sample are gone, whole.
    let newest = T0 + (40 * 360 - 1) * 10_000;
    assert!(metas.iter().all(|b| b.max_t > newest - 24 * H));
    assert!(all(&s, &[], T0, T0 + 6 * H - 1).is_empty());
    let first_kept = metas.first().unwrap().min_t;
    check_complete(
        &s,
        4,
        (first_kept - T0) / 10_000,
        (newest - first_kept) / 10_000 + 1,
    );
    // Compaction and deletion survive a restart, and blocks still verify.
    drop(s);
    let o2 = StorageOptions {
        retention_bytes: Some(1),
        ..o
    };
    let s = Storage::open(dir.path(), o2).unwrap();
    assert_eq!(s.block_metas(0), metas);
    // Size retention: everything sealed exceeds one byte, so all blocks go; the head stays.
    s.apply_retention().unwrap();
    assert!(s.block_metas(0).is_empty());
    assert!(!all(&s, &[], i64::MIN, i64::MAX).is_empty());
}

#[test]
fn rollups_answer_like_raw_data_and_long_ranges_use_them() {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(dir.path(), opts()).unwrap();
    fill(&s, 6, 0, 10 * 360, true); // 10 hours
    let metas5 = s.block_metas(rollup::RES_5M);
    assert!(!metas5.is_empty() && !s.block_metas(RES_1H).is_empty());
    let m = [Matcher::eq(METRIC_NAME, "m")];
    let (start, end) = (T0, T0 + 10 * H - 1);
    for f in [
        RangeFn::Max,
        RangeFn::Min,
        RangeFn::Count,
        RangeFn::Last,
        RangeFn::Sum,
        RangeFn::Increase,
        RangeFn::Avg,
    ] {
        let via_rollup = s.range_query(&m, start, end, H, f).unwrap();
        // The same computed from raw samples.
        let raw = s.select_all(&m, start, end).unwrap();
        assert_eq!(via_rollup.len(), raw.len());
        for ((l, pts), r) in via_rollup.iter().zip(&raw) {
            assert_eq!(l, &r.labels);
            let buckets = rollup::aggregate(&r.samples, H);
            let increases = rollup::increases(&buckets);
            assert_eq!(pts.len(), buckets.len(), "{f:?}");
            for ((p, b), inc) in pts.iter().zip(&buckets).zip(increases) {
                let want = osprey::storage::query::bucket_value(b, inc, f, H);
                // Increases included: the step across each raw block edge is counted.
                let tol = 1e-9 * want.abs().max(1.0);
                assert!(
                    (p.v - want).abs() <= tol,
                    "{f:?} {l} at {}: {} vs {want}",
                    p.t,
                    p.v
                );
            }
        }
    }
    // Sum across series grouped by a label, on top of a range query.
    let per_series = s.range_query(&m, start, end, H, RangeFn::Max).unwrap();
    let grouped = group_by(&per_series, &["ns"], AggOp::Sum);
    assert_eq!(grouped.len(), 2);
    assert_eq!(grouped[0].1.len(), 10);
}

#[test]
fn locked_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _s = Storage::open(dir.path(), opts()).unwrap();
    assert!(matches!(
        Storage::open(dir.path(), opts()),
        Err(StorageError::Locked(_))
    ));
}

#[test]
fn inspect_reports_blocks_series_samples_and_wal_without_touching_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(dir.path(), opts()).unwrap();
    fill(&s, 5, 0, 4 * 360, true);
    let m = s.metrics();
    let rep = osprey::storage::inspect(dir.path()).unwrap();
    assert_eq!(rep.raw_blocks.len() as u64, m.raw_blocks);
    assert!(rep.raw_blocks.iter().all(|b| b.meta.num_series == 5));
    assert_eq!(rep.raw_samples() + rep.wal.samples, 5 * 4 * 360);
    let text = rep.to_string();
    assert!(
        text.contains("raw blocks:")
            && text.contains("bytes per sample")
            && text.contains("WAL (head)"),
        "{text}"
    );
    assert!(osprey::storage::inspect(&dir.path().join("missing")).is_err());
}

#[test]
fn interrupted_compaction_and_unfinished_writes_are_cleaned_up_at_open() {
    use osprey::storage::block::Block;
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let o = StorageOptions {
        rollups: false,
        ..opts()
    };
    {
        let s = Storage::open(dir.path(), o.clone()).unwrap();
        fill(&s, 3, 0, 3 * 360, false);
        s.seal_head().unwrap();
        assert_eq!(s.block_metas(0).len(), 3);
    }
    let raw = dir.path().join("blocks/raw");
    let mut names: Vec<_> = std::fs::read_dir(&raw)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    // A compaction that wrote its merged block but died before deleting the sources.
    let sources: Vec<Arc<Block>> = names[..2]
        .iter()
        .map(|p| Arc::new(Block::open(p).unwrap()))
        .collect();
    osprey::storage::compaction::merge(&raw, &sources).unwrap();
    drop(sources);
    // A block write that died before its rename.
    std::fs::create_dir_all(raw.join("123_456.tmp")).unwrap();
    let s = Storage::open(dir.path(), o.clone()).unwrap();
    let metas = s.block_metas(0);
    assert_eq!(metas.len(), 2, "{metas:?}");
    assert_eq!(metas[0].level, 1);
    assert!(!raw.join("123_456.tmp").exists());
    check_complete(&s, 3, 0, 3 * 360);
    drop(s);
    // A damaged block is moved aside with an error instead of failing the whole store.
    let idx = names[2].join("index");
    let mut data = std::fs::read(&idx).unwrap();
    let n = data.len();
    data[n - 30] ^= 0x55;
    std::fs::write(&idx, &data).unwrap();
    let s = Storage::open(dir.path(), o).unwrap();
    assert_eq!(s.block_metas(0).len(), 1);
    assert!(
        raw.join(format!(
            "{}.corrupt",
            names[2].file_name().unwrap().to_string_lossy()
        ))
        .exists()
    );
    check_complete(&s, 3, 0, 2 * 360);
}

#[test]
fn concurrent_per_batch_appends_are_all_durable_after_their_group_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let opts = StorageOptions {
        fsync: osprey::storage::FsyncPolicy::PerBatch,
        ..opts()
    };
    {
        let s = Storage::open(dir.path(), opts.clone()).unwrap();
        std::thread::scope(|scope| {
            for w in 0..8 {
                let s = &s;
                scope.spawn(move || {
                    for i in 0..50 {
                        let b = vec![SeriesSamples {
                            labels: labels("g", w),
                            samples: vec![Sample::new(T0 + i * 10_000, i as f64)],
                        }];
                        assert_eq!(s.append(&b).unwrap().accepted, 1);
                    }
                });
            }
        });
        let m = s.metrics();
        assert!(
            (1..=400).contains(&m.wal_group_syncs),
            "every append waited for a sync: {m:?}"
        );
    }
    let s = Storage::open(dir.path(), opts).unwrap();
    let got = all(&s, &[Matcher::eq(METRIC_NAME, "g")], i64::MIN, i64::MAX);
    assert_eq!(got.len(), 8);
    assert!(got.iter().all(|(_, v)| v.len() == 50));
}
