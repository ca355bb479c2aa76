//! The server as a real process: remote-write ingestion (validation, retries
//! without duplicates, nothing stored from a bad request), bearer-token
//! roles, crash durability and graceful shutdown.

mod common;

use std::time::Duration;

use common::*;

fn stored(server: &ServerProcess) -> (f64, f64) {
    let m = server.metrics();
    (
        metric_value(&m, "osprey_storage_samples_appended_total", &[]).unwrap_or(0.0),
        metric_value(&m, "osprey_storage_samples_duplicate_total", &[]).unwrap_or(0.0),
    )
}

fn json_error(body: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    assert_eq!(v["status"], "error", "{body}");
    v["error"].as_str().unwrap().to_string()
}

#[test]
fn bad_payloads_are_refused_whole_and_retries_store_nothing_twice() {
    let dir = artifact_dir("server-ingest");
    let server = ServerProcess::start(&dir.join("data"), None, &dir);
    let t = now_ms();
    let good = remote_write_body(&[
        ("m_a", &[("node", "n1")], &[(t, 1.0), (t + 10_000, 2.0)]),
        ("m_b", &[("node", "n1")], &[(t, 5.0)]),
    ]);
    let (status, body) = post_write(&server.base, good.clone(), None);
    assert_eq!(status, 204, "{body}");
    assert_eq!(stored(&server), (3.0, 0.0));

    // The same request again (a sender retrying after a timeout).
    let (status, _) = post_write(&server.base, good, None);
    assert_eq!(status, 204);
    assert_eq!(stored(&server), (3.0, 3.0), "a retry stores nothing new");

    // A request with one bad series among good ones: 400, nothing stored.
    let bad = remote_write_body(&[
        ("m_c", &[("node", "n1")], &[(t, 1.0)]),
        ("m_d", &[("node", "")], &[(t, 1.0)]),
    ]);
    let (status, body) = post_write(&server.base, bad, None);
    assert_eq!(status, 400);
    let msg = json_error(&body);
    assert!(
        msg.contains("series 1") && msg.contains("node"),
        "names the series and label: {msg}"
    );
    assert_eq!(stored(&server).0, 3.0, "nothing of a bad request is stored");
    // Label and metric names the storage cannot hold, samples out of order,
    // behind a series the server already holds: 400 naming the problem.
    for (bad, names) in [
        (
            remote_write_body(&[
                ("m_a", &[("node", "n1")], &[(t + 20_000, 3.0)]),
                ("m_c", &[("1node", "n1")], &[(t, 1.0)]),
            ]),
            ["series 1", "1node"],
        ),
        (
            remote_write_body(&[
                ("m_a", &[("node", "n1")], &[(t + 20_000, 3.0)]),
                ("bad-name", &[("node", "n1")], &[(t, 1.0)]),
            ]),
            ["series 1", "bad-name"],
        ),
        (
            remote_write_body(&[
                ("m_a", &[("node", "n1")], &[(t + 20_000, 3.0)]),
                ("m_c", &[("node", "n1")], &[(t + 10, 1.0), (t, 1.0)]),
            ]),
            ["series 1", "strictly increasing"],
        ),
    ] {
        let (status, body) = post_write(&server.base, bad, None);
        assert_eq!(status, 400, "{body}");
        let msg = json_error(&body);
        assert!(names.iter().all(|n| msg.contains(n)), "{msg}");
        assert_eq!(stored(&server).0, 3.0, "nothing of a bad request is stored");
    }

    // Not snappy, garbage, empty, wrong content type.
    let client = reqwest::blocking::Client::new();
    for (encoding, ctype, body, expect) in [
        ("gzip", "application/x-protobuf", vec![1u8, 2, 3], 400),
        (
            "snappy",
            "application/x-protobuf",
            b"definitely not snappy".to_vec(),
            400,
        ),
        ("snappy", "application/x-protobuf", Vec::new(), 400),
        ("snappy", "application/json", b"{}".to_vec(), 415),
    ] {
        let resp = client
            .post(format!("{}/api/v1/write", server.base))
            .header("Content-Encoding", encoding)
            .header("Content-Type", ctype)
            .body(body)
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), expect, "{encoding} {ctype}");
        assert!(!json_error(&resp.text().unwrap()).is_empty());
    }
    // Snappy of something that is not a WriteRequest.
    let mut enc = snap::raw::Encoder::new();
    let junk = enc.compress_vec(&[0xff; 64]).unwrap();
    let (status, body) = post_write(&server.base, junk, None);
    assert_eq!(status, 400, "{body}");
    assert_eq!(stored(&server).0, 3.0);

    // Out of order: the rest is stored, the answer says what was refused.
    let late = remote_write_body(&[
        ("m_a", &[("node", "n1")], &[(t - 60_000, 9.0)]),
        ("m_e", &[("node", "n1")], &[(t, 1.0)]),
    ]);
    let (status, body) = post_write(&server.base, late, None);
    assert_eq!(status, 400);
    assert!(json_error(&body).contains("out of order"), "{body}");
    assert_eq!(stored(&server).0, 4.0, "the valid sample was stored");

    // Unknown routes answer JSON too.
    let (status, body) = get(&format!("{}/api/v1/nope", server.base)).unwrap();
    assert_eq!(status, 404);
    json_error(&body);
}

#[test]
fn tokens_and_roles_are_enforced_and_refused_writes_store_nothing() {
    let dir = artifact_dir("server-auth");
    let config = dir.join("osprey.toml");
    std::fs::write(
        &config,
        "[[server.tokens]]\nname = \"agent\"\ntoken = \"write-token-0123456789\"\nrole = \"write\"\n\n\
         [[server.tokens]]\nname = \"viewer\"\ntoken = \"read-token-0123456789\"\nrole = \"read\"\n\n\
         [[server.tokens]]\nname = \"ops\"\ntoken = \"admin-token-0123456789\"\nrole = \"admin\"\n",
    )
    .unwrap();
    let server = ServerProcess::start(&dir.join("data"), Some(&config), &dir);
    let t = now_ms();
    let mut n = 0;
    let mut body = || {
        n += 1;
        remote_write_body(&[("m", &[("node", "n1")], &[(t + n * 10_000, n as f64)])])
    };
    let read_url = format!("{}/api/v1/status/buildinfo", server.base);
    let client = reqwest::blocking::Client::new();
    let read = |token: Option<&str>| {
        let mut r = client.get(&read_url);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let resp = r.send().unwrap();
        (
            resp.status().as_u16(),
            resp.headers().get("www-authenticate").is_some(),
            resp.text().unwrap(),
        )
    };

    // No token, wrong token: 401 with a JSON error and a challenge.
    let (status, body_text) = post_write(&server.base, body(), None);
    assert_eq!(status, 401, "{body_text}");
    assert!(json_error(&body_text).contains("Bearer"));
    let (status, challenge, _) = read(None);
    assert!(status == 401 && challenge);
    let (status, _) = post_write(&server.base, body(), Some("write-token-012345678X"));
    assert_eq!(status, 401);
    // A read-only token writing, a write-only token reading: 403.
    let (status, text) = post_write(&server.base, body(), Some("read-token-0123456789"));
    assert_eq!(status, 403, "{text}");
    assert!(
        json_error(&text).contains("viewer"),
        "names the token, never the secret: {text}"
    );
    assert!(!text.contains("read-token-0123456789"));
    let (status, _, _) = read(Some("write-token-0123456789"));
    assert_eq!(status, 403);
    assert_eq!(
        metric_value(
            &server.metrics(),
            "osprey_storage_samples_appended_total",
            &[]
        ),
        Some(0.0),
        "nothing stored"
    );

    // The right roles pass.
    assert_eq!(
        post_write(&server.base, body(), Some("write-token-0123456789")).0,
        204
    );
    assert_eq!(
        post_write(&server.base, body(), Some("admin-token-0123456789")).0,
        204
    );
    assert_eq!(read(Some("read-token-0123456789")).0, 200);
    assert_eq!(read(Some("admin-token-0123456789")).0, 200);
    assert_eq!(
        metric_value(
            &server.metrics(),
            "osprey_storage_samples_appended_total",
            &[]
        ),
        Some(2.0)
    );
    // Probes and self-metrics need no token.
    assert_eq!(get(&format!("{}/livez", server.base)).unwrap().0, 200);
    assert_eq!(
        get(&format!("{}/api/openapi.json", server.base)).unwrap().0,
        200
    );
}

#[test]
fn acknowledged_samples_survive_kill_9_and_sigterm_flushes() {
    let dir = artifact_dir("server-crash");
    let data = dir.join("data");
    let mut server = ServerProcess::start(&data, None, &dir);
    let t0 = now_ms() - 60_000;
    let mut acked = 0;
    for i in 0..50 {
        let body =
            remote_write_body(&[("crash_m", &[("node", "n1")], &[(t0 + i * 1000, i as f64)])]);
        assert_eq!(post_write(&server.base, body, None).0, 204);
        acked += 1;
    }
    // SIGKILL: no chance to flush anything beyond what was acknowledged.
    server.guard.child.kill().unwrap();
    server.guard.child.wait().unwrap();
    let port = server.port;
    let mut server = ServerProcess::start_on(port, &data, None, &dir);
    let report = osprey()
        .args(["storage", "inspect"])
        .arg(data.join("tsdb"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&report.stdout).to_string();
    // Appending the same samples again now finds every one already there.
    for i in 0..50 {
        let body =
            remote_write_body(&[("crash_m", &[("node", "n1")], &[(t0 + i * 1000, i as f64)])]);
        assert_eq!(post_write(&server.base, body, None).0, 204);
    }
    let m = server.metrics();
    assert_eq!(
        metric_value(&m, "osprey_storage_samples_duplicate_total", &[]),
        Some(acked as f64),
        "all {acked} survived:\n{text}"
    );
    assert_eq!(
        metric_value(&m, "osprey_storage_samples_appended_total", &[]),
        Some(0.0)
    );

    // SIGTERM: a clean stop.
    let status = server
        .guard
        .terminate(Duration::from_secs(30))
        .expect("stops on SIGTERM");
    assert!(status.success(), "exit status {status}");
    let log = std::fs::read_to_string(dir.join(format!("{}.log", server.guard.name))).unwrap();
    assert!(log.contains("storage flushed"), "{log}");
}
