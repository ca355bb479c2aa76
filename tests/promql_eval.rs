//! Table-driven tests of the PromQL engine over a fixed data set
//! (`tests/common/promql_cases.rs`): counter resets, gaps, staleness,
//! joins, `topk` ties, subqueries; plus errors and limits.

#[path = "common/promql_cases.rs"]
mod cases;
#[path = "common/promql_data.rs"]
mod data;

use std::time::Duration;

use osprey::promql::{QueryError, QueryLimits, Value, instant_query, range_query};
use osprey::storage::{Labels, Storage, StorageOptions};

/// 2023-11-14T22:00:00Z: a whole hour, so subquery steps align with it.
const BASE_MS: i64 = 1_699_999_200_000;

fn store() -> (tempfile::TempDir, Storage) {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path(), StorageOptions::default()).unwrap();
    let report = storage.append(&data::batch(BASE_MS)).unwrap();
    assert_eq!(report.rejected(), 0, "{report:?}");
    (dir, storage)
}

fn render(labels: &Labels) -> String {
    let name = labels.metric_name().unwrap_or("");
    let rest: Vec<String> = labels
        .iter()
        .filter(|(n, _)| *n != "__name__")
        .map(|(n, v)| format!("{n}={v:?}"))
        .collect();
    format!("{name}{{{}}}", rest.join(","))
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

fn expected(want: &[(&str, f64)]) -> Vec<(String, f64)> {
    want.iter()
        .map(|(k, v)| match k.strip_suffix(cases::PLUS_BASE) {
            Some(k) => (k.to_string(), v + (BASE_MS / 1000) as f64),
            None => (k.to_string(), *v),
        })
        .collect()
}

fn instant_result(v: Value) -> Vec<(String, f64)> {
    match v {
        Value::Scalar { v, .. } => vec![("scalar".into(), v)],
        Value::Vector(samples) => samples
            .into_iter()
            .map(|s| (render(&s.labels), s.v))
            .collect(),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn instant_cases_match_prometheus_results() {
    let (_dir, storage) = store();
    let mut failures = Vec::new();
    for c in cases::INSTANT {
        let expr = cases::expand(c.expr, BASE_MS / 1000);
        let t = BASE_MS + c.at * 1000;
        let mut got = match instant_query(&storage, &expr, t, QueryLimits::default()) {
            Ok(v) => instant_result(v),
            Err(e) => {
                failures.push(format!("{expr} @{}: error {e}", c.at));
                continue;
            }
        };
        let mut want = expected(c.want);
        if !c.ordered {
            got.sort_by(|a, b| a.0.cmp(&b.0));
            want.sort_by(|a, b| a.0.cmp(&b.0));
        }
        let same = got.len() == want.len()
            && got
                .iter()
                .zip(&want)
                .all(|(g, w)| g.0 == w.0 && close(g.1, w.1));
        if !same {
            failures.push(format!(
                "{expr} @{}:\n   got  {got:?}\n   want {want:?}",
                c.at
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn range_cases_match_prometheus_results() {
    let (_dir, storage) = store();
    let mut failures = Vec::new();
    for c in cases::RANGE {
        let v = range_query(
            &storage,
            c.expr,
            BASE_MS + c.start * 1000,
            BASE_MS + c.end * 1000,
            c.step * 1000,
            QueryLimits::default(),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", c.expr));
        let Value::Matrix(series) = v else {
            panic!("{}: not a matrix", c.expr)
        };
        let got: Vec<(String, Vec<(i64, f64)>)> = series
            .iter()
            .map(|s| {
                (
                    render(&s.labels),
                    s.samples
                        .iter()
                        .map(|p| ((p.t - BASE_MS) / 1000, p.v))
                        .collect(),
                )
            })
            .collect();
        let same = got.len() == c.want.len()
            && got.iter().zip(c.want).all(|(g, w)| {
                g.0 == w.0
                    && g.1.len() == w.1.len()
                    && g.1
                        .iter()
                        .zip(w.1)
                        .all(|(a, b)| a.0 == b.0 && close(a.1, b.1))
            });
        if !same {
            failures.push(format!(
                "{}:\n   got  {got:?}\n   want {:?}",
                c.expr, c.want
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_matrix_selector_returns_the_raw_samples_of_its_window() {
    let (_dir, storage) = store();
    let v = instant_query(
        &storage,
        r#"up{instance="c"}[30s]"#,
        BASE_MS + 120_000,
        QueryLimits::default(),
    )
    .unwrap();
    let Value::Matrix(m) = v else { panic!("{v:?}") };
    assert_eq!(m.len(), 1);
    // [90 s, 120 s]: 90 and 100; the staleness marker at 110 s is not a sample.
    let times: Vec<i64> = m[0]
        .samples
        .iter()
        .map(|s| (s.t - BASE_MS) / 1000)
        .collect();
    assert_eq!(times, vec![90, 100]);
}

#[test]
fn errors_name_the_problem_and_have_prometheus_classes() {
    let (_dir, storage) = store();
    let l = QueryLimits::default();
    let bad = |q: &str| match instant_query(&storage, q, BASE_MS, l) {
        Err(QueryError::BadData(m)) => m,
        other => panic!("{q}: expected bad_data, got {other:?}"),
    };
    assert!(bad("sum(").contains("parse error"));
    assert!(bad("").contains("empty"));
    assert!(bad("rate(up)").contains("matrix"), "{}", bad("rate(up)"));
    let m = bad("holt_winters(temp[5m], 0.5, 0.5)");
    assert!(m.contains("holt_winters"), "{m}");
    match instant_query(&storage, "tie + on() node_info", BASE_MS, l) {
        Err(QueryError::Execution(m)) => assert!(m.contains("many-to-many"), "{m}"),
        other => panic!("{other:?}"),
    }
    match range_query(&storage, "up[5m]", BASE_MS, BASE_MS + 60_000, 10_000, l) {
        Err(QueryError::BadData(m)) => assert!(m.contains("range vector"), "{m}"),
        other => panic!("{other:?}"),
    }
    match range_query(&storage, "up", BASE_MS, BASE_MS + 60_000, 0, l) {
        Err(QueryError::BadData(m)) => assert!(m.contains("step"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn limits_stop_queries_that_touch_too_much() {
    let (_dir, storage) = store();
    let few_series = QueryLimits {
        max_series: 2,
        ..QueryLimits::default()
    };
    match instant_query(&storage, "tie", BASE_MS + 60_000, few_series) {
        Err(QueryError::Execution(m)) => assert!(m.contains("series"), "{m}"),
        other => panic!("{other:?}"),
    }
    let few_samples = QueryLimits {
        max_samples: 100,
        ..QueryLimits::default()
    };
    match instant_query(
        &storage,
        "sum(rate(req_total[10m]))",
        BASE_MS + 600_000,
        few_samples,
    ) {
        Err(QueryError::Execution(m)) => assert!(m.contains("samples"), "{m}"),
        other => panic!("{other:?}"),
    }
    let no_time = QueryLimits {
        timeout: Duration::ZERO,
        ..QueryLimits::default()
    };
    assert!(matches!(
        instant_query(&storage, "up", BASE_MS, no_time),
        Err(QueryError::Timeout(_))
    ));
    // Within the limits the same queries work.
    assert!(
        instant_query(
            &storage,
            "sum(rate(req_total[10m]))",
            BASE_MS + 600_000,
            QueryLimits::default()
        )
        .is_ok()
    );
}
