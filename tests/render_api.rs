//! `GET /api/v1/render` and `GET /api/v1/dashboard/query_range` against a
//! real server holding real samples.

mod common;

use common::*;

/// Stores one rising series (0 → 100 over an hour, a sample every 10 s)
/// and one flat series; returns the first sample's time, ms.
fn load(server: &ServerProcess) -> i64 {
    let t0 = (now_ms() - 2 * 3_600_000) / 10_000 * 10_000;
    let rising: Vec<(i64, f64)> = (0..=360)
        .map(|i| (t0 + i * 10_000, i as f64 * 100.0 / 360.0))
        .collect();
    let mut flat: Vec<(i64, f64)> = (0..=360).map(|i| (t0 + i * 10_000, 25.0)).collect();
    // One spike that must survive bucketing.
    flat[200].1 = 90.0;
    let body = remote_write_body(&[
        ("load", &[("pod", "rising")], &rising),
        ("load", &[("pod", "flat")], &flat),
    ]);
    assert_eq!(post_write(&server.base, body, None).0, 204);
    t0
}

fn fetch(url: &str) -> (u16, String, Vec<u8>) {
    status_type_body(reqwest::blocking::get(url).expect("server answers"))
}

/// A response's status, Content-Type and body.
fn status_type_body(resp: reqwest::blocking::Response) -> (u16, String, Vec<u8>) {
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ct, resp.bytes().unwrap().to_vec())
}

#[test]
fn render_draws_stored_series_as_png_and_svg() {
    let dir = artifact_dir("render-api");
    let server = ServerProcess::start(&dir.join("data"), None, &dir);
    let t0 = load(&server);
    let (start, end) = (t0 as f64 / 1000.0, (t0 + 3_600_000) as f64 / 1000.0);
    let base = format!(
        "{}/api/v1/render?query=load&start={start}&end={end}&width=600&height=300&title=Load&unit=percent&legend=%7B%7Bpod%7D%7D&threshold=80",
        server.base
    );

    let (status, ct, png_bytes) = fetch(&format!("{base}&format=png"));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&png_bytes));
    assert_eq!(ct, "image/png");
    std::fs::write(dir.join("render.png"), &png_bytes).unwrap();
    let decoder = png::Decoder::new(png_bytes.as_slice());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (600, 300));
    // Both series' colours are drawn (the flat one with its spike).
    let count = |c: (u8, u8, u8)| {
        buf[..info.buffer_size()]
            .chunks_exact(3)
            .filter(|p| (p[0], p[1], p[2]) == c)
            .count()
    };
    let palette = osprey_dashboard::render::PALETTE;
    assert!(count(palette[0]) > 200, "first series drawn");
    assert!(count(palette[1]) > 200, "second series drawn");
    assert!(
        count(osprey_dashboard::render::THRESHOLD_COLOR) > 100,
        "threshold drawn"
    );

    let (status, ct, svg) = fetch(&format!("{base}&format=svg"));
    assert_eq!(status, 200);
    assert_eq!(ct, "image/svg+xml");
    let text = String::from_utf8(svg).unwrap();
    std::fs::write(dir.join("render.svg"), &text).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("well-formed SVG");
    assert_eq!(doc.root_element().attribute("width"), Some("600"));
    let texts: Vec<&str> = doc
        .descendants()
        .filter_map(|n| (n.tag_name().name() == "text").then(|| n.text()).flatten())
        .map(str::trim)
        .collect();
    assert!(texts.contains(&"Load"), "{texts:?}");
    assert!(
        texts.contains(&"rising") && texts.contains(&"flat"),
        "legend {texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.ends_with('%')),
        "unit on the y axis {texts:?}"
    );
    // The flat series' polyline reaches the spike: its highest vertex is
    // well above its usual level (smaller y in SVG).
    let flat_color = format!(
        "#{:02X}{:02X}{:02X}",
        palette[1].0, palette[1].1, palette[1].2
    );
    let ys: Vec<f64> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "polyline")
        .filter(|n| {
            n.attribute("stroke")
                .is_some_and(|s| s.eq_ignore_ascii_case(&flat_color))
        })
        .flat_map(|n| {
            n.attribute("points")
                .unwrap()
                .split_whitespace()
                .map(|p| p.split(',').nth(1).unwrap().parse::<f64>().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    let top = ys.iter().cloned().fold(f64::INFINITY, f64::min);
    let usual = ys[ys.len() / 4];
    assert!(
        usual - top > 80.0,
        "spike drawn: usual y {usual}, top y {top}"
    );
}

#[test]
fn render_and_chart_query_refuse_bad_input_by_name() {
    let dir = artifact_dir("render-api-errors");
    let server = ServerProcess::start(&dir.join("data"), None, &dir);
    for (path, name) in [
        ("/api/v1/render?query=up&format=gif", "format"),
        ("/api/v1/render?query=up&width=5", "width"),
        ("/api/v1/render?query=up&height=x", "height"),
        ("/api/v1/render?query=up&threshold=abc", "threshold"),
        ("/api/v1/render", "query"),
        ("/api/v1/render?query=up&start=yesterday", "start"),
        ("/api/v1/dashboard/query_range?query=up&width=0", "width"),
        (
            "/api/v1/dashboard/query_range?query=up&start=0&end=86400&step=1s",
            "step",
        ),
    ] {
        let (status, _, body) = fetch(&format!("{}{path}", server.base));
        assert_eq!(status, 400, "{path}");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["errorType"], "bad_data");
        assert!(
            v["error"]
                .as_str()
                .unwrap()
                .contains(&format!("\"{name}\"")),
            "{path}: {v}"
        );
    }
    let (status, _, body) = fetch(&format!("{}/api/v1/render?query=sum(", server.base));
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
}

#[test]
fn chart_query_returns_one_bucket_per_pixel_with_min_and_max() {
    let dir = artifact_dir("chart-query");
    let server = ServerProcess::start(&dir.join("data"), None, &dir);
    let t0 = load(&server);
    let url = format!(
        "{}/api/v1/dashboard/query_range?query=load&start={}&end={}&width=60&legend=%7B%7Bpod%7D%7D",
        server.base,
        t0 / 1000,
        (t0 + 3_600_000) / 1000
    );
    let v = get_json(&url);
    assert_eq!(v["status"], "success", "{v}");
    let d = &v["data"];
    assert_eq!(d["step_ms"], 10_000);
    assert_eq!(d["bucket_ms"], 60_000);
    let t = d["t"].as_array().unwrap();
    assert_eq!(t.len(), 61, "one bucket per pixel (plus the end)");
    assert_eq!(t[0].as_i64().unwrap(), t0);
    let series = d["series"].as_array().unwrap();
    assert_eq!(series.len(), 2);
    let flat = series.iter().find(|s| s["name"] == "flat").unwrap();
    let maxes: Vec<f64> = flat["max"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(maxes.len(), 61);
    // The spike at sample 200 (2000 s) lands in bucket 33.
    assert_eq!(maxes[33], 90.0);
    assert_eq!(flat["min"][33], 25.0);
    assert_eq!(maxes.iter().filter(|&&m| m == 90.0).count(), 1);
    assert_eq!(flat["stats"]["max"], 90.0);
    assert_eq!(flat["stats"]["last"], 25.0);
    let rising = series.iter().find(|s| s["name"] == "rising").unwrap();
    assert_eq!(rising["metric"]["pod"], "rising");
    let last = rising["stats"]["last"].as_f64().unwrap();
    assert!((last - 100.0).abs() < 1e-9, "{last}");
}

#[test]
fn chart_query_binary_format_holds_the_json_answer_as_f32() {
    let dir = artifact_dir("chart-query-binary");
    let server = ServerProcess::start(&dir.join("data"), None, &dir);
    let t0 = load(&server);
    let url = format!(
        "{}/api/v1/dashboard/query_range?query=load&start={}&end={}&width=60&legend=%7B%7Bpod%7D%7D",
        server.base,
        t0 / 1000,
        (t0 + 3_600_000) / 1000
    );
    let json = get_json(&url);
    let d = &json["data"];
    let (status, ct, bytes) = fetch(&format!("{url}&format=binary"));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(ct, "application/octet-stream");
    assert_eq!(&bytes[..4], b"OSC1");
    let h = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
    let head: serde_json::Value = serde_json::from_slice(&bytes[8..8 + h]).unwrap();
    for k in ["start", "end", "step_ms", "bucket_ms"] {
        assert_eq!(head[k], d[k], "{k}");
    }
    let n = head["buckets"].as_u64().unwrap() as usize;
    assert_eq!(n, d["t"].as_array().unwrap().len());
    let body = (8 + h).next_multiple_of(4);
    let series = head["series"].as_array().unwrap();
    assert_eq!(series.len(), 2);
    assert_eq!(bytes.len(), body + series.len() * n * 8);
    let floats: Vec<f32> = bytes[body..]
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    for (k, s) in series.iter().enumerate() {
        let js = &d["series"][k];
        assert_eq!(s["name"], js["name"]);
        assert_eq!(s["metric"], js["metric"]);
        assert_eq!(s["stats"], js["stats"]);
        for (col, name) in ["min", "max"].iter().enumerate() {
            let got = &floats[(2 * k + col) * n..(2 * k + col + 1) * n];
            for (i, v) in got.iter().enumerate() {
                match js[name][i].as_f64() {
                    Some(want) => assert!(
                        ((*v as f64) - want).abs() <= want.abs() * 1e-6,
                        "{name}[{i}]: {v} vs {want}"
                    ),
                    None => assert!(v.is_nan(), "{name}[{i}] is a gap: {v}"),
                }
            }
        }
    }
    let flat = series.iter().position(|s| s["name"] == "flat").unwrap();
    assert_eq!(floats[(2 * flat + 1) * n + 33], 90.0, "the spike's bucket");
    let (status, _, body) = fetch(&format!("{url}&format=csv"));
    assert_eq!(status, 400);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(v["error"].as_str().unwrap().contains("\"format\""), "{v}");
}

/// Splits a batch answer (`OSB1`, then index, status, length, body per
/// query) into `(index, status, body)` frames.
fn batch_frames(bytes: &[u8]) -> Vec<(u32, u32, Vec<u8>)> {
    assert_eq!(&bytes[..4], b"OSB1", "{}", String::from_utf8_lossy(bytes));
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let mut out = Vec::new();
    let mut at = 4;
    while at < bytes.len() {
        let len = u32_at(at + 8) as usize;
        out.push((
            u32_at(at),
            u32_at(at + 4),
            bytes[at + 12..at + 12 + len].to_vec(),
        ));
        at += 12 + len;
    }
    assert_eq!(at, bytes.len(), "no partial frame");
    out
}

fn post_batch(base: &str, body: &str) -> (u16, String, Vec<u8>) {
    let resp = reqwest::blocking::Client::new()
        .post(format!("{base}/api/v1/dashboard/query_batch"))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .expect("server answers");
    status_type_body(resp)
}

#[test]
fn chart_batch_answers_each_query_as_the_single_query_does() {
    let dir = artifact_dir("chart-batch");
    let server = ServerProcess::start(&dir.join("data"), None, &dir);
    let t0 = load(&server);
    let (start, end) = (t0 / 1000, (t0 + 3_600_000) / 1000);
    let queries = [
        ("load", "60", "{{pod}}"),
        ("sum(", "60", ""),
        ("max(load)", "17", ""),
        ("load{pod=\"flat\"}", "300", "{{pod}}"),
    ];
    let body = serde_json::json!({"queries": queries.iter().map(|(q, w, l)| serde_json::json!({
        "query": q, "start": start, "end": end.to_string(), "width": w.parse::<u32>().unwrap(), "legend": l,
    })).collect::<Vec<_>>()});
    let (status, ct, bytes) = post_batch(&server.base, &body.to_string());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(ct, "application/x-osprey-chart-batch");
    let frames = batch_frames(&bytes);
    let mut seen: Vec<u32> = frames.iter().map(|f| f.0).collect();
    seen.sort();
    assert_eq!(seen, [0, 1, 2, 3], "one frame per query");
    for (i, status, body) in &frames {
        let (q, w, l) = queries[*i as usize];
        let single = format!(
            "{}/api/v1/dashboard/query_range?query={}&start={start}&end={end}&width={w}&legend={}&format=binary",
            server.base,
            form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>(),
            form_urlencoded::byte_serialize(l.as_bytes()).collect::<String>(),
        );
        let (s, _, want) = fetch(&single);
        assert_eq!(*status as u16, s, "query {i} ({q})");
        if s == 200 {
            assert_eq!(body, &want, "query {i} ({q}): the single query's bytes");
        } else {
            // The error the single query gives, as JSON.
            let got: serde_json::Value = serde_json::from_slice(body).unwrap();
            let want: serde_json::Value = serde_json::from_slice(&want).unwrap();
            assert_eq!(got, want, "query {i}");
            assert_eq!(got["errorType"], "bad_data");
        }
    }
    assert_eq!(frames.iter().filter(|f| f.1 == 200).count(), 3);
}

#[test]
fn chart_batch_refuses_bad_input_by_name_and_evaluates_nothing() {
    let dir = artifact_dir("chart-batch-bad");
    let server = ServerProcess::start(&dir.join("data"), None, &dir);
    load(&server);
    let many = format!(
        r#"{{"queries": [{}]}}"#,
        vec![r#"{"query": "load"}"#; 101].join(",")
    );
    for (body, want) in [
        ("not json", "not JSON"),
        (r#"{"queries": []}"#, "empty"),
        (r#"{"queries": "load"}"#, "array"),
        (r#"{"query": "load"}"#, "\"query\""),
        (
            r#"{"queries": [{"query": "load"}, {"query": "load", "width": 0}]}"#,
            "queries[1]: invalid parameter \"width\"",
        ),
        (
            r#"{"queries": [{"query": "load", "start": "yesterday"}]}"#,
            "queries[0]: invalid parameter \"start\"",
        ),
        (
            r#"{"queries": [{"query": "load", "start": 100, "end": 10}]}"#,
            "\"end\"",
        ),
        (
            r#"{"queries": [{"query": "load", "step": "1ms", "start": 0, "end": 86400}]}"#,
            "\"step\"",
        ),
        (
            r#"{"queries": [{"query": ""}]}"#,
            "queries[0]: invalid parameter \"query\"",
        ),
        (
            r#"{"queries": [{"query": "load", "format": "json"}]}"#,
            "\"format\"",
        ),
        (many.as_str(), "at most 100"),
    ] {
        let (status, ct, bytes) = post_batch(&server.base, body);
        assert_eq!(status, 400, "{body}: {}", String::from_utf8_lossy(&bytes));
        assert!(ct.starts_with("application/json"), "{ct}");
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["status"], "error");
        assert_eq!(v["errorType"], "bad_data");
        assert!(v["error"].as_str().unwrap().contains(want), "{body}: {v}");
    }
    // Reading only: GET is not the method.
    let (status, _, bytes) = fetch(&format!("{}/api/v1/dashboard/query_batch", server.base));
    assert_eq!(status, 405, "{}", String::from_utf8_lossy(&bytes));
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["status"], "error");
}
