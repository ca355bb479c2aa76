//! The command line: subcommands, documented options, and configuration
//! precedence (file < environment < flags).

mod common;

use common::osprey;

fn stdout_of(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().expect("running osprey");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_subcommand_has_help_and_version_prints() {
    let top = stdout_of(osprey().arg("--help"));
    for sub in ["agent", "server", "up", "version"] {
        assert!(top.contains(sub), "--help lists {sub}");
    }
    let agent = stdout_of(osprey().args(["agent", "--help"]));
    for opt in [
        "--listen",
        "--interval",
        "--cgroup-root",
        "--proc-root",
        "--docker-root",
        "--pod-log-root",
        "--remote-write",
        "--token",
        "--data-dir",
        "--containers-only",
        "--subtree",
        "--once",
        "--format",
        "--config",
        "--log-format",
        "OSPREY_INTERVAL",
    ] {
        assert!(agent.contains(opt), "agent --help documents {opt}");
    }
    for sub in ["server", "up", "storage"] {
        let help = stdout_of(osprey().args([sub, "--help"]));
        assert!(help.contains("Usage"), "{sub} --help");
    }
    let up = stdout_of(osprey().args(["up", "--help"]));
    for opt in [
        "--listen",
        "--data-dir",
        "--agent-listen",
        "--interval",
        "--cgroup-root",
    ] {
        assert!(up.contains(opt), "up --help documents {opt}");
    }
    let v = stdout_of(osprey().arg("version"));
    assert_eq!(v.trim(), format!("osprey {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn flags_override_environment_which_overrides_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("osprey.toml");
    std::fs::write(
        &file,
        "[agent]\ninterval = \"30s\"\nlisten = \"127.0.0.1:7001\"\nnode_name = \"from-file\"\ncontainers_only = true\n\n[agent.remote_write]\nurl = \"http://127.0.0.1:9/api/v1/write\"\nmemory_bytes = 1024\n",
    )
    .unwrap();
    let effective = |env: &[(&str, &str)], flags: &[&str]| -> toml::Value {
        let mut cmd = osprey();
        cmd.arg("--config")
            .arg(&file)
            .arg("agent")
            .arg("--print-config")
            .args(flags);
        for (k, v) in env {
            cmd.env(k, v);
        }
        toml::from_str(&stdout_of(&mut cmd)).unwrap()
    };
    let only_file = effective(&[], &[]);
    assert_eq!(only_file["agent"]["interval"].as_str(), Some("30s"));
    assert_eq!(only_file["agent"]["node_name"].as_str(), Some("from-file"));
    assert_eq!(only_file["agent"]["containers_only"].as_bool(), Some(true));
    assert_eq!(
        only_file["agent"]["remote_write"]["memory_bytes"].as_integer(),
        Some(1024)
    );

    let env = effective(
        &[("OSPREY_INTERVAL", "5s"), ("OSPREY_NODE_NAME", "from-env")],
        &[],
    );
    assert_eq!(env["agent"]["interval"].as_str(), Some("5s"));
    assert_eq!(env["agent"]["node_name"].as_str(), Some("from-env"));
    assert_eq!(
        env["agent"]["listen"].as_str(),
        Some("127.0.0.1:7001"),
        "untouched keys keep the file's value"
    );

    let flags = effective(
        &[("OSPREY_INTERVAL", "5s")],
        &["--interval", "2s", "--remote-write", "http://127.0.0.1:8/x"],
    );
    assert_eq!(flags["agent"]["interval"].as_str(), Some("2s"));
    assert_eq!(
        flags["agent"]["remote_write"]["url"].as_str(),
        Some("http://127.0.0.1:8/x")
    );
    assert_eq!(
        flags["agent"]["remote_write"]["memory_bytes"].as_integer(),
        Some(1024),
        "file settings kept"
    );
}

#[test]
fn a_bad_config_file_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[agent]\nintervall = \"10s\"\n").unwrap();
    let out = osprey()
        .arg("--config")
        .arg(&file)
        .args(["agent", "--once"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("intervall") && err.contains("bad.toml"),
        "error names the key and the file: {err}"
    );
}

#[test]
fn a_zero_interval_is_refused_with_a_clear_error() {
    for command in [["agent", "--once"], ["up", "--print-config"]] {
        let out = osprey()
            .args(command)
            .args(["--interval", "0s"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{command:?} ran with a 0s interval");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("interval must be longer than 0s"),
            "{command:?}: the error names the setting: {err}"
        );
    }
}

#[test]
fn json_logs_on_request() {
    let out = osprey()
        .args([
            "--log-format",
            "json",
            "agent",
            "--once",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let first = err.lines().next().expect("a log line");
    let v: serde_json::Value =
        serde_json::from_str(first).unwrap_or_else(|e| panic!("not JSON ({e}): {first}"));
    assert!(v["level"].is_string() && v["message"].is_string(), "{v}");
    let snap: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is the JSON snapshot");
    assert!(
        snap["containers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["info"]["id"] == "/")
    );
}
