//! `POST /api/v1/alerting/rules/preview` in-process on fixed data loaded
//! into the server's storage: the fired intervals are exactly where the
//! data stays over the threshold for longer than `for`, a shorter spike
//! only pends, bad input is a 400 naming the field, and only admins may
//! preview.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use osprey::server::config::{Role, TokenConfig};
use osprey::server::{ServerConfig, ServerState, router};
use osprey::storage::{Labels, Sample, SeriesSamples};
use serde_json::{Value, json};
use tower::ServiceExt;

const READ: &str = "read-token-0123456789";
const ADMIN: &str = "admin-token-0123456789";
const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

fn state() -> (tempfile::TempDir, Arc<ServerState>) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig {
        data_dir: dir.path().to_path_buf(),
        ..ServerConfig::default()
    };
    for (name, t, role) in [("reader", READ, Role::Read), ("admin", ADMIN, Role::Admin)] {
        config.tokens.push(TokenConfig {
            name: name.into(),
            token: Some(t.into()),
            token_file: None,
            role,
            namespaces: None,
        });
    }
    (dir, ServerState::open(config).unwrap())
}

async fn preview(st: &Arc<ServerState>, body: Value, token: &str) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/alerting/rules/preview")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = router(st.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 26)
        .await
        .unwrap();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
    (status, v)
}

/// Six hours of `cpu{pod}` every 10 s up to `end`: pod `long` is 100 in
/// `[end-4h, end-3h)`, pod `spike` is 100 in `[end-2h, end-2h+3m)`; 10
/// otherwise.
fn load(st: &ServerState, end: i64) {
    let hot = |pod: &str, t: i64| match pod {
        "long" => (end - 4 * HOUR..end - 3 * HOUR).contains(&t),
        _ => (end - 2 * HOUR..end - 2 * HOUR + 3 * MIN).contains(&t),
    };
    let batch: Vec<SeriesSamples> = ["long", "spike"]
        .iter()
        .map(|pod| SeriesSamples {
            labels: Labels::from_pairs([("__name__", "cpu"), ("pod", pod)]),
            samples: (0..=6 * 360)
                .map(|i| {
                    let t = end - 6 * HOUR + i * 10_000;
                    Sample {
                        t,
                        v: if hot(pod, t) { 100.0 } else { 10.0 },
                    }
                })
                .collect(),
        })
        .collect();
    st.storage.append(&batch).unwrap();
}

fn rule(end: i64) -> Value {
    json!({
        "name": "Busy",
        "condition": {"kind": "threshold", "query": "cpu", "op": "above", "threshold": 50},
        "for": "5m",
        "range": "6h",
        "end": (end / 1000).to_string(),
        "step": "1m",
        "width": 400,
    })
}

fn end_of_data() -> i64 {
    // On the minute grid, so evaluations land on the edges of the data.
    let now = chrono::Utc::now().timestamp_millis();
    now - now % MIN - 10 * MIN
}

#[tokio::test]
async fn fired_intervals_are_where_the_data_stays_over_the_threshold_longer_than_for() {
    let (_d, st) = state();
    let end = end_of_data();
    load(&st, end);
    let (s, v) = preview(&st, rule(end), ADMIN).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let d = &v["data"];
    assert_eq!(d["start"], end - 6 * HOUR);
    assert_eq!(d["end"], end);
    let sim = &d["simulation"];
    assert_eq!(sim["threshold"], 50.0);
    assert_eq!(sim["step_ms"], MIN);
    assert_eq!(sim["evaluations"], 361);
    assert_eq!(sim["failed_evaluations"], 0, "{sim}");
    let got: Vec<(String, String, i64, i64, bool)> = sim["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["labels"]["pod"].as_str().unwrap().to_string(),
                i["state"].as_str().unwrap().to_string(),
                i["start_ms"].as_i64().unwrap(),
                i["end_ms"].as_i64().unwrap(),
                i["open"].as_bool().unwrap(),
            )
        })
        .collect();
    let t0 = end - 4 * HOUR;
    let t1 = end - 2 * HOUR;
    assert_eq!(
        got,
        vec![
            ("long".into(), "pending".into(), t0, t0 + 5 * MIN, false),
            (
                "long".into(),
                "firing".into(),
                t0 + 5 * MIN,
                end - 3 * HOUR,
                false
            ),
            ("spike".into(), "pending".into(), t1, t1 + 3 * MIN, false),
        ]
    );
    for i in sim["intervals"].as_array().unwrap() {
        assert_eq!(i["labels"]["alertname"], "Busy");
    }
    // The chart: both series, one bucket per pixel at most, peaks kept.
    let chart = &d["chart"];
    let t = chart["t"].as_array().unwrap();
    assert!(t.len() <= 401, "{} buckets for 400 pixels", t.len());
    let series = chart["series"].as_array().unwrap();
    assert_eq!(series.len(), 2);
    // A scope keeps only its members, in the chart as in the intervals.
    let mut scoped = rule(end);
    scoped["condition"]["scope"] = json!(["pod=\"spike\""]);
    let (s, v) = preview(&st, scoped, ADMIN).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let names: Vec<&Value> = v["data"]["chart"]["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["metric"]["pod"])
        .collect();
    assert_eq!(names, vec!["spike"]);
    let pods: Vec<&Value> = v["data"]["simulation"]["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["labels"]["pod"])
        .collect();
    assert_eq!(pods, vec!["spike"]);
    for s in series {
        assert_eq!(s["stats"]["max"], 100.0);
        assert_eq!(s["stats"]["min"], 10.0);
    }
}

#[tokio::test]
async fn a_longer_for_means_the_short_plateau_never_fires() {
    let (_d, st) = state();
    let end = end_of_data();
    load(&st, end);
    let mut r = rule(end);
    r["for"] = json!("61m");
    let (s, v) = preview(&st, r, ADMIN).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let intervals = v["data"]["simulation"]["intervals"].as_array().unwrap();
    assert!(!intervals.is_empty());
    assert!(
        intervals.iter().all(|i| i["state"] == "pending"),
        "{intervals:?}"
    );
}

#[tokio::test]
async fn bad_input_is_a_400_naming_the_field_and_readers_may_not_preview() {
    let (_d, st) = state();
    let end = end_of_data();
    let cases: Vec<(Value, &str)> = vec![
        (
            {
                let mut r = rule(end);
                r["range"] = json!("soon");
                r
            },
            "`range`",
        ),
        (
            {
                let mut r = rule(end);
                r["range"] = json!("30d");
                r
            },
            "`range`",
        ),
        (
            {
                let mut r = rule(end);
                r["step"] = json!("1s");
                r
            },
            "`step`",
        ),
        (
            {
                let mut r = rule(end);
                r["end"] = json!("yesterday-ish");
                r
            },
            "`end`",
        ),
        (
            {
                let mut r = rule(end);
                r["width"] = json!(0);
                r
            },
            "`width`",
        ),
        (
            {
                let mut r = rule(end);
                r["for"] = json!("five");
                r
            },
            "`for`",
        ),
        (
            {
                let mut r = rule(end);
                r["condition"]["threshold"] = json!("high");
                r
            },
            "`condition",
        ),
        (
            {
                let mut r = rule(end);
                r["condition"]["query"] = json!("sum(");
                r
            },
            "`query`",
        ),
        (json!([1, 2]), "JSON object"),
    ];
    for (body, needle) in cases {
        let (s, v) = preview(&st, body.clone(), ADMIN).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert_eq!(v["errorType"], "bad_data", "{v}");
        let msg = v["error"].as_str().unwrap();
        assert!(msg.contains(needle), "{body}: {msg:?} should name {needle}");
    }
    let (s, v) = preview(&st, rule(end), READ).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
}

/// Five nodes (the detector's default minimum group) every minute for six
/// hours: `a`..`c` and `e` near 10, `d` at 50.
fn load_peers(st: &ServerState, end: i64) {
    let batch: Vec<SeriesSamples> = [
        ("a", 10.0),
        ("b", 11.0),
        ("c", 12.0),
        ("d", 50.0),
        ("e", 10.5),
    ]
    .iter()
    .map(|(node, v)| SeriesSamples {
        labels: Labels::from_pairs([("__name__", "mem"), ("node", node), ("cluster", "x")]),
        samples: (0..=360)
            .map(|i| Sample {
                t: end - 6 * HOUR + i * MIN,
                // A small wobble so the robust scale is not the floor.
                v: v + (i % 3) as f64 * 0.1,
            })
            .collect(),
    })
    .collect();
    st.storage.append(&batch).unwrap();
}

#[tokio::test]
async fn host_comparison_answers_the_peers_band_and_baseline_its_learned_band() {
    let (_d, st) = state();
    let end = end_of_data();
    load_peers(&st, end);
    let base = |condition: Value| {
        json!({"name": "Odd", "condition": condition, "range": "6h",
               "end": (end / 1000).to_string(), "step": "5m"})
    };
    let (s, v) = preview(
        &st,
        base(json!({"kind": "host_comparison", "query": "mem", "group_by": ["cluster"]})),
        ADMIN,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let sim = &v["data"]["simulation"];
    assert_eq!(sim["threshold"], Value::Null);
    let bands = sim["bands"].as_array().unwrap();
    assert_eq!(bands.len(), 1, "one group: {bands:?}");
    assert_eq!(bands[0]["labels"], json!({"cluster": "x"}));
    let mut drawn = 0;
    let edges = |k: &str| bands[0][k].as_array().unwrap().clone();
    let (los, centres, his) = (edges("lo"), edges("centre"), edges("hi"));
    for ((lo, c), hi) in los.iter().zip(&centres).zip(&his) {
        if c.is_null() {
            continue;
        }
        drawn += 1;
        let (lo, c, hi) = (
            lo.as_f64().unwrap(),
            c.as_f64().unwrap(),
            hi.as_f64().unwrap(),
        );
        // The median of 10, 10.5, 11, 12, 50 (plus wobble), and a band that
        // keeps the three close peers and leaves `d` outside.
        assert!((10.9..=11.3).contains(&c), "centre {c}");
        assert!(lo < 10.0 && hi > 12.0 && hi < 50.0, "band {lo}..{hi}");
    }
    assert!(
        drawn > 60,
        "the band is drawn over the range: {drawn} points"
    );
    // `d` is the one that would have fired.
    let firing: Vec<&Value> = sim["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["state"] == "firing")
        .collect();
    assert!(!firing.is_empty(), "{sim}");
    assert!(
        firing.iter().all(|i| i["labels"]["node"] == "d"),
        "{firing:?}"
    );

    // A group aggregate charts the aggregate its threshold applies to.
    let (s, v) = preview(
        &st,
        base(
            json!({"kind": "group_aggregate", "query": "mem", "aggregation": "avg",
                    "by": ["cluster"], "op": "above", "threshold": 15}),
        ),
        ADMIN,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let series = v["data"]["chart"]["series"].as_array().unwrap();
    assert_eq!(series.len(), 1, "{series:?}");
    assert_eq!(series[0]["metric"], json!({"cluster": "x"}));
    let avg = series[0]["stats"]["avg"].as_f64().unwrap();
    assert!((18.7..18.9).contains(&avg), "the mean of the five: {avg}");
    let intervals = v["data"]["simulation"]["intervals"].as_array().unwrap();
    assert!(
        intervals
            .iter()
            .any(|i| i["state"] == "firing" && i["open"] == true),
        "{intervals:?}"
    );

    let (s, v) = preview(
        &st,
        base(json!({"kind": "baseline", "query": "mem{node=\"a\"}",
                    "detector": {"season": "none"}, "step": "1m"})),
        ADMIN,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let bands = v["data"]["simulation"]["bands"].as_array().unwrap();
    assert_eq!(bands.len(), 1, "{bands:?}");
    let n = bands[0]["t"].as_array().unwrap().len();
    let warm: Vec<usize> = (0..n)
        .filter(|&i| !bands[0]["centre"][i].is_null())
        .collect();
    assert!(!warm.is_empty(), "the baseline warms up: {}", bands[0]);
    for i in warm {
        let (lo, c, hi) = (
            bands[0]["lo"][i].as_f64().unwrap(),
            bands[0]["centre"][i].as_f64().unwrap(),
            bands[0]["hi"][i].as_f64().unwrap(),
        );
        assert!(
            lo <= c && c <= hi && (9.0..=11.0).contains(&c),
            "{lo} {c} {hi}"
        );
    }
}
