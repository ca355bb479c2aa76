//! The alerting pages in real headless Chromium (Debian's `chromium`,
//! driven by playwright-core from `tests/browser`) against a live
//! `osprey server` (an admin and a read token) holding data pushed by
//! remote write, and a real webhook receiver for the channel's test
//! notification: a plateau over the
//! threshold two hours ago and another in the last minutes. The browser
//! steps are in `tests/browser/alerts.mjs`; screenshots go to the test's
//! artefact directory. A missing Chromium or playwright-core fails the
//! test: `.ci/run` installs both.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use common::*;

const MIN: i64 = 60_000;

/// A real HTTP webhook receiver (axum on its own thread): every body
/// posted to `/hook`, answered 200.
fn start_receiver() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let hits: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let state = hits.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new().route(
                "/hook",
                axum::routing::post(move |body: axum::body::Bytes| async move {
                    state
                        .lock()
                        .unwrap()
                        .push(serde_json::from_slice(&body).unwrap_or_default());
                    axum::http::StatusCode::OK
                }),
            );
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(l, app).await.unwrap();
        });
    });
    (url, hits)
}

#[test]
fn alert_pages_in_chromium() {
    let chromium = std::env::var("OSPREY_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "Chromium is missing at {chromium}: `apt-get install chromium` (.ci/run does it)"
    );
    let browser = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        browser.join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run `npm ci` in {} (.ci/run does it)",
        browser.display()
    );
    let dir = artifact_dir("alerts-browser");
    let (hook, hits) = start_receiver();
    let (admin, reader) = (
        "admin-token-0123456789abcdef",
        "read-token-0123456789abcdef",
    );
    let config = dir.join("osprey.toml");
    std::fs::write(
        &config,
        format!(
            "[[server.tokens]]\nname = \"ops\"\ntoken = {admin:?}\nrole = \"admin\"\n\n\
             [[server.tokens]]\nname = \"viewer\"\ntoken = {reader:?}\nrole = \"read\"\n"
        ),
    )
    .unwrap();
    let server = ServerProcess::start(&dir.join("data"), Some(&config), &dir);

    // Three hours of `load` every 30 s: pod `busy` is 90 during 40 minutes
    // from two hours ago and in the last 10 minutes, 10 otherwise; pod
    // `idle` is always 10 (outside the rule's scope anyway).
    let now = now_ms();
    let plateau = (now - 120 * MIN) - (now - 120 * MIN).rem_euclid(MIN);
    let plateau_end = plateau + 40 * MIN;
    // On the 30 s grid, so that the plateau's first and last samples are
    // exactly at its edges (the preview's evaluations then see them within
    // one step).
    let first = (now - 180 * MIN) - (now - 180 * MIN).rem_euclid(30_000);
    let times: Vec<i64> = (0..=360).map(|i| first + i * 30_000).collect();
    let busy: Vec<(i64, f64)> = times
        .iter()
        .map(|&t| {
            let hot = (plateau..plateau_end).contains(&t) || t >= now - 10 * MIN;
            (t, if hot { 90.0 } else { 10.0 })
        })
        .collect();
    let idle: Vec<(i64, f64)> = times.iter().map(|&t| (t, 10.0)).collect();
    let (status, body) = post_write(
        &server.base,
        remote_write_body(&[
            ("load", &[("pod", "busy")], &busy),
            ("load", &[("pod", "idle")], &idle),
        ]),
        Some(admin),
    );
    assert!(status < 300, "remote write: {status} {body}");

    let out = Command::new("node")
        .arg(browser.join("alerts.mjs"))
        .args([
            server.base.as_str(),
            dir.to_str().unwrap(),
            &plateau.to_string(),
            &plateau_end.to_string(),
            admin,
            reader,
            &hook,
        ])
        .current_dir(&browser)
        .output()
        .expect("node runs (install nodejs)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    std::fs::write(dir.join("alerts.mjs.log"), format!("{stdout}\n{stderr}")).unwrap();
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the browser run failed (screenshots in {}):\n{stdout}\n{stderr}",
        dir.display()
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    // The "Test" button's notification reached the receiver, in
    // Alertmanager's webhook format.
    let hits = hits.lock().unwrap();
    assert!(
        hits.iter().any(|h| h["version"] == "4"
            && h["alerts"][0]["labels"]["alertname"] == "OspreyTestNotification"),
        "{hits:?}"
    );
    for shot in ["preview", "policies", "silences", "history", "viewer"] {
        assert!(
            dir.join(format!("{shot}.png")).exists(),
            "screenshot {shot}"
        );
    }
}
