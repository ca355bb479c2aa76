//! The front-end's pure modules (Markdown sanitiser, units, times, PromQL
//! completion and builder, thresholds, log filters) under Node's test
//! runner: `node --test dashboard/web/test/`.

use std::process::Command;

#[test]
fn front_end_units_pass_under_node() {
    let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboard/web");
    let out = Command::new("node")
        .args(["--test", "test/"])
        .current_dir(&web)
        .output()
        .expect("node runs (install nodejs)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let passed = stdout
        .lines()
        .find_map(|l| l.strip_prefix("# pass "))
        .and_then(|n| n.trim().parse::<u32>().ok())
        .unwrap_or(0);
    assert!(passed >= 7, "expected the front-end tests to run: {stdout}");
}
