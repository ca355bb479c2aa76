//! The log endpoints of a real server process: Loki push (JSON and
//! protobuf + snappy), search with cursors, histogram, live tail, Loki's
//! query endpoints, errors that name the problem and store nothing,
//! exactly-once batches, and `osprey logs search|tail`.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

fn now_ns() -> i64 {
    now_ms() * 1_000_000
}

/// A config with a short commit interval (answers come back quickly).
pub fn logs_config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("osprey.toml");
    std::fs::write(&path, "[server.logs]\ncommit_interval = \"50ms\"\n").unwrap();
    path
}

fn push(base: &str, ctype: &str, body: Vec<u8>, batch: Option<&str>) -> (u16, String) {
    let client = reqwest::blocking::Client::new();
    let mut req = client
        .post(format!("{base}/loki/api/v1/push"))
        .header("Content-Type", ctype)
        .body(body);
    if let Some(b) = batch {
        req = req.header("X-Osprey-Batch", b);
    }
    let resp = req.send().expect("server answers");
    (resp.status().as_u16(), resp.text().unwrap_or_default())
}

fn push_json(base: &str, body: &Value, batch: Option<&str>) -> (u16, String) {
    push(
        base,
        "application/json",
        body.to_string().into_bytes(),
        batch,
    )
}

fn push_proto(base: &str, labels: &str, lines: &[(i64, &str)]) -> (u16, String) {
    use osprey::logs::push::{EntryAdapter, PushRequest, StreamAdapter, Timestamp};
    let req = PushRequest {
        streams: vec![StreamAdapter {
            labels: labels.to_string(),
            entries: lines
                .iter()
                .map(|(ts, l)| EntryAdapter {
                    timestamp: Some(Timestamp {
                        seconds: ts / 1_000_000_000,
                        nanos: (ts % 1_000_000_000) as i32,
                    }),
                    line: l.to_string(),
                })
                .collect(),
            hash: 0,
        }],
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&prost::Message::encode_to_vec(&req))
        .unwrap();
    push(base, "application/x-protobuf", body, None)
}

fn api(base: &str, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
    let resp = reqwest::blocking::Client::new()
        .get(format!("{base}{path}"))
        .query(params)
        .send()
        .expect("server answers");
    let status = resp.status().as_u16();
    let text = resp.text().unwrap();
    let v =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text}"));
    (status, v)
}

fn messages(base: &str, q: &str) -> Vec<String> {
    let (status, v) = api(
        base,
        "/api/v1/logs/search",
        &[("query", q), ("limit", "5000")],
    );
    assert_eq!(status, 200, "{q}: {v}");
    v["data"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap().to_string())
        .collect()
}

fn error_of(status: u16, v: &Value, want_status: u16, want: &str) {
    assert_eq!(status, want_status, "{v}");
    assert_eq!(v["status"], "error", "{v}");
    let e = v["error"].as_str().unwrap();
    assert!(e.contains(want), "error {e:?} should name {want:?}");
}

#[test]
fn push_search_histogram_loki_and_errors() {
    let dir = artifact_dir("logs-api");
    let server = ServerProcess::start(&dir.join("data"), Some(&logs_config(&dir)), &dir);
    let base = server.base.as_str();
    let t = now_ns() - 60_000_000_000;
    let body = json!({"streams": [
        {"stream": {"namespace": "prod", "pod": "web-1", "container": "app", "stream": "stdout", "node": "n1"},
         "values": [[(t).to_string(), "ERROR dial tcp 10.0.0.1:5432: connection refused"],
                    [(t + 1000).to_string(), "level=info msg=\"request served\" path=/index"],
                    [(t + 2000).to_string(), "{\"level\":\"warn\",\"msg\":\"slow request\"}"]]},
        {"stream": {"namespace": "dev", "pod": "api-2", "container": "app", "stream": "stderr"},
         "values": [[(t + 3000).to_string(), "ERROR connection refused by upstream"],
                    [(t + 4000).to_string(), "plain line without level"]]}
    ]});
    let (status, text) = push_json(base, &body, None);
    assert_eq!(status, 204, "{text}");
    let (status, text) = push_proto(
        base,
        r#"{namespace="prod", pod="web-2", container="app", stream="stdout"}"#,
        &[
            (t + 5000, "WARN retrying connection"),
            (t + 6000, "INFO connection established"),
        ],
    );
    assert_eq!(status, 204, "{text}");

    // Answered after the commit: searchable at once.
    let all = messages(base, "");
    assert_eq!(all.len(), 7, "{all:?}");
    assert_eq!(all[0], "INFO connection established", "newest first");
    assert_eq!(
        messages(base, "namespace:prod AND level:error"),
        vec!["ERROR dial tcp 10.0.0.1:5432: connection refused"]
    );
    assert_eq!(messages(base, "\"connection refused\"").len(), 2);
    assert_eq!(
        messages(base, "\"refused connection\"").len(),
        0,
        "phrase order matters"
    );
    assert_eq!(messages(base, "connection AND NOT refused").len(), 2);
    assert_eq!(
        messages(base, "level:warn").len(),
        2,
        "JSON and leading WARN"
    );
    assert_eq!(messages(base, "stream:stderr").len(), 2);
    assert_eq!(messages(base, "pod:web-2 OR node:n1").len(), 5);
    assert_eq!(messages(base, "10.0.0.1").len(), 1);

    // The line object.
    let (_, v) = api(
        base,
        "/api/v1/logs/search",
        &[("query", "slow"), ("limit", "1")],
    );
    let l = &v["data"]["lines"][0];
    assert_eq!(l["ts_ns"], (t + 2000).to_string());
    assert!(l["ts"].as_str().unwrap().ends_with('Z'));
    assert_eq!(l["node"], "n1");
    assert_eq!(l["namespace"], "prod");
    assert_eq!(l["pod"], "web-1");
    assert_eq!(l["container"], "app");
    assert_eq!(l["stream"], "stdout");
    assert_eq!(l["level"], "warn");
    assert_eq!(l["labels"]["node"], "n1");
    assert_eq!(v["data"]["next_cursor"], Value::Null);
    let (_, v) = api(base, "/api/v1/logs/search", &[("query", "plain")]);
    assert_eq!(v["data"]["lines"][0]["level"], Value::Null);
    assert_eq!(v["data"]["lines"][0]["node"], Value::Null);

    // Cursor paging: no gaps, no repeats; forward is the reverse.
    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, v) = api(
            base,
            "/api/v1/logs/search",
            &[("query", ""), ("limit", "3"), ("cursor", &cursor)],
        );
        assert_eq!(status, 200, "{v}");
        for l in v["data"]["lines"].as_array().unwrap() {
            paged.push(l["message"].as_str().unwrap().to_string());
        }
        match v["data"]["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    assert_eq!(paged, all);
    let (_, v) = api(base, "/api/v1/logs/search", &[("direction", "forward")]);
    let mut fwd: Vec<String> = v["data"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap().to_string())
        .collect();
    fwd.reverse();
    assert_eq!(fwd, all);

    // Histogram: the same counts as the search.
    for q in ["", "connection", "level:error"] {
        let (status, v) = api(base, "/api/v1/logs/histogram", &[("query", q)]);
        assert_eq!(status, 200, "{v}");
        let buckets = v["data"]["buckets"].as_array().unwrap();
        assert!(
            (50..=101).contains(&buckets.len()),
            "{} buckets",
            buckets.len()
        );
        assert_eq!(v["data"]["step_ms"], 60_000);
        let total: u64 = buckets.iter().map(|b| b["count"].as_u64().unwrap()).sum();
        assert_eq!(total as usize, messages(base, q).len(), "{q}");
    }
    let (start, end) = (
        (t / 1_000_000_000).to_string(),
        (t / 1_000_000_000 + 10).to_string(),
    );
    let (_, v) = api(
        base,
        "/api/v1/logs/histogram",
        &[("start", &start), ("end", &end), ("step", "5s")],
    );
    assert_eq!(v["data"]["step_ms"], 5000);
    assert_eq!(v["data"]["buckets"][0]["count"], 7);
    assert_eq!(v["data"]["buckets"][1]["count"], 0);

    // Loki's query endpoints.
    let (status, v) = api(
        base,
        "/loki/api/v1/query_range",
        &[(
            "query",
            r#"{namespace="prod", pod=~"web-.*"} |= "connection" != "retrying""#,
        )],
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"]["resultType"], "streams");
    let result = v["data"]["result"].as_array().unwrap();
    let mut got: Vec<(String, String, String)> = result
        .iter()
        .flat_map(|s| {
            let pod = s["stream"]["pod"].as_str().unwrap().to_string();
            s["values"].as_array().unwrap().iter().map(move |v| {
                (
                    pod.clone(),
                    v[0].as_str().unwrap().to_string(),
                    v[1].as_str().unwrap().to_string(),
                )
            })
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (
                "web-1".into(),
                t.to_string(),
                "ERROR dial tcp 10.0.0.1:5432: connection refused".into()
            ),
            (
                "web-2".into(),
                (t + 6000).to_string(),
                "INFO connection established".into()
            ),
        ]
    );
    let (_, v) = api(
        base,
        "/loki/api/v1/query_range",
        &[
            ("query", r#"{stream="stderr"} |~ "up(stream)?$""#),
            ("limit", "10"),
        ],
    );
    assert_eq!(
        v["data"]["result"][0]["values"][0][1],
        "ERROR connection refused by upstream"
    );
    let (_, v) = api(base, "/loki/api/v1/labels", &[]);
    assert_eq!(
        v["data"],
        json!(["container", "namespace", "node", "pod", "stream"])
    );
    let (_, v) = api(base, "/loki/api/v1/label/pod/values", &[]);
    assert_eq!(v["data"], json!(["api-2", "web-1", "web-2"]));

    // Instant query: the lines up to `time` (inclusive), newest first by
    // default, `limit` of them, in Loki's streams shape.
    let at = (t + 3000).to_string();
    let (status, v) = api(
        base,
        "/loki/api/v1/query",
        &[
            ("query", r#"{container="app"}"#),
            ("time", &at),
            ("limit", "2"),
        ],
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"]["resultType"], "streams");
    let values = |v: &Value| -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = v["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| {
                assert!(s["stream"].is_object(), "{s}");
                s["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| {
                        assert_eq!(e.as_array().unwrap().len(), 2, "{e}");
                        (
                            e[0].as_str().unwrap().to_string(),
                            e[1].as_str().unwrap().to_string(),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        out.sort();
        out
    };
    assert_eq!(
        values(&v),
        vec![
            (
                (t + 2000).to_string(),
                "{\"level\":\"warn\",\"msg\":\"slow request\"}".to_string()
            ),
            (
                (t + 3000).to_string(),
                "ERROR connection refused by upstream".to_string()
            ),
        ]
    );
    let (_, v) = api(
        base,
        "/loki/api/v1/query",
        &[
            ("query", r#"{container="app"} |= "connection""#),
            ("time", &at),
            ("direction", "forward"),
            ("limit", "1"),
        ],
    );
    assert_eq!(
        values(&v),
        vec![(
            t.to_string(),
            "ERROR dial tcp 10.0.0.1:5432: connection refused".to_string()
        )]
    );
    let (s, v) = api(
        base,
        "/loki/api/v1/query",
        &[("query", r#"count_over_time({a="b"}[5m])"#)],
    );
    error_of(s, &v, 400, "metric queries");
    let (s, v) = api(
        base,
        "/loki/api/v1/query",
        &[("query", r#"{a="b"}"#), ("time", "soon")],
    );
    error_of(s, &v, 400, "time");

    // Series: the label sets of the selected streams.
    let (status, v) = api(
        base,
        "/loki/api/v1/series",
        &[("match[]", r#"{namespace="prod"}"#)],
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["data"],
        json!([
            {"container": "app", "namespace": "prod", "node": "n1", "pod": "web-1", "stream": "stdout"},
            {"container": "app", "namespace": "prod", "pod": "web-2", "stream": "stdout"}
        ])
    );
    let (_, v) = api(
        base,
        "/loki/api/v1/series",
        &[
            ("match[]", r#"{pod=~"web-2|api-2"}"#),
            ("match[]", r#"{node="n1"}"#),
        ],
    );
    assert_eq!(v["data"].as_array().unwrap().len(), 3, "{v}");
    let (_, v) = api(base, "/loki/api/v1/series", &[]);
    assert_eq!(v["data"].as_array().unwrap().len(), 3, "{v}");
    let form = reqwest::blocking::Client::new()
        .post(format!("{base}/loki/api/v1/series"))
        .form(&[("match[]", r#"{namespace="dev"}"#)])
        .send()
        .unwrap();
    let v: Value = form.json().unwrap();
    assert_eq!(v["data"][0]["pod"], "api-2", "{v}");
    let (s, v) = api(
        base,
        "/loki/api/v1/series",
        &[("match[]", r#"{namespace="prod"} |= "x""#)],
    );
    error_of(s, &v, 400, "line filters");
    let (s, v) = api(base, "/loki/api/v1/series", &[("match[]", "up")]);
    error_of(s, &v, 400, "match[]");

    // Index stats (Loki's shape, unwrapped): counted from the index,
    // checked against what a search returns for the same streams.
    let prod = messages(base, "namespace:prod");
    let range = [
        ("start", (t - 1).to_string()),
        ("end", (t + 10_000).to_string()),
    ];
    let stats = |q: &str, range: &[(&str, String)]| {
        let mut p: Vec<(&str, &str)> = range.iter().map(|(k, v)| (*k, v.as_str())).collect();
        p.push(("query", q));
        let (s, v) = api(base, "/loki/api/v1/index/stats", &p);
        assert_eq!(s, 200, "{q}: {v}");
        v
    };
    let v = stats(r#"{namespace="prod"}"#, &range);
    assert_eq!(v["streams"], 2, "{v}");
    assert_eq!(v["entries"], prod.len(), "{v}");
    assert_eq!(
        v["bytes"],
        prod.iter().map(String::len).sum::<usize>(),
        "{v}"
    );
    // web-1 and web-2: one chunk each whatever the segments.
    assert_eq!(v["chunks"], 2, "{v}");
    assert_eq!(
        v.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["bytes", "chunks", "entries", "streams"]
    );
    let v = stats(r#"{namespace=~".+"}"#, &range);
    assert_eq!(
        (v["streams"].as_u64(), v["entries"].as_u64()),
        (Some(3), Some(7)),
        "{v}"
    );
    assert_eq!(v["chunks"], 3, "{v}");
    // The range: Loki's end is inclusive (t+1000 … t+5000: three of prod's).
    let narrow = [
        ("start", (t + 1000).to_string()),
        ("end", (t + 5000).to_string()),
    ];
    let v = stats(r#"{namespace="prod"}"#, &narrow);
    assert_eq!(
        (v["streams"].as_u64(), v["entries"].as_u64()),
        (Some(2), Some(3)),
        "{v}"
    );
    let want: usize = [
        "level=info msg=\"request served\" path=/index",
        "{\"level\":\"warn\",\"msg\":\"slow request\"}",
        "WARN retrying connection",
    ]
    .iter()
    .map(|l| l.len())
    .sum();
    assert_eq!(v["bytes"], want, "{v}");
    let v = stats(r#"{namespace="nowhere"}"#, &range);
    assert_eq!(
        v,
        json!({"streams": 0, "chunks": 0, "entries": 0, "bytes": 0})
    );
    for (params, want) in [
        (vec![], "query"),
        (vec![("query", "up")], "query"),
        (
            vec![("query", r#"{namespace="prod"} |= "x""#)],
            "line filters",
        ),
        (
            vec![("query", r#"{namespace="prod"}"#), ("start", "soon")],
            "start",
        ),
        (
            vec![
                ("query", r#"{namespace="prod"}"#),
                ("start", "20"),
                ("end", "10"),
            ],
            "end",
        ),
    ] {
        let (s, v) = api(base, "/loki/api/v1/index/stats", &params);
        error_of(s, &v, 400, want);
    }

    // Label filters in query strings go through the stream table.
    assert_eq!(messages(base, "labels:\"pod=web-2\"").len(), 2);
    assert_eq!(messages(base, "NOT namespace:prod").len(), 2);
    let (s, v) = api(
        base,
        "/api/v1/logs/search",
        &[("query", "namespace:[a TO z]")],
    );
    error_of(s, &v, 400, "namespace");

    // Bad queries and parameters: 400 naming the problem.
    let (s, v) = api(base, "/api/v1/logs/search", &[("query", "(unclosed")]);
    error_of(s, &v, 400, "cannot parse the query");
    let (s, v) = api(base, "/api/v1/logs/search", &[("query", "colour:red")]);
    error_of(s, &v, 400, "colour");
    let (s, v) = api(base, "/api/v1/logs/search", &[("limit", "0")]);
    error_of(s, &v, 400, "limit");
    let (s, v) = api(base, "/api/v1/logs/search", &[("cursor", "zzz")]);
    error_of(s, &v, 400, "cursor");
    let (s, v) = api(base, "/api/v1/logs/search", &[("start", "tomorrow")]);
    error_of(s, &v, 400, "start");
    let (s, v) = api(
        base,
        "/api/v1/logs/histogram",
        &[("step", "1ms"), ("start", "0"), ("end", "100000")],
    );
    error_of(s, &v, 400, "buckets");
    let (s, v) = api(base, "/api/v1/logs/tail", &[("query", "AND AND")]);
    error_of(s, &v, 400, "cannot parse");
    let (s, v) = api(
        base,
        "/loki/api/v1/query_range",
        &[("query", r#"rate({a="b"}[5m])"#)],
    );
    error_of(s, &v, 400, "metric queries");
    let (s, v) = api(
        base,
        "/loki/api/v1/query_range",
        &[("query", r#"{a="b"} | json"#)],
    );
    error_of(s, &v, 400, "unsupported pipeline stage");
    let (s, v) = api(base, "/loki/api/v1/query_range", &[]);
    error_of(s, &v, 400, "query");

    // Bad bodies: 400 naming the problem, nothing stored.
    let good_then_bad = json!({"streams": [
        {"stream": {"namespace": "prod"}, "values": [[now_ns().to_string(), "should not be stored"]]},
        {"stream": {"namespace": "prod"}, "values": [["12x", "bad timestamp"]]}
    ]});
    let (s, text) = push_json(base, &good_then_bad, None);
    let v: Value = serde_json::from_str(&text).unwrap();
    error_of(s, &v, 400, "stream 1");
    assert!(
        text.contains("12x") && text.contains("nothing of this request was stored"),
        "{text}"
    );
    for (ctype, body, status, want) in [
        ("application/json", b"{\"streams\": [".to_vec(), 400, "JSON"),
        (
            "application/json",
            br#"{"streams":[{"stream":{"bad-name":"x"},"values":[]}]}"#.to_vec(),
            400,
            "bad-name",
        ),
        (
            "application/json",
            br#"{"streams":[{"stream":{},"values":[]}]}"#.to_vec(),
            400,
            "at least one label",
        ),
        (
            "application/json",
            br#"{"streams":[{"stream":{"a":"b"},"values":[["1","x","y","z"]]}]}"#.to_vec(),
            400,
            "invalid length",
        ),
        (
            "application/x-protobuf",
            b"garbage, not snappy".to_vec(),
            400,
            "decode",
        ),
        ("application/x-protobuf", Vec::new(), 400, "empty body"),
        ("text/plain", b"hello".to_vec(), 415, "Content-Type"),
    ] {
        let (s, text) = push(base, ctype, body, None);
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{text}"));
        error_of(s, &v, status, want);
    }
    let future = json!({"streams": [{"stream": {"a": "b"}, "values": [[(now_ns() + 3 * 86_400_000_000_000i64).to_string(), "from the future"]]}]});
    let (s, text) = push_json(base, &future, None);
    error_of(s, &serde_json::from_str(&text).unwrap(), 400, "future");
    let (s, text) = push_json(base, &body, Some("no-sequence"));
    error_of(
        s,
        &serde_json::from_str(&text).unwrap(),
        400,
        "X-Osprey-Batch",
    );
    assert_eq!(
        messages(base, "").len(),
        7,
        "nothing of a refused request was stored"
    );

    // Exactly once with X-Osprey-Batch; at least once without.
    let batch = json!({"streams": [{"stream": {"namespace": "batch"}, "values": [[now_ns().to_string(), "batched line one"], [(now_ns() + 1).to_string(), "batched line two"]]}]});
    for _ in 0..3 {
        let (s, text) = push_json(base, &batch, Some("node-a-5f2c/41"));
        assert_eq!(s, 204, "{text}");
    }
    assert_eq!(
        messages(base, "namespace:batch").len(),
        2,
        "a retried batch is stored once"
    );
    let (s, _) = push_json(base, &batch, Some("node-a-5f2c/40"));
    assert_eq!(s, 204);
    assert_eq!(
        messages(base, "namespace:batch").len(),
        2,
        "an older sequence stores nothing"
    );
    let (s, _) = push_json(base, &batch, None);
    assert_eq!(s, 204);
    assert_eq!(
        messages(base, "namespace:batch").len(),
        4,
        "without the header, stored again"
    );
    let m = server.metrics();
    assert_eq!(
        metric_value(
            &m,
            "osprey_logs_lines_dropped_total",
            &[("reason", "duplicate")]
        ),
        Some(6.0)
    );

    // The CLI.
    let out = osprey()
        .args([
            "logs",
            "search",
            "--server",
            base,
            "--query",
            "\"connection refused\"",
            "--since",
            "1h",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].contains("dev/api-2/app ERROR connection refused by upstream"),
        "{text}"
    );
    assert!(lines[1].contains("prod/web-1/app ERROR dial tcp"), "{text}");
    let out = osprey()
        .args(["logs", "search", "--server", base, "--limit", "3", "--json"])
        .output()
        .unwrap();
    let objs: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objs.len(), 3);
    assert!(objs.iter().all(|o| o["ts_ns"].is_string()));
    let out = osprey()
        .args(["logs", "search", "--server", base, "--query", "(broken"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot parse the query"));
}

#[test]
fn tail_streams_new_matching_lines_in_order() {
    let dir = artifact_dir("logs-tail");
    let mut server = ServerProcess::start(&dir.join("data"), Some(&logs_config(&dir)), &dir);
    let base = server.base.clone();
    // A tail through the API and one through the CLI.
    let resp = reqwest::blocking::Client::builder()
        .timeout(None)
        .build()
        .unwrap()
        .get(format!("{base}/api/v1/logs/tail"))
        .query(&[("query", "level:error")])
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(resp).lines() {
            let Ok(line) = line else { return };
            if let Some(d) = line.strip_prefix("data:") {
                let _ = tx.send(serde_json::from_str(d.trim()).unwrap());
            }
        }
    });
    let mut cli = std::process::Command::new(env!("CARGO_BIN_EXE_osprey"));
    cli.args([
        "logs",
        "tail",
        "--server",
        &base,
        "--query",
        "namespace:prod",
    ]);
    let mut cli_guard = ChildGuard::spawn(cli, "cli-tail", &dir);
    // The CLI is connected once its request is in; give it a line that
    // must show up, and wait for it.
    let t = now_ns();
    let mut seq = 0;
    wait_for(Duration::from_secs(20), "the CLI tail to print", || {
        seq += 1;
        let (s, _) = push_json(
            &base,
            &json!({"streams": [{"stream": {"namespace": "prod"}, "values": [[(t + seq).to_string(), format!("hello cli {seq}")]]}]}),
            None,
        );
        assert_eq!(s, 204);
        let text = std::fs::read_to_string(dir.join("cli-tail.log")).unwrap_or_default();
        text.contains("hello cli").then_some(())
    });
    for i in 0..5 {
        let body = json!({"streams": [{"stream": {"namespace": "dev", "pod": "p"}, "values": [
            [(t + 1000 + i * 10).to_string(), format!("INFO ok {i}")],
            [(t + 1000 + i * 10 + 1).to_string(), format!("ERROR failed {i}")],
        ]}]});
        let (s, _) = push_json(&base, &body, None);
        assert_eq!(s, 204);
    }
    let mut got = Vec::new();
    while got.len() < 5 {
        let v = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("a tailed line within 10 s");
        got.push(v["message"].as_str().unwrap().to_string());
        assert_eq!(v["level"], "error");
        assert_eq!(v["namespace"], "dev");
    }
    assert_eq!(
        got,
        (0..5)
            .map(|i| format!("ERROR failed {i}"))
            .collect::<Vec<_>>(),
        "only matching lines, in order"
    );
    let cli_text = std::fs::read_to_string(dir.join("cli-tail.log")).unwrap();
    assert!(
        !cli_text.contains("failed"),
        "the CLI tail filters by its query: {cli_text}"
    );
    let seen: BTreeSet<&str> = cli_text
        .lines()
        .filter(|l| l.contains("hello cli"))
        .collect();
    assert_eq!(
        seen.len(),
        cli_text.lines().filter(|l| l.contains("hello cli")).count()
    );
    // SIGTERM with tails open: the streams end and the server stops.
    let status = server.guard.terminate(Duration::from_secs(15));
    assert!(
        status.is_some_and(|s| s.success()),
        "the server stops on SIGTERM with tails open: {status:?}"
    );
    let status = cli_guard.child.wait().unwrap();
    assert!(
        status.success(),
        "the CLI tail ends when the stream does: {status:?}"
    );
}

#[test]
fn log_routes_need_the_right_role() {
    let dir = artifact_dir("logs-auth");
    let config = dir.join("osprey.toml");
    std::fs::write(
        &config,
        "[server.logs]\ncommit_interval = \"50ms\"\n\n\
         [[server.tokens]]\nname = \"agent\"\ntoken = \"write-token-0123456789\"\nrole = \"write\"\n\n\
         [[server.tokens]]\nname = \"viewer\"\ntoken = \"read-token-0123456789\"\nrole = \"read\"\n",
    )
    .unwrap();
    let server = ServerProcess::start(&dir.join("data"), Some(&config), &dir);
    let client = reqwest::blocking::Client::new();
    let body = json!({"streams": [{"stream": {"namespace": "auth"}, "values": [[now_ns().to_string(), "secret line"]]}]}).to_string();
    let push_as = |token: Option<&str>| {
        let mut req = client
            .post(format!("{}/loki/api/v1/push", server.base))
            .header("Content-Type", "application/json")
            .body(body.clone());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().unwrap().status().as_u16()
    };
    let search_as = |path: &str, token: Option<&str>| {
        let mut req = client.get(format!("{}{path}", server.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().unwrap().status().as_u16()
    };
    assert_eq!(push_as(None), 401);
    assert_eq!(push_as(Some("read-token-0123456789")), 403);
    assert_eq!(push_as(Some("write-token-0123456789")), 204);
    for path in [
        "/api/v1/logs/search",
        "/api/v1/logs/histogram",
        "/loki/api/v1/query_range?query=%7Bnamespace%3D%22auth%22%7D",
        "/loki/api/v1/labels",
    ] {
        assert_eq!(search_as(path, None), 401, "{path}");
        assert_eq!(
            search_as(path, Some("write-token-0123456789")),
            403,
            "{path}"
        );
        assert_eq!(
            search_as(path, Some("read-token-0123456789")),
            200,
            "{path}"
        );
    }
    let out = osprey()
        .args([
            "logs",
            "search",
            "--server",
            &server.base,
            "--token",
            "read-token-0123456789",
            "--query",
            "secret",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("secret line"));
    let out = osprey()
        .args([
            "logs",
            "search",
            "--server",
            &server.base,
            "--query",
            "secret",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
}
