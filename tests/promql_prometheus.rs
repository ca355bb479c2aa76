//! Runs the table's expressions against a real Prometheus (Debian's
//! `prometheus`) and `osprey server` loaded with the same data by
//! remote-write, and compares the answers sample by sample (values within
//! 1e-9 relative), instant and range queries.

#[path = "common/promql_cases.rs"]
mod cases;
mod common;
#[path = "common/promql_data.rs"]
mod data;
#[path = "common/promql_server.rs"]
mod server;

use std::collections::BTreeMap;

use common::{PrometheusProcess, artifact_dir};
use serde_json::Value as Json;
use server::{OspreyServer, query_api, recent_base_ms, remote_write};

type Answer = Result<BTreeMap<String, Vec<(i64, String)>>, String>;

/// A query answer, keyed by the canonical labels, values as `(ms, value)`.
fn normalise(v: &Json) -> Answer {
    if v["status"] != "success" {
        return Err(format!("{}: {}", v["errorType"], v["error"]));
    }
    let data = &v["data"];
    let point = |p: &Json| {
        let t = (p[0].as_f64().expect("time") * 1000.0).round() as i64;
        (t, p[1].as_str().expect("value string").to_string())
    };
    let mut out = BTreeMap::new();
    match data["resultType"].as_str() {
        Some("scalar") => {
            out.insert("scalar".to_string(), vec![point(&data["result"])]);
        }
        Some("vector") | Some("matrix") => {
            for s in data["result"].as_array().expect("result array") {
                let mut labels: Vec<(String, String)> = s["metric"]
                    .as_object()
                    .expect("metric")
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect();
                labels.sort();
                let key = format!("{labels:?}");
                let points = match s.get("values") {
                    Some(vs) => vs.as_array().unwrap().iter().map(point).collect(),
                    None => vec![point(&s["value"])],
                };
                out.insert(key, points);
            }
        }
        other => return Err(format!("unexpected resultType {other:?}")),
    }
    Ok(out)
}

fn same_value(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => {
            (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-9 * x.abs().max(y.abs())
        }
        _ => false,
    }
}

fn same(a: &Answer, b: &Answer) -> bool {
    match (a, b) {
        (Ok(a), Ok(b)) => {
            a.len() == b.len()
                && a.iter().zip(b).all(|((ka, pa), (kb, pb))| {
                    ka == kb
                        && pa.len() == pb.len()
                        && pa
                            .iter()
                            .zip(pb)
                            .all(|(x, y)| x.0 == y.0 && same_value(&x.1, &y.1))
                })
        }
        // Every query of the table is valid: an error is a failure.
        _ => false,
    }
}

#[test]
fn osprey_answers_like_prometheus() {
    let dir = artifact_dir("promql-prometheus");
    let prom = PrometheusProcess::start(&dir.join("prometheus-data"), &dir);
    let osprey = OspreyServer::start(&dir);
    let base = recent_base_ms();
    let request = data::write_request(base);
    remote_write(&prom.base, &request);
    remote_write(&osprey.base, &request);
    let secs = |rel_s: i64| format!("{}", (base / 1000 + rel_s));

    let mut compared = 0;
    let mut non_empty = 0;
    let mut failures = Vec::new();
    let mut check = |what: String, path: &str, form: Vec<(&str, String)>| {
        let p = normalise(&query_api(&prom.base, path, &form));
        let o = normalise(&query_api(&osprey.base, path, &form));
        compared += 1;
        if p.as_ref().is_ok_and(|p| !p.is_empty()) {
            non_empty += 1;
        }
        if !same(&p, &o) {
            failures.push(format!("{what}\n  prometheus {p:?}\n  osprey     {o:?}"));
        }
    };
    for c in cases::INSTANT {
        let expr = cases::expand(c.expr, base / 1000);
        check(
            format!("instant {expr} @{}", c.at),
            "/api/v1/query",
            vec![("query", expr.clone()), ("time", secs(c.at))],
        );
        // The same expression as a range query, on steps that do not fall
        // on sample times, over the whole data set and past its end.
        if !expr.contains('@') && !expr.contains("sort") {
            check(
                format!("range {expr} [-25s, 725s] step 25s"),
                "/api/v1/query_range",
                vec![
                    ("query", expr.clone()),
                    ("start", format!("{}.5", base / 1000 - 26)),
                    ("end", secs(725)),
                    ("step", "25".into()),
                ],
            );
        }
    }
    for expr in cases::COMPARED_ONLY {
        for at in [0, 95, 300, 455, 600, 700] {
            check(
                format!("instant {expr} @{at}"),
                "/api/v1/query",
                vec![("query", expr.to_string()), ("time", secs(at))],
            );
        }
        check(
            format!("range {expr} [-10s, 710s] step 15s"),
            "/api/v1/query_range",
            vec![
                ("query", expr.to_string()),
                ("start", secs(-10)),
                ("end", secs(710)),
                ("step", "15".into()),
            ],
        );
    }
    for c in cases::RANGE {
        check(
            format!("range {} [{}, {}] step {}", c.expr, c.start, c.end, c.step),
            "/api/v1/query_range",
            vec![
                ("query", c.expr.to_string()),
                ("start", secs(c.start)),
                ("end", secs(c.end)),
                ("step", c.step.to_string()),
            ],
        );
    }
    eprintln!("compared {compared} queries, {non_empty} with a non-empty answer");
    // The data arrived: most queries have an answer (some are empty by
    // design, e.g. `absent(up)` or instants after the data ends).
    assert!(
        non_empty * 10 >= compared * 8,
        "{non_empty} of {compared} answers are non-empty"
    );
    assert!(
        failures.is_empty(),
        "{} of {compared} queries differ from Prometheus:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
