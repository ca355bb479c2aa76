//! `promtool query instant` and `promtool query range` (Debian's
//! `prometheus` package) against a live `osprey server`.

mod common;
#[path = "common/promql_data.rs"]
mod data;
#[path = "common/promql_server.rs"]
mod server;

use std::process::Command;

use common::artifact_dir;
use serde_json::Value as Json;
use server::{OspreyServer, recent_base_ms, remote_write};

fn promtool(args: &[&str]) -> Json {
    let out = Command::new("promtool")
        .args(args)
        .output()
        .expect("promtool (Debian package prometheus) is installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "promtool {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("promtool printed no JSON ({e}): {stdout}"))
}

#[test]
fn promtool_queries_osprey() {
    let dir = artifact_dir("promql-promtool");
    let osprey = OspreyServer::start(&dir);
    let base = recent_base_ms();
    remote_write(&osprey.base, &data::write_request(base));
    let at = |rel: i64| (base / 1000 + rel).to_string();

    // Instant: the counter with a reset, joined to its node.
    let time = at(600);
    let v = promtool(&[
        "query",
        "-o",
        "json",
        "instant",
        &format!("--time={time}"),
        &osprey.base,
        "sort_desc(req_total / on(instance) group_left(node) node_info)",
    ]);
    let got: Vec<(String, String, f64)> = v
        .as_array()
        .expect("a vector")
        .iter()
        .map(|s| {
            assert_eq!(s["value"][0].as_f64().unwrap(), (base / 1000 + 600) as f64);
            (
                s["metric"]["instance"].as_str().unwrap().to_string(),
                s["metric"]["node"].as_str().unwrap().to_string(),
                s["value"][1].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("a".into(), "n1".into(), 600.0),
            ("b".into(), "n2".into(), 150.0)
        ]
    );

    // Range: rate across the counter reset at 300 s.
    let v = promtool(&[
        "query",
        "-o",
        "json",
        "range",
        &format!("--start={}", at(240)),
        &format!("--end={}", at(420)),
        "--step=1m",
        &osprey.base,
        r#"rate(req_total{instance="b"}[1m])"#,
    ]);
    let series = v.as_array().expect("a matrix");
    assert_eq!(series.len(), 1, "{v}");
    assert_eq!(series[0]["metric"]["instance"], "b");
    let points: Vec<(i64, f64)> = series[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_f64().unwrap() as i64 - base / 1000,
                p[1].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    let want = [(240, 0.5), (300, 25.0 / 60.0), (360, 0.5), (420, 0.5)];
    assert_eq!(points.len(), want.len(), "{points:?}");
    for (g, w) in points.iter().zip(want) {
        assert_eq!(g.0, w.0);
        assert!((g.1 - w.1).abs() < 1e-12, "{points:?}");
    }

    // A bad query is reported by promtool as the server's error.
    let out = Command::new("promtool")
        .args(["query", "instant", &osprey.base, "rate(up)"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("bad_data") || text.contains("matrix"),
        "{text}"
    );
}
