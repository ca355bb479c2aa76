//! Long ranges answered from rollups give the answers raw samples give.
//!
//! The same data goes into two stores, one building rollups and one not;
//! every expression the rollup path serves is evaluated on both and compared
//! sample by sample. Counter resets, NaNs, a gap, a staleness marker and
//! samples exactly on bucket edges are in the data.

use osprey::promql::{QueryLimits, Value, instant_query, range_query};
use osprey::storage::{Labels, METRIC_NAME, Sample, SeriesSamples, Storage, StorageOptions};

const H: i64 = 3_600_000;
const T0: i64 = 1_800_000_000_000 - 1_800_000_000_000 % (24 * H);
const STEP: i64 = 15_000;
const HOURS: i64 = 12;

fn labels(name: &str, id: &str) -> Labels {
    Labels::from_pairs([
        (METRIC_NAME.to_string(), name.to_string()),
        ("id".to_string(), id.to_string()),
    ])
}

/// Value of series `k` at sample `i`, or `None` for no sample.
fn value(k: usize, i: i64) -> Option<f64> {
    let stale = f64::from_bits(0x7ff0_0000_0000_0002);
    match k {
        // Counters resetting at different periods.
        0 => Some(((i % 700) * 3) as f64),
        1 => Some(((i % 97) as f64).powi(2) + 0.25),
        // A gauge with NaNs now and then.
        2 => Some(if i % 113 == 5 {
            f64::NAN
        } else {
            ((i as f64) / 17.0).sin() * 100.0
        }),
        // A gauge with a two-hour gap ended by a staleness marker.
        3 => match i {
            _ if (4 * 240..6 * 240).contains(&i) => None,
            _ if i == 4 * 240 - 1 => Some(stale),
            _ => Some((i % 50) as f64 - 25.0),
        },
        // Only every fourth interval (sparser than its neighbours).
        _ => (i % 4 == 0).then_some(i as f64),
    }
}

fn load(rollups: bool) -> (tempfile::TempDir, Storage) {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(
        dir.path(),
        StorageOptions {
            block_duration_ms: H,
            retention_age_ms: None,
            rollups,
            ..StorageOptions::default()
        },
    )
    .unwrap();
    let names = ["c", "c", "g", "g", "g"];
    for i in 0..HOURS * 240 {
        let batch: Vec<SeriesSamples> = (0..5)
            .filter_map(|k| {
                value(k, i).map(|v| SeriesSamples {
                    labels: labels(names[k], &k.to_string()),
                    samples: vec![Sample::new(T0 + i * STEP, v)],
                })
            })
            .collect();
        s.append(&batch).unwrap();
        if i % 240 == 239 {
            s.maintain().unwrap();
        }
    }
    (dir, s)
}

fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

fn compare(q: &str, with: &Value, without: &Value) {
    match (with, without) {
        (Value::Vector(a), Value::Vector(b)) => {
            assert_eq!(a.len(), b.len(), "{q}: {a:?} vs {b:?}");
            for (x, y) in a.iter().zip(b) {
                assert_eq!(x.labels, y.labels, "{q}");
                assert!(same(x.v, y.v), "{q} {}: {} vs {}", x.labels, x.v, y.v);
            }
        }
        (Value::Matrix(a), Value::Matrix(b)) => {
            assert_eq!(a.len(), b.len(), "{q}");
            for (x, y) in a.iter().zip(b) {
                assert_eq!(x.labels, y.labels, "{q}");
                assert_eq!(x.samples.len(), y.samples.len(), "{q} {}", x.labels);
                for (p, r) in x.samples.iter().zip(&y.samples) {
                    assert_eq!(p.t, r.t, "{q}");
                    assert!(
                        same(p.v, r.v),
                        "{q} {} at {}: {} vs {}",
                        x.labels,
                        p.t,
                        p.v,
                        r.v
                    );
                }
            }
        }
        other => panic!("{q}: unexpected {other:?}"),
    }
}

#[test]
fn rollup_answers_equal_raw_answers() {
    let (_a, with) = load(true);
    let (_b, without) = load(false);
    assert!(
        !with.block_metas(osprey::storage::rollup::RES_5M).is_empty(),
        "the test needs rollup blocks"
    );
    let limits = QueryLimits::default();
    let funcs = [
        "min_over_time",
        "max_over_time",
        "sum_over_time",
        "count_over_time",
        "avg_over_time",
        "last_over_time",
        "rate",
        "increase",
        "delta",
    ];
    let mut checked = 0;
    for f in funcs {
        for sel in [
            "c[20m]",
            "c[1h]",
            "g[3h]",
            "{__name__=~\"c|g\"}[2h]",
            "c[1h] offset 1h",
            "g[1h] @ 1800000000",
        ] {
            let q = format!("{f}({sel})");
            // Range queries on the 5-minute and hourly grids, reaching into the head.
            for (start, end, step) in [
                (T0 + 3 * H, T0 + HOURS * H, 5 * 60_000),
                (T0 + 2 * H, T0 + HOURS * H, H),
            ] {
                let a = range_query(&with, &q, start, end, step, limits).unwrap();
                let b = range_query(&without, &q, start, end, step, limits).unwrap();
                compare(&q, &a, &b);
                checked += 1;
            }
            for t in [T0 + 5 * H, T0 + 9 * H + 15 * 60_000] {
                let a = instant_query(&with, &q, t, limits).unwrap();
                let b = instant_query(&without, &q, t, limits).unwrap();
                compare(&q, &a, &b);
                checked += 1;
            }
        }
    }
    assert_eq!(checked, funcs.len() * 6 * 4);
}

#[test]
fn long_ranges_read_far_fewer_samples_from_rollups() {
    let (_a, with) = load(true);
    let (_b, without) = load(false);
    // Six hours of two counters at 15 s are 2880 samples; their 5-minute
    // rollups are 146 buckets.
    let limits = QueryLimits {
        max_samples: 1000,
        ..QueryLimits::default()
    };
    let q = "max_over_time(c[6h])";
    let t = T0 + 7 * H;
    assert!(instant_query(&with, q, t, limits).is_ok());
    let raw = instant_query(&without, q, t, limits).unwrap_err();
    assert!(raw.to_string().contains("too many samples"), "{raw}");
    // Off the bucket grid, raw samples are read (and the limit hits).
    let off_grid = instant_query(&with, q, t + 15_000, limits).unwrap_err();
    assert!(
        off_grid.to_string().contains("too many samples"),
        "{off_grid}"
    );
}

#[test]
fn a_restriction_holds_on_the_rollup_path() {
    use osprey::promql::engine::instant_query_in;
    use osprey::promql::limits::Budget;
    use osprey::storage::Matcher;
    let (_a, with) = load(true);
    // Raw samples of one counter over 6 h exceed this limit: an answer
    // means the rollups were read.
    let limits = QueryLimits {
        max_samples: 1000,
        ..QueryLimits::default()
    };
    let q = "max_over_time({__name__=~\"c|g\"}[6h])";
    let t = T0 + 7 * H;
    let restrict = Matcher::re("id", "0|2").unwrap();
    let Value::Vector(v) =
        instant_query_in(&with, q, t, Budget::start(limits), Some(restrict)).unwrap()
    else {
        panic!("a vector")
    };
    let ids: Vec<&str> = v.iter().map(|s| s.labels.get("id").unwrap()).collect();
    assert_eq!(ids, ["0", "2"]);
    let Value::Vector(all) = instant_query(&with, q, t, limits).unwrap() else {
        panic!("a vector")
    };
    assert_eq!(all.len(), 5, "without the restriction every series answers");
}
