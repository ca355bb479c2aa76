//! Forwarding to a real Alertmanager (Debian's `prometheus-alertmanager`,
//! installed by `.ci/run`): a firing alert shows up in Alertmanager's own
//! API with its labels and source link; deleting the rule resolves it
//! there too.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

fn am_alerts(base: &str) -> Vec<Value> {
    get(&format!("{base}/api/v2/alerts"))
        .filter(|(s, _)| *s == 200)
        .and_then(|(_, b)| serde_json::from_str::<Vec<Value>>(&b).ok())
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a["labels"]["alertname"] == "AlwaysOn")
        .collect()
}

#[test]
fn alerts_are_forwarded_to_alertmanager_and_resolved_there() {
    let dir = artifact_dir("alerts-alertmanager");
    let am_port = free_port();
    let am_config = dir.join("alertmanager.yml");
    std::fs::write(
        &am_config,
        "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n",
    )
    .unwrap();
    let mut cmd = Command::new("prometheus-alertmanager");
    cmd.arg(format!("--config.file={}", am_config.display()))
        .arg(format!("--storage.path={}", dir.join("am-data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
        .arg("--cluster.listen-address=");
    let _am = ChildGuard::spawn(cmd, "alertmanager", &dir);
    let am = format!("http://127.0.0.1:{am_port}");
    wait_for(
        Duration::from_secs(60),
        "Alertmanager to be ready (prometheus-alertmanager, installed by .ci/run)",
        || get(&format!("{am}/-/ready")).filter(|(s, _)| *s == 200),
    );

    let config = dir.join("osprey.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[server.alerting]
evaluation_interval = "1s"
external_url = "http://osprey.am.test"

[server.alerting.route]
receiver = "am"
group_wait = "0s"
group_interval = "1s"
repeat_interval = "1m"

[[server.alerting.channels]]
id = "am"
type = "alertmanager"
url = "{am}"
"#
        ),
    )
    .unwrap();
    let server = ServerProcess::start(&dir.join("data"), Some(&config), &dir);
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/alerting/rules", server.base))
        .json(&json!({
            "id": "always", "name": "AlwaysOn", "interval": "1s",
            "condition": {"kind": "promql", "expr": "vector(1)"},
            "labels": {"severity": "info"},
            "annotations": {"summary": "always on"}
        }))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);

    let a = wait_for(Duration::from_secs(30), "the alert in Alertmanager", || {
        am_alerts(&am).into_iter().next()
    });
    assert_eq!(a["labels"]["severity"], "info");
    assert_eq!(a["annotations"]["summary"], "always on");
    assert_eq!(a["status"]["state"], "active");
    assert!(
        a["generatorURL"]
            .as_str()
            .unwrap()
            .starts_with("http://osprey.am.test/graph?g0.expr=vector"),
        "{a}"
    );
    assert_eq!(a["receivers"][0]["name"], "blackhole");

    let resp = reqwest::blocking::Client::new()
        .delete(format!("{}/api/v1/alerting/rules/always", server.base))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    wait_for(
        Duration::from_secs(30),
        "the alert resolved in Alertmanager",
        || am_alerts(&am).is_empty().then_some(()),
    );
}
