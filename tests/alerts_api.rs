//! The alerting API in-process: CRUD of rules, channels and silences,
//! validation errors as JSON naming the problem, read-only config items,
//! roles (read may list, only admin may change), and the Prometheus
//! views. Rules are evaluated on real data by the running service.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use osprey::server::config::{Role, TokenConfig};
use osprey::server::{ServerConfig, ServerState, router};
use osprey::storage::{Labels, Sample, SeriesSamples};
use serde_json::{Value, json};
use tower::ServiceExt;

const READ: &str = "read-token-0123456789";
const ADMIN: &str = "admin-token-0123456789";

fn state(tokens: bool) -> (tempfile::TempDir, Arc<ServerState>) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig {
        data_dir: dir.path().to_path_buf(),
        ..ServerConfig::default()
    };
    config.alerting = serde_json::from_value(json!({
        "evaluation_interval": "200ms",
        "channels": [{"id": "from-config", "type": "webhook", "url": "http://127.0.0.1:9/x"}]
    }))
    .unwrap();
    if tokens {
        for (name, t, role) in [("reader", READ, Role::Read), ("admin", ADMIN, Role::Admin)] {
            config.tokens.push(TokenConfig {
                name: name.into(),
                token: Some(t.into()),
                token_file: None,
                role,
                namespaces: None,
            });
        }
    }
    let state = ServerState::open(config).unwrap();
    (dir, state)
}

async fn call(
    st: &Arc<ServerState>,
    method: Method,
    uri: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let resp = router(st.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
        .await
        .unwrap();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
    (status, v)
}

fn threshold_rule() -> Value {
    json!({
        "name": "Hot Pod",
        "condition": {"kind": "threshold", "query": "temp", "op": "above", "threshold": 50,
                      "scope": ["room=\"a\""]},
        "annotations": {"summary": "{{ $labels.room }} is {{ $value }}"}
    })
}

#[tokio::test]
async fn rules_crud_and_validation() {
    let (_d, st) = state(false);
    let (s, v) = call(
        &st,
        Method::POST,
        "/api/v1/alerting/rules",
        Some(threshold_rule()),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["data"]["id"], "hot-pod", "id from the name");
    let (s, _) = call(
        &st,
        Method::POST,
        "/api/v1/alerting/rules",
        Some(threshold_rule()),
        None,
    )
    .await;
    assert_eq!(
        s,
        StatusCode::CREATED,
        "a second rule with the same name gets another id"
    );
    let (_, v) = call(&st, Method::GET, "/api/v1/alerting/rules", None, None).await;
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["hot-pod", "hot-pod-2"]);

    for (body, word) in [
        (json!({"name": "x"}), "condition"),
        (
            json!({"name": "x", "condition": {"kind": "threshold", "query": "temp", "op": "sideways", "threshold": 1}}),
            "sideways",
        ),
        (
            json!({"name": "x", "condition": {"kind": "promql", "expr": "rate(x[5m]"}}),
            "query",
        ),
        (
            json!({"name": "x", "channels": ["nope"], "condition": {"kind": "promql", "expr": "up"}}),
            "nope",
        ),
        (
            json!({"name": "x", "for": "soon", "condition": {"kind": "promql", "expr": "up"}}),
            "for",
        ),
        (
            json!({"name": "x", "condition": {"kind": "threshold", "query": "t", "op": "above", "threshold": 1, "scope": ["bad matcher"]}}),
            "matcher",
        ),
    ] {
        let (s, v) = call(
            &st,
            Method::POST,
            "/api/v1/alerting/rules",
            Some(body.clone()),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body} → {v}");
        assert_eq!(v["status"], "error");
        assert_eq!(v["errorType"], "bad_data");
        assert!(v["error"].as_str().unwrap().contains(word), "{body} → {v}");
    }
    let (s, v) = call(&st, Method::POST, "/api/v1/alerting/rules", None, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");

    let mut changed = threshold_rule();
    changed["condition"]["threshold"] = json!(70);
    let (s, v) = call(
        &st,
        Method::PUT,
        "/api/v1/alerting/rules/hot-pod",
        Some(changed),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = call(
        &st,
        Method::GET,
        "/api/v1/alerting/rules/hot-pod",
        None,
        None,
    )
    .await;
    assert_eq!(v["data"]["condition"]["threshold"], 70.0);
    let (s, _) = call(
        &st,
        Method::PUT,
        "/api/v1/alerting/rules/missing",
        Some(threshold_rule()),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(
        &st,
        Method::DELETE,
        "/api/v1/alerting/rules/hot-pod-2",
        None,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = call(
        &st,
        Method::GET,
        "/api/v1/alerting/rules/hot-pod-2",
        None,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["errorType"], "not_found");
}

#[tokio::test]
async fn rules_fire_on_stored_data_and_show_in_the_prometheus_views() {
    let (_d, st) = state(false);
    let now = chrono::Utc::now().timestamp_millis();
    let batch: Vec<SeriesSamples> = [("a", 60.0), ("b", 90.0)]
        .iter()
        .map(|(room, v)| SeriesSamples {
            labels: Labels::from_pairs([("__name__", "temp"), ("room", room)]),
            samples: vec![Sample {
                t: now - 1000,
                v: *v,
            }],
        })
        .collect();
    st.storage.append(&batch).unwrap();
    let run = tokio::spawn(
        st.alerting
            .clone()
            .unwrap()
            .run(std::future::pending::<()>()),
    );
    let (s, v) = call(
        &st,
        Method::POST,
        "/api/v1/alerting/rules",
        Some(threshold_rule()),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let alerts = loop {
        let (_, v) = call(&st, Method::GET, "/api/v1/alerts", None, None).await;
        let a = v["data"]["alerts"].as_array().cloned().unwrap_or_default();
        if !a.is_empty() {
            break a;
        }
        assert!(tokio::time::Instant::now() < deadline, "no alert fired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(alerts.len(), 1, "room b is out of scope: {alerts:?}");
    assert_eq!(alerts[0]["labels"]["room"], "a");
    assert_eq!(alerts[0]["labels"]["alertname"], "Hot Pod");
    assert_eq!(alerts[0]["state"], "firing");
    assert_eq!(alerts[0]["value"], "60");
    assert_eq!(alerts[0]["annotations"]["summary"], "a is 60");
    let (_, v) = call(&st, Method::GET, "/api/v1/rules", None, None).await;
    let rule = &v["data"]["groups"][0]["rules"][0];
    assert_eq!(rule["type"], "alerting");
    assert_eq!(rule["health"], "ok");
    assert_eq!(rule["state"], "firing");
    assert_eq!(rule["alerts"].as_array().unwrap().len(), 1);
    let (_, v) = call(
        &st,
        Method::GET,
        "/api/v1/alerting/history?rule=hot-pod",
        None,
        None,
    )
    .await;
    let h = v["data"].as_array().unwrap();
    assert!(
        h.iter()
            .any(|e| e["kind"] == "transition" && e["to"] == "firing"),
        "{v}"
    );
    let (s, v) = call(
        &st,
        Method::GET,
        "/api/v1/alerting/history?since=yesterday",
        None,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("since"));
    let (s, _) = call(&st, Method::GET, "/api/v1/rules?type=bogus", None, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    run.abort();
}

#[tokio::test]
async fn channels_and_silences_crud() {
    let (_d, st) = state(false);
    let hook = json!({"name": "Ops hook", "type": "webhook", "url": "http://127.0.0.1:9/hook", "hmac_secret": "shh"});
    let (s, v) = call(
        &st,
        Method::POST,
        "/api/v1/alerting/channels",
        Some(hook),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["data"]["id"], "ops-hook");
    assert_eq!(
        v["data"]["hmac_secret"], "<secret>",
        "secrets are not answered"
    );
    let (_, v) = call(&st, Method::GET, "/api/v1/alerting/channels", None, None).await;
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    for (body, word) in [
        (json!({"type": "webhook", "url": "not a url"}), "url"),
        (
            json!({"type": "email", "to": [], "from": "a@b.c", "smarthost": "h:25"}),
            "to",
        ),
        (
            json!({"type": "email", "to": ["x"], "from": "a@b.c", "smarthost": "h:25"}),
            "address",
        ),
        (
            json!({"type": "email", "to": ["x@y.z"], "from": "a@b.c", "smarthost": "h"}),
            "smarthost",
        ),
        (json!({"type": "pager"}), "pager"),
    ] {
        let (s, v) = call(
            &st,
            Method::POST,
            "/api/v1/alerting/channels",
            Some(body.clone()),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body} → {v}");
        assert!(v["error"].as_str().unwrap().contains(word), "{body} → {v}");
    }
    let (s, v) = call(
        &st,
        Method::DELETE,
        "/api/v1/alerting/channels/from-config",
        None,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("config"), "{v}");
    // A rule naming the channel keeps it from being deleted.
    let mut r = threshold_rule();
    r["channels"] = json!(["ops-hook"]);
    let (s, _) = call(&st, Method::POST, "/api/v1/alerting/rules", Some(r), None).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, v) = call(
        &st,
        Method::DELETE,
        "/api/v1/alerting/channels/ops-hook",
        None,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    // A test notification to a port nothing listens on reports the failure.
    let (s, v) = call(
        &st,
        Method::POST,
        "/api/v1/alerting/channels/ops-hook/test",
        None,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["delivered"], false);
    assert!(
        v["data"]["error"].as_str().unwrap().contains("127.0.0.1:9"),
        "{v}"
    );

    let now = chrono::Utc::now();
    let silence = json!({"matchers": ["alertname=\"Hot Pod\""], "ends_at": (now + chrono::Duration::hours(1)).to_rfc3339(), "created_by": "me", "comment": "work"});
    let (s, v) = call(
        &st,
        Method::POST,
        "/api/v1/alerting/silences",
        Some(silence),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["data"]["id"].as_str().unwrap().to_string();
    let (_, v) = call(
        &st,
        Method::GET,
        &format!("/api/v1/alerting/silences/{id}"),
        None,
        None,
    )
    .await;
    assert_eq!(v["data"]["state"], "active");
    let (s, _) = call(
        &st,
        Method::DELETE,
        &format!("/api/v1/alerting/silences/{id}"),
        None,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (_, v) = call(
        &st,
        Method::GET,
        &format!("/api/v1/alerting/silences/{id}"),
        None,
        None,
    )
    .await;
    assert_eq!(v["data"]["state"], "expired");
    for (body, word) in [
        (
            json!({"matchers": [], "ends_at": now.to_rfc3339()}),
            "matcher",
        ),
        (
            json!({"matchers": ["a=b"], "starts_at": now.to_rfc3339(), "ends_at": (now - chrono::Duration::hours(1)).to_rfc3339()}),
            "ends_at",
        ),
        (
            json!({"matchers": ["a=b"], "ends_at": "tomorrow"}),
            "ends_at",
        ),
    ] {
        let (s, v) = call(
            &st,
            Method::POST,
            "/api/v1/alerting/silences",
            Some(body.clone()),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body} → {v}");
        assert!(v["error"].as_str().unwrap().contains(word), "{body} → {v}");
    }
}

#[tokio::test]
async fn reading_needs_read_and_changing_needs_admin() {
    let (_d, st) = state(true);
    let (s, _) = call(&st, Method::GET, "/api/v1/alerting/rules", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = call(&st, Method::GET, "/api/v1/alerting/rules", None, Some(READ)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(&st, Method::GET, "/api/v1/alerts", None, Some(READ)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = call(
        &st,
        Method::POST,
        "/api/v1/alerting/rules",
        Some(threshold_rule()),
        Some(READ),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, _) = call(
        &st,
        Method::POST,
        "/api/v1/alerting/channels/from-config/test",
        None,
        Some(READ),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(
        &st,
        Method::POST,
        "/api/v1/alerting/rules",
        Some(threshold_rule()),
        Some(ADMIN),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
}

#[tokio::test]
async fn definitions_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        data_dir: dir.path().to_path_buf(),
        ..ServerConfig::default()
    };
    {
        let st = ServerState::open(config.clone()).unwrap();
        let (s, _) = call(
            &st,
            Method::POST,
            "/api/v1/alerting/rules",
            Some(threshold_rule()),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let st = ServerState::open(config).unwrap();
    let (_, v) = call(
        &st,
        Method::GET,
        "/api/v1/alerting/rules/hot-pod",
        None,
        None,
    )
    .await;
    assert_eq!(v["data"]["name"], "Hot Pod");
}
