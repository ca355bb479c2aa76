//! PromQL query strings (`query=` of `/api/v1/query`, `/query_range`,
//! `/api/v1/render`, alert rules): parsed, and when they parse, evaluated
//! against a small storage holding a counter and a gauge, under tight
//! query limits, at an instant and over a short range.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use osprey::promql::QueryLimits;
use osprey::promql::engine;
use osprey::storage::{Labels, Sample, SeriesSamples, Storage};

const T0: i64 = 1_700_000_000_000;

fn storage() -> &'static Storage {
    static STORAGE: OnceLock<(tempfile::TempDir, Storage)> = OnceLock::new();
    &STORAGE
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("temp dir");
            let storage = Storage::open(dir.path(), Default::default()).expect("storage");
            let series = |name: &str, pod: &str, f: fn(i64) -> f64| SeriesSamples {
                labels: Labels::from_pairs([
                    ("__name__", name),
                    ("namespace", "prod"),
                    ("pod", pod),
                ]),
                samples: (0..60)
                    .map(|i| Sample::new(T0 + i * 15_000, f(i)))
                    .collect(),
            };
            storage
                .append(&[
                    series("requests_total", "web-1", |i| (i * 10) as f64),
                    series("requests_total", "web-2", |i| (i * 3 % 50) as f64),
                    series("memory_bytes", "web-1", |i| 1e6 + i as f64),
                ])
                .expect("append");
            (dir, storage)
        })
        .1
}

fn limits() -> QueryLimits {
    QueryLimits {
        timeout: Duration::from_millis(250),
        max_series: 1_000,
        max_samples: 200_000,
        ..QueryLimits::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(expr) = engine::parse(query) else {
        return;
    };
    if let promql_parser::parser::Expr::VectorSelector(vs) = &expr {
        let _ = engine::matcher_groups(vs);
    }
    let storage = storage();
    let _ = engine::instant_query(storage, query, T0 + 600_000, limits());
    let _ = engine::range_query(storage, query, T0, T0 + 900_000, 60_000, limits());
});
