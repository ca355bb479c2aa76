//! The dashboard in real headless Chromium (Debian's `chromium`, driven by
//! playwright-core from `tests/browser`) against a live `osprey up` with a
//! real cgroup under CPU load. The browser steps are in
//! `tests/browser/e2e.mjs`; screenshots go to the test's artefact
//! directory. A missing Chromium or playwright-core fails the test:
//! `.ci/run` installs both.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

/// Chromium and the node driver, or a loud failure saying how to get them.
pub fn browser_tools() -> std::path::PathBuf {
    let chromium = std::env::var("OSPREY_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "Chromium is missing at {chromium}: `apt-get install chromium` (.ci/run does it)"
    );
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run `npm ci` in {} (.ci/run does it)",
        dir.display()
    );
    dir
}

#[test]
fn dashboard_end_to_end_in_chromium() {
    let browser = browser_tools();
    let dir = artifact_dir("dashboard-browser");
    let cg = RealCgroup::create("dash");
    cg.set("cpu", "cpu.shares", "262144");
    let _spin = cg.spawn(
        "nice",
        &["-n", "-19", "sh", "-c", "while :; do :; done"],
        &dir,
        "spin",
    );
    let (port, agent_port) = (free_port(), free_port());
    let mut cmd = osprey();
    cmd.args(["up", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--agent-listen", &format!("127.0.0.1:{agent_port}")])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--interval", "1s", "--node-name", "e2e-node"]);
    let _up = ChildGuard::spawn(cmd, "up", &dir);
    let base = format!("http://127.0.0.1:{port}");
    wait_for(Duration::from_secs(60), "osprey up to be ready", || {
        get(&format!("{base}/readyz")).filter(|(s, _)| *s == 200)
    });
    // The loaded cgroup has a CPU rate before the browser looks for it.
    let query = format!(
        "{base}/api/v1/query?query=rate(container_cpu_usage_seconds_total%7Bid%3D%22{}%22%7D%5B1m%5D)",
        cg.path
    );
    wait_for(Duration::from_secs(60), "a CPU rate for the cgroup", || {
        let v = get_json(&query);
        v["data"]["result"]
            .as_array()
            .filter(|r| !r.is_empty())
            .map(|_| ())
    });

    let out = Command::new("node")
        .arg(browser.join("e2e.mjs"))
        .args([base.as_str(), dir.to_str().unwrap(), "e2e-node", &cg.path])
        .current_dir(&browser)
        .output()
        .expect("node runs (install nodejs)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    std::fs::write(dir.join("e2e.log"), format!("{stdout}\n{stderr}")).unwrap();
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the browser run failed (screenshots in {}):\n{stdout}\n{stderr}",
        dir.display()
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    for shot in [
        "overview",
        "node",
        "container",
        "logs",
        "dashboard",
        "imported",
    ] {
        assert!(
            dir.join(format!("{shot}.png")).exists(),
            "screenshot {shot}"
        );
    }
}
