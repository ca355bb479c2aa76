//! Security sweep over every route of a real server with tokens configured
//! (read, write, admin), and of the agent's HTTP API:
//!
//! - every route the router serves is in the sweep (the OpenAPI document
//!   plus the listed aliases, checked against the `.route(…)` calls in the
//!   source), so a new route cannot skip it;
//! - without a token, with a tampered one (a character changed, truncated,
//!   extended, another scheme, empty) → 401 JSON; with a token of a role
//!   that may not → 403 JSON; nothing of a refused write is stored;
//! - bodies over the size limit on every POST/PUT (announced and chunked)
//!   → 413 JSON, nothing stored;
//! - malformed protobuf, snappy, JSON and query strings on every endpoint
//!   that takes them → 4xx JSON naming the problem; the server stays up
//!   and the data stored before is intact.

mod common;

use std::collections::BTreeSet;
use std::io::Read;
use std::time::Duration;

use common::*;
use prost::Message;
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::{Value, json};

const READ: &str = "secfuzz-read-token-0123456789abcdef";
const WRITE: &str = "secfuzz-write-token-0123456789abcdef";
const ADMIN: &str = "secfuzz-admin-token-0123456789abcdef";
/// The server's `max_body_bytes` in these tests.
const MAX_BODY: usize = 256 << 10;

/// Routes the router serves that the OpenAPI document does not list as
/// such (trailing-slash and Heapster aliases, the dashboard's files):
/// `(method, path, role)`.
const ALIASES: &[(&str, &str, &str)] = &[
    ("get", "/api/v1/metric-export-schema", "read"),
    ("get", "/api/v1/metric-export/", "read"),
    ("get", "/ui/{file}", "none"),
    ("get", "/ui/v/{version}/{file}", "none"),
];

/// What the router's `{*path}` wildcard of the Heapster model API stands
/// for: every documented `/api/v1/model/…` path.
const MODEL_WILDCARD: &str = "/api/v1/model/{*path}";

struct Fixture {
    server: ServerProcess,
    client: Client,
    /// Ids of the items made before the sweep.
    rule: String,
    channel: String,
    silence: String,
    /// When the good data was written (ms).
    t0: i64,
    /// What [`check_refused`] found wrong.
    failures: std::cell::RefCell<Vec<String>>,
}

fn config(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("osprey.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nmax_body_bytes = {MAX_BODY}\n\n\
             [[server.tokens]]\nname = \"agent\"\ntoken = \"{WRITE}\"\nrole = \"write\"\n\n\
             [[server.tokens]]\nname = \"viewer\"\ntoken = \"{READ}\"\nrole = \"read\"\n\n\
             [[server.tokens]]\nname = \"ops\"\ntoken = \"{ADMIN}\"\nrole = \"admin\"\n\n\
             [[server.tokens]]\nname = \"tenant-read\"\ntoken = \"{TENANT_READ}\"\nrole = \"read\"\nnamespaces = [\"other\"]\n\n\
             [[server.tokens]]\nname = \"tenant-write\"\ntoken = \"{TENANT_WRITE}\"\nrole = \"write\"\nnamespaces = [\"other\"]\n\n\
             [[server.tokens]]\nname = \"tenant-admin\"\ntoken = \"{TENANT_ADMIN}\"\nrole = \"admin\"\nnamespaces = [\"other\"]\n\n\
             [server.alerting]\nevaluation_interval = \"1h\"\n"
        ),
    )
    .unwrap();
    path
}

fn json_of(resp: Response, what: &str) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().unwrap_or_default();
    let v = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{what}: answer {status} is not JSON ({e}): {text:?}"));
    (status, v)
}

/// Asserts a JSON error body `{status:"error", errorType, error}`.
fn assert_error(status: u16, v: &Value, want: impl Fn(u16) -> bool, what: &str) {
    assert!(want(status), "{what}: unexpected status {status}: {v}");
    assert_eq!(v["status"], "error", "{what}: {v}");
    assert!(v["errorType"].is_string(), "{what}: {v}");
    let msg = v["error"].as_str().unwrap_or_default();
    assert!(msg.len() >= 8, "{what}: the error names no problem: {v}");
}

impl Fixture {
    fn start(name: &str) -> Self {
        let dir = artifact_dir(name);
        let cfg = config(&dir);
        let server = ServerProcess::start(&dir.join("data"), Some(&cfg), &dir);
        let client = Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let mut f = Fixture {
            server,
            client,
            rule: String::new(),
            channel: String::new(),
            silence: String::new(),
            t0: now_ms(),
            failures: Default::default(),
        };
        f.seed();
        f
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base)
    }

    fn admin_json(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let resp = self
            .client
            .request(method, self.url(path))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .unwrap();
        let (status, v) = json_of(resp, path);
        assert!(status < 300, "{path}: {status} {v}");
        v
    }

    fn admin_get(&self, path: &str) -> Value {
        let resp = self
            .client
            .get(self.url(path))
            .bearer_auth(ADMIN)
            .send()
            .unwrap();
        let (status, v) = json_of(resp, path);
        assert_eq!(status, 200, "{path}: {v}");
        v
    }

    /// Good data and configuration items, stored before any bad request.
    fn seed(&mut self) {
        let samples: Vec<(i64, f64)> = (0..10)
            .map(|i| (self.t0 - 9_000 + i * 1_000, i as f64))
            .collect();
        let (s, b) = post_write(
            &self.server.base,
            remote_write_body(&[("secfuzz_good", &[("job", "sec")], &samples)]),
            Some(WRITE),
        );
        assert_eq!(s, 204, "{b}");
        let push = self
            .client
            .post(self.url("/loki/api/v1/push"))
            .bearer_auth(WRITE)
            .json(
                &json!({"streams": [{"stream": {"namespace": "sec", "pod": "good"},
                "values": [[format!("{}", self.t0 * 1_000_000), "good line one"]]}]}),
            )
            .send()
            .unwrap();
        assert_eq!(push.status().as_u16(), 204, "{:?}", push.text());
        self.admin_json(
            reqwest::Method::POST,
            "/api/v1/dashboards",
            json!({"uid": "keep", "title": "Keep", "panels": [
                {"type": "timeseries", "title": "Good", "gridPos": {"x": 0, "y": 0, "w": 12, "h": 8},
                 "targets": [{"expr": "secfuzz_good"}]}]}),
        );
        let v = self.admin_json(
            reqwest::Method::POST,
            "/api/v1/alerting/rules",
            json!({"name": "Keep", "condition": {"kind": "promql", "expr": "secfuzz_good > 1e9"}}),
        );
        self.rule = v["data"]["id"].as_str().unwrap().to_string();
        let v = self.admin_json(
            reqwest::Method::POST,
            "/api/v1/alerting/channels",
            json!({"name": "Keep hook", "type": "webhook", "url": "http://127.0.0.1:9/hook"}),
        );
        self.channel = v["data"]["id"].as_str().unwrap().to_string();
        let ends = chrono::Utc::now() + chrono::Duration::hours(1);
        let v = self.admin_json(
            reqwest::Method::POST,
            "/api/v1/alerting/silences",
            json!({"matchers": ["alertname=\"Keep\""], "ends_at": ends.to_rfc3339(), "comment": "keep"}),
        );
        self.silence = v["data"]["id"].as_str().unwrap().to_string();
        // The pushed line is searchable once committed.
        wait_for(Duration::from_secs(20), "the good log line", || {
            let v = self.admin_get(&self.logs_search_path());
            (v["data"]["lines"].as_array()?.len() == 1).then_some(())
        });
    }

    fn logs_search_path(&self) -> String {
        format!(
            "/api/v1/logs/search?query=&start={}&end={}",
            (self.t0 - 3_600_000) as f64 / 1e3,
            (self.t0 + 3_600_000) as f64 / 1e3
        )
    }

    /// Everything a refused or malformed request must leave as it was.
    fn snapshot(&self) -> Value {
        let t = (self.t0 + 1_000) as f64 / 1e3;
        let series = self.admin_get("/api/v1/series?match[]=%7B__name__%3D~%22.%2B%22%7D");
        let good = self.admin_get(&format!(
            "/api/v1/query?query=count_over_time(secfuzz_good%5B1h%5D)&time={t}"
        ));
        let lines = self.admin_get(&self.logs_search_path());
        let labels = self.admin_get("/loki/api/v1/labels");
        let ids = |v: Value, key: &str| -> Vec<Value> {
            v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| json!([d[key], d["version"], d["ends_at"], d["title"], d["url"]]))
                .collect()
        };
        json!({
            "series": series["data"],
            "good": good["data"]["result"],
            "lines": lines["data"]["lines"],
            "labels": labels["data"],
            "dashboards": ids(self.admin_get("/api/v1/dashboards"), "uid"),
            "dashboard": self.admin_get("/api/v1/dashboards/keep")["dashboard"],
            "rules": ids(self.admin_get("/api/v1/alerting/rules"), "id"),
            "channels": ids(self.admin_get("/api/v1/alerting/channels"), "id"),
            "silences": ids(self.admin_get("/api/v1/alerting/silences"), "id"),
        })
    }

    fn assert_alive(&self, after: &str) {
        let resp = self.client.get(self.url("/livez")).send();
        assert!(
            resp.is_ok_and(|r| r.status().as_u16() == 200),
            "the server stopped answering after {after}"
        );
    }

    /// A concrete URL path for a documented path template.
    fn concrete(&self, path: &str) -> String {
        let id = if path.contains("/rules/") {
            self.rule.as_str()
        } else if path.contains("/channels/") {
            self.channel.as_str()
        } else if path.contains("/silences/") {
            self.silence.as_str()
        } else {
            "1"
        };
        path.replace("{metric}", "cpu/usage")
            .replace("{node}", "node-1")
            .replace("{namespace}", "sec")
            .replace("{pods}", "good,other")
            .replace("{pod}", "good")
            .replace("{name}", "namespace")
            .replace("{uid}", "keep")
            .replace("{file}", "app.js")
            .replace("{version}", osprey_dashboard::assets::VERSION)
            .replace("{id}", id)
    }

    /// A request that would change something if it were accepted (the
    /// refusal tests then check that nothing did).
    fn request(&self, method: &str, path: &str) -> RequestBuilder {
        let url = self.url(&self.concrete(path));
        let c = &self.client;
        let refused = json!({"uid": "refused", "title": "Refused", "name": "Refused",
            "condition": {"kind": "promql", "expr": "up"},
            "type": "webhook", "url": "http://127.0.0.1:9/refused",
            "matchers": ["alertname=\"Refused\""],
            "ends_at": (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339(),
            "panels": []});
        match (method, path) {
            ("post", "/api/v1/write") => c
                .post(url)
                .header("Content-Encoding", "snappy")
                .header("Content-Type", "application/x-protobuf")
                .body(remote_write_body(&[(
                    "secfuzz_refused",
                    &[],
                    &[(self.t0, 1.0)],
                )])),
            ("post", "/loki/api/v1/push") => c.post(url).json(&json!({"streams": [{
                "stream": {"namespace": "refused"},
                "values": [[format!("{}", self.t0 * 1_000_000), "refused line"]]}]})),
            (
                "post",
                "/api/v1/query" | "/api/v1/query_range" | "/api/v1/series" | "/api/v1/labels",
            ) => c.post(url).form(&[
                ("query", "secfuzz_good"),
                ("match[]", "secfuzz_good"),
                ("start", "1"),
                ("end", "2"),
                ("step", "1"),
            ]),
            ("get", _) => c
                .get(url)
                .query(&[("query", "secfuzz_good"), ("match[]", "secfuzz_good")]),
            ("post", _) => c.post(url).json(&refused),
            ("put", _) => c.put(url).json(&refused),
            ("delete", _) => c.delete(url),
            (m, p) => panic!("no request for {m} {p}"),
        }
    }
}

/// Every `(method, path, role)` the sweep covers: the OpenAPI document's
/// operations and the aliases.
fn operations(f: &Fixture) -> Vec<(String, String, String)> {
    let resp = f.client.get(f.url("/api/openapi.json")).send().unwrap();
    let (status, doc) = json_of(resp, "openapi.json");
    assert_eq!(status, 200);
    let mut ops = Vec::new();
    for (path, methods) in doc["paths"].as_object().unwrap() {
        for (method, op) in methods.as_object().unwrap() {
            let role = op["x-osprey-role"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no x-osprey-role"));
            ops.push((method.clone(), path.clone(), role.to_string()));
        }
    }
    for (m, p, r) in ALIASES {
        ops.push((m.to_string(), p.to_string(), r.to_string()));
    }
    ops
}

/// The `(method, path)` of every `.route("…", …)` call in the server's
/// source (`src/`): its path literal and the method routers chained in it.
fn routes_in_source() -> BTreeSet<(String, String)> {
    let mut files = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src"
    ))];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    let mut out = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut rest = text.as_str();
        while let Some(i) = rest.find(".route(") {
            rest = &rest[i + ".route(".len()..];
            // The call's text, up to its closing parenthesis.
            let mut depth = 1;
            let end = rest
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map(|(j, _)| j)
                .unwrap_or_else(|| panic!("unbalanced .route( in {}", file.display()));
            let call = &rest[..end];
            let Some(path) = call
                .trim_start()
                .strip_prefix('"')
                .and_then(|p| p.split('"').next())
            else {
                panic!(
                    "a .route( without a path literal in {}: {call}",
                    file.display()
                );
            };
            let mut found = false;
            for m in ["get", "post", "put", "delete", "patch", "head"] {
                let pat = format!("{m}(");
                let mut s = call;
                while let Some(k) = s.find(&pat) {
                    let before = call.len() - s.len() + k;
                    let prev = call[..before].chars().last().unwrap_or(' ');
                    if !(prev.is_alphanumeric() || prev == '_') {
                        out.insert((m.to_string(), path.to_string()));
                        found = true;
                    }
                    s = &s[k + pat.len()..];
                }
            }
            assert!(found, "no method in .route({call}) of {}", file.display());
        }
    }
    out
}

#[test]
fn the_sweep_covers_every_route_of_the_router() {
    let swept: BTreeSet<(String, String)> = osprey::server::openapi::operations()
        .into_iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .chain(
            ALIASES
                .iter()
                .map(|(m, p, _)| (m.to_string(), p.to_string())),
        )
        .collect();
    let routed = routes_in_source();
    assert!(routed.len() >= 40, "{routed:?}");
    let mut missing = Vec::new();
    for (m, p) in &routed {
        let covered = if p == MODEL_WILDCARD {
            swept
                .iter()
                .any(|(sm, sp)| sm == m && sp.starts_with("/api/v1/model/"))
        } else {
            swept.contains(&(m.clone(), p.clone()))
        };
        if !covered {
            missing.push(format!("{m} {p}"));
        }
    }
    assert!(
        missing.is_empty(),
        "routes neither in /api/openapi.json nor in the sweep's aliases: {missing:?}"
    );
    // And nothing documented that is not routed (a stale document).
    for (m, p) in &swept {
        let routed_here = routed.contains(&(m.clone(), p.clone()))
            || (p.starts_with("/api/v1/model/")
                && routed.contains(&(m.clone(), MODEL_WILDCARD.to_string())));
        assert!(routed_here, "{m} {p} is documented but not routed");
    }
}

/// The ways a presented token can be wrong.
fn tampered() -> Vec<(&'static str, String)> {
    let mut changed = ADMIN.to_string().into_bytes();
    changed[7] = if changed[7] == b'x' { b'y' } else { b'x' };
    let changed = String::from_utf8(changed).unwrap();
    vec![
        ("a character changed", format!("Bearer {changed}")),
        ("truncated", format!("Bearer {}", &ADMIN[..ADMIN.len() - 1])),
        ("an extra character", format!("Bearer {ADMIN}x")),
        ("the Basic scheme", format!("Basic {ADMIN}")),
        ("no scheme", ADMIN.to_string()),
        ("empty", "Bearer ".to_string()),
        ("an empty header", String::new()),
        ("another token's prefix", format!("Bearer {}", &READ[..10])),
    ]
}

/// Roles that may not do what `role` allows.
fn wrong_tokens(role: &str) -> Vec<(&'static str, &'static str)> {
    match role {
        "read" => vec![("write", WRITE)],
        "write" => vec![("read", READ)],
        "admin" => vec![("read", READ), ("write", WRITE)],
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn every_route_refuses_missing_tampered_and_wrong_role_tokens_and_stores_nothing() {
    let f = Fixture::start("security-auth");
    let before = f.snapshot();
    let ops = operations(&f);
    assert!(ops.len() >= 60, "{} operations", ops.len());
    let mut checked = 0;
    for (method, path, role) in &ops {
        let what = format!("{method} {path}");
        if role == "none" {
            // Public: answers without a token, and not with a server error.
            let status = f.request(method, path).send().unwrap().status().as_u16();
            assert!(
                status < 500 && status != 401 && status != 403,
                "{what}: {status}"
            );
            continue;
        }
        let resp = f.request(method, path).send().unwrap();
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_string());
        let (status, v) = json_of(resp, &what);
        assert_error(status, &v, |s| s == 401, &format!("{what} without a token"));
        assert_eq!(v["errorType"], "unauthorized", "{what}: {v}");
        assert_eq!(challenge.as_deref(), Some("Bearer"), "{what}");
        for (how, header) in tampered() {
            let resp = f
                .request(method, path)
                .header("Authorization", header)
                .send()
                .unwrap();
            let (status, v) = json_of(resp, &what);
            assert_error(
                status,
                &v,
                |s| s == 401,
                &format!("{what} with a token {how}"),
            );
        }
        for (name, token) in wrong_tokens(role) {
            let resp = f.request(method, path).bearer_auth(token).send().unwrap();
            let (status, v) = json_of(resp, &what);
            assert_error(
                status,
                &v,
                |s| s == 403,
                &format!("{what} with a {name} token"),
            );
            assert_eq!(v["errorType"], "forbidden", "{what}: {v}");
        }
        // The right role gets past authentication (reads only: writes
        // would change what the snapshot compares).
        if method == "get" && !path.ends_with("/tail") {
            let token = if role == "read" { READ } else { ADMIN };
            let status = f
                .request(method, path)
                .bearer_auth(token)
                .send()
                .unwrap()
                .status()
                .as_u16();
            assert!(
                status != 401 && status != 403 && status < 500,
                "{what} with a {role} token: {status}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 50, "{checked} authenticated operations");
    f.assert_alive("the authentication sweep");
    assert_eq!(f.snapshot(), before, "a refused request changed something");
    // The refused series and stream are nowhere.
    let v = f.admin_get("/api/v1/series?match[]=secfuzz_refused");
    assert_eq!(v["data"], json!([]));
    let v = f.admin_get(
        &f.logs_search_path()
            .replace("query=&", "query=namespace%3Arefused&"),
    );
    assert_eq!(v["data"]["lines"], json!([]));
}

/// Tokens limited to a namespace that holds none of the fixture's data.
const TENANT_READ: &str = "secfuzz-tenant-read-0123456789abcdef";
const TENANT_WRITE: &str = "secfuzz-tenant-write-0123456789abcdef";
const TENANT_ADMIN: &str = "secfuzz-tenant-admin-0123456789abcdef";

/// What the fixture stored, as it would show in an answer.
const MARKERS: &[&str] = &["secfuzz_good", "good line one", "\"Keep\"", "Keep hook"];

#[test]
fn every_route_shows_another_tenant_nothing_and_takes_nothing_from_it() {
    let f = Fixture::start("security-tenant");
    let before = f.snapshot();
    let ops = operations(&f);
    let mut reads = 0;
    for (method, path, role) in &ops {
        if role == "none" || path.ends_with("/tail") || method == "post" && role == "admin" {
            // Public routes hold nothing; live tails never end; creating
            // is a tenant's right where it may (its own dashboards).
            continue;
        }
        let what = format!("{method} {path} as another tenant");
        let token = match role.as_str() {
            "read" => TENANT_READ,
            "write" => TENANT_WRITE,
            _ => TENANT_ADMIN,
        };
        let resp = f.request(method, path).bearer_auth(token).send().unwrap();
        let status = resp.status().as_u16();
        let body = resp.text().unwrap_or_default();
        assert!(status != 401 && status < 500, "{what}: {status} {body}");
        if method == "get" {
            reads += 1;
            if status < 300 {
                for m in MARKERS {
                    assert!(!body.contains(m), "{what} shows {m}: {body}");
                }
            }
        } else if role == "write" {
            assert_eq!(status, 403, "{what}: {body}");
        }
    }
    assert!(reads >= 30, "{reads} read operations");
    f.assert_alive("the tenant sweep");
    assert_eq!(f.snapshot(), before, "another tenant changed something");
    let v = f.admin_get("/api/v1/series?match[]=secfuzz_refused");
    assert_eq!(v["data"], json!([]));
}

#[test]
fn oversized_bodies_are_refused_with_413_on_every_post_and_put() {
    let f = Fixture::start("security-size");
    let before = f.snapshot();
    let big = vec![b' '; MAX_BODY + 1];
    let mut n = 0;
    for (method, path, role) in operations(&f) {
        if method != "post" && method != "put" {
            continue;
        }
        let what = format!("{method} {path}");
        let token = if role == "write" { WRITE } else { ADMIN };
        let url = f.url(&f.concrete(&path));
        let req = |b: reqwest::blocking::Body| {
            let r = if method == "post" {
                f.client.post(&url)
            } else {
                f.client.put(&url)
            };
            let r = r.bearer_auth(token).body(b);
            match path.as_str() {
                "/api/v1/write" => r
                    .header("Content-Encoding", "snappy")
                    .header("Content-Type", "application/x-protobuf"),
                "/api/v1/query" | "/api/v1/query_range" | "/api/v1/series" | "/api/v1/labels" => {
                    r.header("Content-Type", "application/x-www-form-urlencoded")
                }
                _ => r.header("Content-Type", "application/json"),
            }
        };
        // Announced by Content-Length.
        let (status, v) = json_of(req(big.clone().into()).send().unwrap(), &what);
        assert_error(status, &v, |s| s == 413, &format!("{what} over the limit"));
        // Chunked: the size shows only while reading.
        let chunked =
            reqwest::blocking::Body::new(std::io::Cursor::new(big.clone()).take(u64::MAX));
        let (status, v) = json_of(req(chunked).send().unwrap(), &what);
        assert_error(
            status,
            &v,
            |s| s == 413,
            &format!("{what} chunked over the limit"),
        );
        n += 1;
    }
    assert!(n >= 15, "{n} POST/PUT operations");
    f.assert_alive("oversized bodies");
    assert_eq!(
        f.snapshot(),
        before,
        "an oversized request changed something"
    );
}

/// A protobuf field header.
fn key(field: u32, wire: u8) -> Vec<u8> {
    let mut v = Vec::new();
    varint(((field as u64) << 3) | wire as u64, &mut v);
    v
}

fn varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// A length-delimited protobuf field.
fn ld(field: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = key(field, 2);
    varint(payload.len() as u64, &mut v);
    v.extend_from_slice(payload);
    v
}

fn snappy(raw: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(raw).unwrap()
}

/// Bodies that are not what the endpoint takes, each with a word the
/// error must contain: `(what, content type, body, word)`.
fn malformed_protobuf(good_raw: &[u8]) -> Vec<(String, Vec<u8>, &'static str)> {
    let truncated = snappy(&good_raw[..good_raw.len() / 2]);
    let mut wrong_type = key(1, 0); // field 1 as a varint, not a message
    varint(7, &mut wrong_type);
    let mut huge_len = key(1, 2);
    varint(u32::MAX as u64, &mut huge_len);
    huge_len.extend_from_slice(b"abc");
    let mut nested_huge = ld(1, &{
        let mut v = key(2, 2);
        varint(1 << 40, &mut v);
        v
    });
    nested_huge.extend_from_slice(&[0; 8]);
    // A snappy header announcing 4 GiB.
    let mut huge_snappy = Vec::new();
    varint(u32::MAX as u64, &mut huge_snappy);
    huge_snappy.extend_from_slice(&[0, 1, 2, 3]);
    let good = snappy(good_raw);
    vec![
        ("truncated protobuf".into(), truncated, "decode"),
        (
            "a message field sent as a varint".into(),
            snappy(&wrong_type),
            "decode",
        ),
        ("a 4 GiB length prefix".into(), snappy(&huge_len), "decode"),
        (
            "a nested 1 TiB length prefix".into(),
            snappy(&nested_huge),
            "decode",
        ),
        (
            "not snappy".into(),
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xffhello".to_vec(),
            "snappy",
        ),
        ("snappy announcing 4 GiB".into(), huge_snappy, "bytes"),
        (
            "truncated snappy".into(),
            good[..good.len() - 3].to_vec(),
            "snappy",
        ),
        ("uncompressed protobuf".into(), good_raw.to_vec(), ""),
        (
            "random bytes".into(),
            (0..200u32).map(|i| (i * 7919 % 251) as u8).collect(),
            "",
        ),
    ]
}

/// Malformed JSON documents: `(what, body)`.
fn malformed_json() -> Vec<(&'static str, Vec<u8>)> {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_obj = format!("{}1{}", "{\"a\":".repeat(50_000), "}".repeat(50_000));
    vec![
        ("truncated", b"{\"streams\": [{\"stream\": {\"a\": \"b\"}, \"val".to_vec()),
        ("wrong types", b"{\"streams\": {\"stream\": 5}, \"title\": 7, \"name\": [], \"matchers\": 3, \"panels\": \"x\", \"condition\": 1}".to_vec()),
        ("deep array nesting", deep.into_bytes()),
        ("deep object nesting", deep_obj.into_bytes()),
        ("a huge number", format!("{{\"title\": 1{}, \"threshold\": 1e999999}}", "0".repeat(5000)).into_bytes()),
        ("invalid UTF-8", b"{\"title\": \"\xff\xfe\xfd\", \"name\": \"\xc3\x28\"}".to_vec()),
        ("not JSON", b"<xml/>".to_vec()),
        ("empty", Vec::new()),
        ("a scalar", b"42".to_vec()),
        ("null", b"null".to_vec()),
    ]
}

/// Sends a request that must be refused with a 4xx JSON error whose
/// message contains `word`; a failure is recorded (so that one run lists
/// them all), and the server must still answer.
fn check_refused(f: &Fixture, req: RequestBuilder, what: &str, word: &str) {
    let failure = match req.send() {
        Err(e) => Some(format!("{what}: no answer ({e})")),
        Ok(resp) => {
            let status = resp.status().as_u16();
            let text = resp.text().unwrap_or_default();
            match serde_json::from_str::<Value>(&text) {
                Err(_) => Some(format!("{what}: {status} not JSON: {text:?}")),
                Ok(v) => {
                    let msg = v["error"].as_str().unwrap_or_default().to_lowercase();
                    if !(400..500).contains(&status) || v["status"] != "error" || msg.len() < 8 {
                        Some(format!("{what}: {status} {v}"))
                    } else if !msg.contains(&word.to_lowercase()) {
                        Some(format!("{what}: the error does not say {word:?}: {v}"))
                    } else {
                        None
                    }
                }
            }
        }
    };
    if let Some(m) = failure {
        f.failures.borrow_mut().push(m);
    }
    f.assert_alive(what);
}

#[test]
fn malformed_bodies_and_parameters_get_4xx_json_and_lose_nothing() {
    let f = Fixture::start("security-malformed");
    let before = f.snapshot();

    // Remote-write: protobuf and snappy damage, invalid series.
    let good = osprey_collector::ship::remote_write::WriteRequest {
        timeseries: vec![osprey_collector::ship::remote_write::TimeSeries::new(
            "secfuzz_bad",
            [("job", "x")],
            vec![osprey_collector::ship::remote_write::Sample::new(f.t0, 1.0)],
        )],
        metadata: Vec::new(),
    }
    .encode_to_vec();
    let write_as = |encoding: &str, ct: &str, body: Vec<u8>| {
        f.client
            .post(f.url("/api/v1/write"))
            .bearer_auth(WRITE)
            .header("Content-Encoding", encoding)
            .header("Content-Type", ct)
            .body(body)
    };
    let write = |body: Vec<u8>| write_as("snappy", "application/x-protobuf", body);
    for (what, body, word) in malformed_protobuf(&good) {
        check_refused(&f, write(body), &format!("remote-write: {what}"), word);
    }
    let invalid_series = |labels: &[(&str, &str)]| {
        snappy(
            &osprey_collector::ship::remote_write::WriteRequest {
                timeseries: vec![osprey_collector::ship::remote_write::TimeSeries {
                    labels: labels
                        .iter()
                        .map(|(n, v)| osprey_collector::ship::remote_write::Label::new(*n, *v))
                        .collect(),
                    samples: vec![osprey_collector::ship::remote_write::Sample::new(f.t0, 1.0)],
                }],
                metadata: Vec::new(),
            }
            .encode_to_vec(),
        )
    };
    for (what, labels) in [
        ("no metric name", vec![("job", "x")]),
        (
            "duplicate labels",
            vec![("__name__", "secfuzz_bad"), ("a", "1"), ("a", "2")],
        ),
        (
            "unsorted labels",
            vec![("__name__", "secfuzz_bad"), ("z", "1"), ("a", "2")],
        ),
        (
            "an invalid label name",
            vec![("__name__", "secfuzz_bad"), ("bad-name", "1")],
        ),
        (
            "invalid UTF-8 in a label",
            vec![("__name__", "secfuzz_bad")],
        ),
    ] {
        let mut body = invalid_series(&labels);
        if what.contains("UTF-8") {
            // The name's bytes, made invalid after encoding.
            let mut raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
            let at = raw.windows(4).position(|w| w == b"secf").unwrap();
            raw[at] = 0xff;
            body = snappy(&raw);
        }
        check_refused(&f, write(body), &format!("remote-write: {what}"), "");
    }
    check_refused(
        &f,
        write_as("snappy", "application/json", snappy(&good)),
        "remote-write: a JSON content type",
        "content-type",
    );
    check_refused(
        &f,
        write_as("gzip", "application/x-protobuf", snappy(&good)),
        "remote-write: gzip",
        "content-encoding",
    );

    // Loki push, protobuf.
    let stream = |labels: &str| {
        osprey::logs::push::PushRequest {
            streams: vec![osprey::logs::push::StreamAdapter {
                labels: labels.into(),
                entries: vec![osprey::logs::push::EntryAdapter {
                    timestamp: Some(osprey::logs::push::Timestamp {
                        seconds: f.t0 / 1000,
                        nanos: 0,
                    }),
                    line: "bad line".into(),
                }],
                hash: 0,
            }],
        }
        .encode_to_vec()
    };
    let push = |ct: &str, body: Vec<u8>| {
        f.client
            .post(f.url("/loki/api/v1/push"))
            .bearer_auth(WRITE)
            .header("Content-Type", ct)
            .body(body)
    };
    for (what, body, word) in malformed_protobuf(&stream("{namespace=\"bad\"}")) {
        check_refused(
            &f,
            push("application/x-protobuf", body),
            &format!("loki push: {what}"),
            word,
        );
    }
    for (what, labels) in [
        ("unterminated labels", "{namespace=\"bad"),
        ("no labels", "{}"),
        ("a regex matcher", "{namespace=~\"bad\"}"),
        ("garbage labels", "namespace bad"),
        ("an invalid label name", "{1bad=\"x\"}"),
    ] {
        check_refused(
            &f,
            push("application/x-protobuf", snappy(&stream(labels))),
            &format!("loki push: {what}"),
            "",
        );
    }
    // Loki push, JSON.
    for (what, body) in malformed_json() {
        check_refused(
            &f,
            push("application/json", body),
            &format!("loki push JSON: {what}"),
            "",
        );
    }
    for (what, body) in [
        (
            "a numeric timestamp",
            json!({"streams": [{"stream": {"a": "b"}, "values": [[1, "x"]]}]}),
        ),
        (
            "a timestamp that is not a number",
            json!({"streams": [{"stream": {"a": "b"}, "values": [["soon", "x"]]}]}),
        ),
        (
            "a timestamp over i64",
            json!({"streams": [{"stream": {"a": "b"}, "values": [["99999999999999999999999", "x"]]}]}),
        ),
        (
            "a future timestamp",
            json!({"streams": [{"stream": {"a": "b"}, "values": [[format!("{}", (f.t0 + 86_400_000 * 3) * 1_000_000), "x"]]}]}),
        ),
        (
            "an invalid label name",
            json!({"streams": [{"stream": {"bad-name": "b"}, "values": [[format!("{}", f.t0 * 1_000_000), "x"]]}]}),
        ),
        (
            "an entry of one element",
            json!({"streams": [{"stream": {"a": "b"}, "values": [["1"]]}]}),
        ),
        ("an unknown field", json!({"streams": [], "extra": 1})),
    ] {
        check_refused(
            &f,
            push("application/json", body.to_string().into_bytes()),
            &format!("loki push JSON: {what}"),
            "",
        );
    }
    check_refused(
        &f,
        push("text/plain", b"hello".to_vec()),
        "loki push: text/plain",
        "content-type",
    );

    // JSON APIs: dashboards, rules, preview, channels, silences, login.
    let json_endpoints: Vec<(reqwest::Method, String)> = vec![
        (reqwest::Method::POST, "/api/v1/dashboards".into()),
        (reqwest::Method::PUT, "/api/v1/dashboards/keep".into()),
        (reqwest::Method::POST, "/api/v1/alerting/rules".into()),
        (
            reqwest::Method::PUT,
            format!("/api/v1/alerting/rules/{}", f.rule),
        ),
        (
            reqwest::Method::POST,
            "/api/v1/alerting/rules/preview".into(),
        ),
        (reqwest::Method::POST, "/api/v1/alerting/channels".into()),
        (
            reqwest::Method::PUT,
            format!("/api/v1/alerting/channels/{}", f.channel),
        ),
        (reqwest::Method::POST, "/api/v1/alerting/silences".into()),
        (
            reqwest::Method::PUT,
            format!("/api/v1/alerting/silences/{}", f.silence),
        ),
        (reqwest::Method::POST, "/api/v1/login".into()),
    ];
    for (method, path) in &json_endpoints {
        for (what, body) in malformed_json() {
            let req = f
                .client
                .request(method.clone(), f.url(path))
                .bearer_auth(ADMIN)
                .header("Content-Type", "application/json")
                .body(body);
            check_refused(&f, req, &format!("{method} {path}: {what}"), "");
        }
    }

    // Query strings.
    let bad_queries: &[(&str, &str)] = &[
        ("/api/v1/query?query=rate(x%5B5m%5D", "parse error"),
        ("/api/v1/query?query=up&time=yesterday", "time"),
        ("/api/v1/query?query=up&time=1e400", "time"),
        ("/api/v1/query?query=up&timeout=forever", "timeout"),
        ("/api/v1/query?query=%FF%FE", "parse error"),
        ("/api/v1/query", "query"),
        ("/api/v1/query_range?query=up&start=10&end=1&step=1", "end"),
        (
            "/api/v1/query_range?query=up&start=0&end=100&step=0",
            "step",
        ),
        (
            "/api/v1/query_range?query=up&start=0&end=100&step=-5",
            "step",
        ),
        (
            "/api/v1/query_range?query=up&start=0&end=1e9&step=1",
            "resolution",
        ),
        (
            "/api/v1/query_range?query=up&start=-9e15&end=9e15&step=1",
            "resolution",
        ),
        (
            "/api/v1/query_range?query=up&start=-9.2e15&end=9.2e15&step=1000000000",
            "resolution",
        ),
        ("/api/v1/query_range?query=up&start=0&end=10", "step"),
        ("/api/v1/series?match[]=rate(x%5B1m%5D)", "match"),
        ("/api/v1/series?match[]=%7Ba%3D%22", "match"),
        ("/api/v1/series", "match"),
        ("/api/v1/labels?start=x", "start"),
        ("/api/v1/label/namespace/values?end=x", "end"),
        ("/api/v1/label/%FF/values", ""),
        ("/api/v1/logs/search?limit=0", "limit"),
        ("/api/v1/logs/search?limit=99999999999999999999", "limit"),
        ("/api/v1/logs/search?cursor=zzz", "cursor"),
        ("/api/v1/logs/search?direction=sideways", "direction"),
        ("/api/v1/logs/search?start=5&end=1", "end"),
        ("/api/v1/logs/search?query=message%3A(", ""),
        (
            "/api/v1/logs/histogram?start=-9e15&end=9e15&step=1",
            "buckets",
        ),
        ("/api/v1/logs/histogram?start=0&end=100&step=0", "step"),
        ("/api/v1/logs/histogram?step=1ms", "bucket"),
        ("/api/v1/logs/tail?query=message%3A(", ""),
        ("/loki/api/v1/query_range?query=%7Bnamespace%3D", "query"),
        (
            "/loki/api/v1/query_range?query=sum(rate(%7Ba%3D%22b%22%7D%5B1m%5D))",
            "not supported",
        ),
        (
            "/loki/api/v1/query_range?query=%7Ba%3D%22b%22%7D&limit=-1",
            "limit",
        ),
        ("/loki/api/v1/labels?start=x", "start"),
        ("/loki/api/v1/label/bad-name/values", "name"),
        (
            "/api/v1/model/nodes/node-1/metrics/cpu/usage?start=yesterday",
            "start",
        ),
        (
            "/api/v1/model/metrics/cpu/usage?start=2030-01-01T00:00:00Z&end=2020-01-01T00:00:00Z",
            "start",
        ),
        ("/api/v1/model/metrics/cpu/usage?labels=nocolon", "labels"),
        ("/api/v1/model/metrics/cpu/usage?bogus=1", "bogus"),
        ("/api/v1/metric-export?x=1", ""),
        ("/api/v1/render?query=up&width=0", "width"),
        (
            "/api/v1/render?query=up&width=999999999&height=999999999",
            "",
        ),
        ("/api/v1/render?query=up&format=gif", "format"),
        ("/api/v1/render?query=rate(", ""),
        ("/api/v1/dashboard/query_range?query=up&start=5&end=1", ""),
        ("/api/v1/dashboard/query_range?query=up&width=-1", ""),
        ("/api/v1/dashboards/keep/panels/notanumber/render", ""),
        (
            "/api/v1/dashboards/keep/panels/99999999999999999999999/render",
            "",
        ),
        ("/api/v1/dashboards/%FF", ""),
        ("/api/v1/alerting/history?limit=-3", "limit"),
        ("/api/v1/alerting/history?since=tomorrow", "since"),
        ("/api/v1/alerting/history?limit=1&limit=2", ""),
        ("/api/v1/alerting/rules/%FF%FE", ""),
        ("/api/v1/rules?type=sideways", "type"),
        ("/api/v1/rules?type=a&type=b", ""),
    ];
    for (path, word) in bad_queries {
        let req = f.client.get(f.url(path)).bearer_auth(ADMIN);
        check_refused(&f, req, &format!("GET {path}"), word);
    }
    // Extreme but valid ranges: answered (no crash), JSON.
    for path in [
        "/api/v1/logs/search?start=-9e15&end=9e15",
        "/api/v1/logs/histogram?start=-9e15&end=9e15&step=1e12",
        "/api/v1/logs/histogram?start=-9e15&end=9e15",
        "/loki/api/v1/query_range?query=%7Ba%3D%22b%22%7D&start=-9223372036854775808",
        "/loki/api/v1/query_range?query=%7Ba%3D%22b%22%7D&end=-9223372036854775808",
        "/loki/api/v1/labels?end=-9223372036854775808",
        "/api/v1/series?match[]=up&start=-9.2e15&end=9.2e15",
        "/api/v1/query?query=up&time=-9.2e15",
        "/api/v1/query?query=up&time=9.2e15",
        "/api/v1/query_range?query=up&start=9.2e15&end=9.2e15&step=1",
    ] {
        match f.client.get(f.url(path)).bearer_auth(ADMIN).send() {
            Err(e) => f
                .failures
                .borrow_mut()
                .push(format!("GET {path}: no answer ({e})")),
            Ok(resp) => {
                let status = resp.status().as_u16();
                let text = resp.text().unwrap_or_default();
                if status >= 500 || serde_json::from_str::<Value>(&text).is_err() {
                    f.failures
                        .borrow_mut()
                        .push(format!("GET {path}: {status} {text}"));
                }
            }
        }
        f.assert_alive(path);
    }
    // A method a route does not take.
    check_refused(
        &f,
        f.client.patch(f.url("/api/v1/write")).bearer_auth(ADMIN),
        "PATCH /api/v1/write",
        "patch",
    );

    let failures = f.failures.borrow().clone();
    assert!(
        failures.is_empty(),
        "{} refusals were wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
    f.assert_alive("the malformed requests");
    assert_eq!(
        f.snapshot(),
        before,
        "a malformed request changed something"
    );
    let v = f.admin_get("/api/v1/series?match[]=secfuzz_bad");
    assert_eq!(v["data"], json!([]), "a malformed write stored a series");
}

#[test]
fn the_agent_api_refuses_bad_requests_with_json() {
    use osprey_collector::fixture::{CgroupValues, FixtureTree, paths};
    let dir = artifact_dir("security-agent");
    let tree = FixtureTree::v2().unwrap();
    let id = paths::container_id(1);
    tree.add_cgroup(&paths::docker_systemd(&id), &CgroupValues::sample(1))
        .unwrap();
    let agent = AgentProcess::start(
        &[
            "--interval",
            "200ms",
            "--cgroup-root",
            tree.root().to_str().unwrap(),
        ],
        &dir,
    );
    let client = Client::new();
    let path = format!("/api/v1/containers{}", paths::docker_systemd(&id));
    // The container is listed (the bad requests below are about requests,
    // not a missing container).
    wait_for(Duration::from_secs(10), "the container", || {
        let (s, _) = get(&format!("{}{path}", agent.base))?;
        (s == 200).then_some(())
    });
    for (query, word) in [
        ("/stats?since=yesterday", "since"),
        ("/stats?since=%FF%FE", "since"),
        (
            "/stats?since=2026-01-01T00:00:00Z&since=2026-01-02T00:00:00Z",
            "",
        ),
        ("/stats?since=9999999-01-01T00:00:00Z", "since"),
    ] {
        let what = format!("agent GET {path}{query}");
        let resp = client
            .get(format!("{}{path}{query}", agent.base))
            .send()
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().unwrap();
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {text}"));
        assert!((400..500).contains(&status), "{what}: {status} {v}");
        let msg = v["error"].as_str().unwrap_or_default().to_lowercase();
        assert!(msg.len() >= 8 && msg.contains(word), "{what}: {v}");
    }
    for (method, p, want) in [
        ("GET", "/api/v1/containers/%FF%FE".to_string(), 400),
        (
            "GET",
            "/api/v1/containers/no-such-container/stats".to_string(),
            404,
        ),
        ("GET", "/nowhere".to_string(), 404),
        ("POST", "/metrics".to_string(), 405),
        ("DELETE", path.to_string(), 405),
    ] {
        let what = format!("agent {method} {p}");
        let resp = client
            .request(method.parse().unwrap(), format!("{}{p}", agent.base))
            .send()
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().unwrap();
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {text:?}"));
        assert_eq!(status, want, "{what}: {v}");
        assert!(
            v["error"].as_str().is_some_and(|m| m.len() >= 8),
            "{what}: {v}"
        );
    }
    let (s, _) = get(&format!("{}/healthz", agent.base)).unwrap();
    assert_eq!(s, 200, "the agent stays up");
}
