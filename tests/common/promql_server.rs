//! Test-only helpers of the PromQL tests: a running `osprey server`, and
//! loading the fixed data set by remote-write.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use osprey_collector::ship::remote_write::{WriteRequest, encode_snappy};

use crate::common::{ChildGuard, free_port, get, osprey, wait_for};

/// `osprey server` on a free loopback port.
pub struct OspreyServer {
    /// The process.
    pub guard: ChildGuard,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl OspreyServer {
    /// Starts the server with its data under `dir` and waits for `/readyz`.
    pub fn start(dir: &Path) -> Self {
        let port = free_port();
        let data = dir.join("osprey-data");
        std::fs::create_dir_all(&data).unwrap();
        let mut cmd = osprey();
        cmd.arg("server")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(&data);
        let guard = ChildGuard::spawn(cmd, &format!("osprey-server-{port}"), dir);
        let base = format!("http://127.0.0.1:{port}");
        let ready = format!("{base}/readyz");
        wait_for(Duration::from_secs(30), "osprey server /readyz", || {
            get(&ready).filter(|(s, _)| *s == 200)
        });
        Self { guard, base }
    }
}

/// POSTs a remote-write request to `{base}/api/v1/write`, expecting 2xx.
pub fn remote_write(base: &str, request: &WriteRequest) {
    let body = encode_snappy(request).expect("encodes");
    let resp = reqwest::blocking::Client::new()
        .post(format!("{base}/api/v1/write"))
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body)
        .send()
        .unwrap_or_else(|e| panic!("remote-write to {base}: {e}"));
    let status = resp.status();
    assert!(
        status.is_success(),
        "remote-write to {base}: {status} {}",
        resp.text().unwrap_or_default()
    );
}

/// POSTs a form to a query endpoint; the parsed JSON response.
pub fn query_api(base: &str, path: &str, form: &[(&str, String)]) -> serde_json::Value {
    let resp = reqwest::blocking::Client::new()
        .post(format!("{base}{path}"))
        .form(form)
        .send()
        .unwrap_or_else(|e| panic!("POST {base}{path}: {e}"));
    resp.json().expect("JSON response")
}

/// A whole hour at least an hour before now, in milliseconds: the base of
/// the data set for servers that judge sample age by the clock.
pub fn recent_base_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    (now / 3_600_000 - 1) * 3_600_000
}
