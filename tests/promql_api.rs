//! The Prometheus-compatible query API in-process: envelopes, result types,
//! GET and form POST, parameters, error classes and HTTP statuses, the
//! metadata endpoints and the read tokens.

#[path = "common/promql_data.rs"]
mod data;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use osprey::server::config::{Role, TokenConfig};
use osprey::server::{ServerConfig, ServerState, router};
use serde_json::Value as Json;
use tower::ServiceExt;

const BASE_MS: i64 = 1_699_999_200_000;
const READ_TOKEN: &str = "read-token-0123456789";
const WRITE_TOKEN: &str = "write-token-0123456789";

fn state(tokens: bool) -> (tempfile::TempDir, Arc<ServerState>) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig {
        data_dir: dir.path().to_path_buf(),
        ..ServerConfig::default()
    };
    if tokens {
        config.tokens = vec![
            TokenConfig {
                name: "reader".into(),
                token: Some(READ_TOKEN.into()),
                token_file: None,
                role: Role::Read,
                namespaces: None,
            },
            TokenConfig {
                name: "agent".into(),
                token: Some(WRITE_TOKEN.into()),
                token_file: None,
                role: Role::Write,
                namespaces: None,
            },
        ];
    }
    let state = ServerState::open(config).unwrap();
    state.storage.append(&data::batch(BASE_MS)).unwrap();
    (dir, state)
}

async fn call(state: &Arc<ServerState>, req: Request<Body>) -> (StatusCode, Json) {
    let resp = router(state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
        .await
        .unwrap();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
    (status, json)
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn post_form(uri: &str, form: &str) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_string()))
        .unwrap()
}

fn secs(rel: i64) -> String {
    (BASE_MS / 1000 + rel).to_string()
}

#[tokio::test]
async fn instant_query_envelope_get_and_post() {
    let (_d, st) = state(false);
    let q = format!(
        "query={}&time={}",
        enc("sum by (job) (req_total)"),
        secs(600)
    );
    let (status, by_get) = call(&st, get(&format!("/api/v1/query?{q}"))).await;
    assert_eq!(status, StatusCode::OK, "{by_get}");
    assert_eq!(by_get["status"], "success");
    assert_eq!(by_get["data"]["resultType"], "vector");
    let result = by_get["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 2);
    let api = result.iter().find(|s| s["metric"]["job"] == "api").unwrap();
    assert_eq!(api["value"][0].as_i64(), Some(BASE_MS / 1000 + 600));
    assert_eq!(api["value"][1], "750");
    let (status, by_post) = call(&st, post_form("/api/v1/query", &q)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_post, by_get);

    // RFC 3339 time, fractional seconds, scalar and string results.
    let (_, v) = call(
        &st,
        get(&format!(
            "/api/v1/query?query=time()&time={}",
            enc("2023-11-14T22:10:00.5Z")
        )),
    )
    .await;
    assert_eq!(v["data"]["resultType"], "scalar");
    assert_eq!(v["data"]["result"][0].as_f64(), Some(1_699_999_800.5));
    assert_eq!(v["data"]["result"][1], "1699999800.5");
    let (_, v) = call(
        &st,
        get(&format!("/api/v1/query?query={}&time=1", enc("\"hi\""))),
    )
    .await;
    assert_eq!(v["data"]["resultType"], "string");
    assert_eq!(v["data"]["result"][1], "hi");
    // A range selector in an instant query is a matrix of raw samples.
    let (_, v) = call(
        &st,
        get(&format!(
            "/api/v1/query?query={}&time={}",
            enc("up{instance=\"a\"}[20s]"),
            secs(600)
        )),
    )
    .await;
    assert_eq!(v["data"]["resultType"], "matrix");
    assert_eq!(
        v["data"]["result"][0]["values"].as_array().unwrap().len(),
        3
    );
}

#[tokio::test]
async fn range_query_envelope() {
    let (_d, st) = state(false);
    let q = format!(
        "query={}&start={}&end={}&step=1m",
        enc("sum(up)"),
        secs(0),
        secs(180)
    );
    let (status, v) = call(&st, post_form("/api/v1/query_range", &q)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["resultType"], "matrix");
    let values = v["data"]["result"][0]["values"].as_array().unwrap();
    let got: Vec<(i64, &str)> = values
        .iter()
        .map(|p| {
            (
                p[0].as_i64().unwrap() - BASE_MS / 1000,
                p[1].as_str().unwrap(),
            )
        })
        .collect();
    // up{c} is marked stale at 110 s.
    assert_eq!(got, vec![(0, "2"), (60, "2"), (120, "1"), (180, "1")]);
}

#[tokio::test]
async fn errors_have_prometheus_types_and_statuses() {
    let (_d, st) = state(false);
    let cases: Vec<(String, StatusCode, &str, &str)> = vec![
        (
            "/api/v1/query".into(),
            StatusCode::BAD_REQUEST,
            "bad_data",
            "query",
        ),
        (
            "/api/v1/query?query=up&time=soon".to_string(),
            StatusCode::BAD_REQUEST,
            "bad_data",
            "time",
        ),
        (
            format!("/api/v1/query?query={}", enc("sum(")),
            StatusCode::BAD_REQUEST,
            "bad_data",
            "parse error",
        ),
        (
            format!(
                "/api/v1/query?query={}",
                enc("holt_winters(up[5m], 0.1, 0.1)")
            ),
            StatusCode::BAD_REQUEST,
            "bad_data",
            "holt_winters",
        ),
        (
            format!(
                "/api/v1/query?query={}&time={}",
                enc("tie + on() node_info"),
                secs(60)
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "execution",
            "many-to-many",
        ),
        (
            format!("/api/v1/query?query=up&time={}&timeout=0.000001", secs(60)),
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "timed out",
        ),
        (
            "/api/v1/query?query=up&timeout=never".to_string(),
            StatusCode::BAD_REQUEST,
            "bad_data",
            "timeout",
        ),
        (
            "/api/v1/query_range?query=up&start=10&end=5&step=1".into(),
            StatusCode::BAD_REQUEST,
            "bad_data",
            "before start",
        ),
        (
            "/api/v1/query_range?query=up&start=0&end=5&step=0".into(),
            StatusCode::BAD_REQUEST,
            "bad_data",
            "step",
        ),
        (
            "/api/v1/query_range?query=up&start=0&end=5".into(),
            StatusCode::BAD_REQUEST,
            "bad_data",
            "step",
        ),
        (
            "/api/v1/query_range?query=up&start=0&end=100000&step=1".into(),
            StatusCode::BAD_REQUEST,
            "bad_data",
            "11,000",
        ),
        (
            format!(
                "/api/v1/query_range?query={}&start=0&end=5&step=1",
                enc("up[1m]")
            ),
            StatusCode::BAD_REQUEST,
            "bad_data",
            "range vector",
        ),
        (
            "/api/v1/series".into(),
            StatusCode::BAD_REQUEST,
            "bad_data",
            "match[]",
        ),
        (
            format!("/api/v1/series?match[]={}", enc("sum(up)")),
            StatusCode::BAD_REQUEST,
            "bad_data",
            "match[]",
        ),
        (
            "/api/v1/label/1bad/values".into(),
            StatusCode::BAD_REQUEST,
            "bad_data",
            "label name",
        ),
    ];
    for (uri, status, kind, needle) in cases {
        let (got, v) = call(&st, get(&uri)).await;
        assert_eq!(got, status, "{uri}: {v}");
        assert_eq!(v["status"], "error", "{uri}");
        assert_eq!(v["errorType"], kind, "{uri}: {v}");
        let msg = v["error"].as_str().unwrap();
        assert!(msg.contains(needle), "{uri}: {msg:?} lacks {needle:?}");
    }
}

#[tokio::test]
async fn series_labels_and_label_values() {
    let (_d, st) = state(false);
    let (status, v) = call(
        &st,
        get(&format!(
            "/api/v1/series?match[]={}&match[]={}",
            enc("req_total{job=\"api\"}"),
            enc("node_info{instance=\"b\"}")
        )),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let got: Vec<String> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{}/{}",
                s["__name__"].as_str().unwrap(),
                s["instance"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(got, vec!["node_info/b", "req_total/a", "req_total/b"]);

    let (_, v) = call(&st, get("/api/v1/labels")).await;
    let names: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["__name__", "instance", "job", "le", "node", "s"]
    );
    let (_, v) = call(
        &st,
        post_form("/api/v1/labels", &format!("match[]={}", enc("tie"))),
    )
    .await;
    assert_eq!(v["data"], serde_json::json!(["__name__", "s"]));

    let (_, v) = call(&st, get("/api/v1/label/job/values")).await;
    assert_eq!(v["data"], serde_json::json!(["api", "web"]));
    let (_, v) = call(
        &st,
        get(&format!(
            "/api/v1/label/instance/values?match[]={}",
            enc("up")
        )),
    )
    .await;
    assert_eq!(v["data"], serde_json::json!(["a", "c"]));
    // Series with samples outside [start, end] are not listed.
    let (_, v) = call(
        &st,
        get(&format!(
            "/api/v1/series?match[]=temp&start={}&end={}",
            secs(300),
            secs(400)
        )),
    )
    .await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1, "{v}");
}

#[tokio::test]
async fn queries_need_a_read_token_when_tokens_are_configured() {
    let (_d, st) = state(true);
    let uri = format!("/api/v1/query?query=up&time={}", secs(60));
    let (status, _) = call(&st, get(&uri)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let with = |token: &str, req: Request<Body>| {
        let (mut parts, body) = req.into_parts();
        parts.headers.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        Request::from_parts(parts, body)
    };
    let (status, v) = call(&st, with(READ_TOKEN, get(&uri))).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 2);
    // POST queries only read: the read token is enough.
    let (status, _) = call(
        &st,
        with(
            READ_TOKEN,
            post_form("/api/v1/query_range", "query=up&start=0&end=60&step=15"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&st, with(WRITE_TOKEN, get(&uri))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(&st, with(WRITE_TOKEN, get("/api/v1/label/job/values"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn configured_query_limits_apply_and_a_request_can_only_shorten_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let config: ServerConfig = toml::from_str(&format!(
        "data_dir = {:?}\n[query]\nmax_series = 1\ntimeout = \"3s\"\nlookback = \"1m\"\n",
        dir.path()
    ))
    .unwrap();
    assert_eq!(config.query.max_series, 1);
    assert_eq!(config.query.timeout, std::time::Duration::from_secs(3));
    let st = ServerState::open(config).unwrap();
    st.storage.append(&data::batch(BASE_MS)).unwrap();

    // One series is within the limit, a selector of several is not.
    let one = format!(
        "/api/v1/query?query={}&time={}",
        enc("up{instance=\"a\"}"),
        secs(60)
    );
    let (status, body) = call(&st, get(&one)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let many = format!("/api/v1/query?query={}&time={}", enc("tie"), secs(60));
    let (status, body) = call(&st, get(&many)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errorType"], "execution");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("more than 1 series"),
        "{body}"
    );
}

#[test]
fn invalid_query_limits_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig {
        data_dir: dir.path().to_path_buf(),
        ..ServerConfig::default()
    };
    config.query.max_series = 0;
    let err = ServerState::open(config).err().expect("refused");
    assert!(err.to_string().contains("query.max_series"), "{err}");
}
