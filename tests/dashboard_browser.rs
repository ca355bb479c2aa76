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

/// Runs `node tests/browser/<script> args…`; fails with its output.
fn run_node(browser: &Path, script: &str, args: &[&str], dir: &Path) {
    let out = Command::new("node")
        .arg(browser.join(script))
        .args(args)
        .current_dir(browser)
        .output()
        .expect("node runs (install nodejs)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    std::fs::write(
        dir.join(format!("{script}.log")),
        format!("{stdout}\n{stderr}"),
    )
    .unwrap();
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the browser run failed (screenshots in {}):\n{stdout}\n{stderr}",
        dir.display()
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
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
    let query = format!(
        "{base}/api/v1/query?query=rate(container_cpu_usage_seconds_total%7Bid%3D%22{}%22%7D%5B1m%5D)",
        cg.path
    );
    // The loaded cgroup has a CPU rate (over a minute, so it climbs for a
    // while) before the browser looks for it.
    wait_for(
        Duration::from_secs(90),
        "a CPU rate above half a core",
        || {
            let v = get_json(&query);
            let rate: f64 = v["data"]["result"][0]["value"][1].as_str()?.parse().ok()?;
            (rate > 0.5).then_some(())
        },
    );

    run_node(
        &browser,
        "e2e.mjs",
        &[base.as_str(), dir.to_str().unwrap(), "e2e-node", &cg.path],
        &dir,
    );
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

fn hash_password(password: &str) -> String {
    use std::io::Write;
    let mut child = osprey()
        .arg("hash-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn login_and_roles_in_chromium() {
    let browser = browser_tools();
    let dir = artifact_dir("dashboard-browser-login");
    let config = dir.join("osprey.toml");
    let token = "admin-token-0123456789abcdef";
    std::fs::write(
        &config,
        format!(
            "[[server.users]]\nname = \"vic\"\npassword_hash = {:?}\nrole = \"read\"\n\n\
             [[server.tokens]]\nname = \"ops\"\ntoken = {token:?}\nrole = \"admin\"\n",
            hash_password("viewer's password")
        ),
    )
    .unwrap();
    let server = ServerProcess::start(&dir.join("data"), Some(&config), &dir);
    run_node(
        &browser,
        "login.mjs",
        &[
            &server.base,
            dir.to_str().unwrap(),
            "viewer's password",
            token,
        ],
        &dir,
    );
    for shot in ["login", "viewer"] {
        assert!(
            dir.join(format!("{shot}.png")).exists(),
            "screenshot {shot}"
        );
    }
}
