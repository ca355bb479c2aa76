//! Rules defined in `[[server.alerting.rules]]`: any condition kind from
//! TOML, checked at start like API rules, read-only through the API.

mod common;

use std::sync::Arc;

use common::FixedSource;
use osprey_alerts::config::AlertingConfig;
use osprey_alerts::rule::Condition;
use osprey_alerts::service::{Alerting, ServiceError};

#[derive(serde::Deserialize)]
struct File {
    alerting: AlertingConfig,
}

fn config(text: &str) -> AlertingConfig {
    toml::from_str::<File>(text).expect("valid TOML").alerting
}

const RULES: &str = r#"
[alerting]
evaluation_interval = "1s"

[[alerting.channels]]
id = "hook"
type = "webhook"
url = "http://127.0.0.1:9/hook"

[[alerting.rules]]
name = "NodeSilent"
for = "2s"
channels = ["hook"]
labels = { severity = "page" }
condition = { kind = "absence", query = "machine_cpu_cores", duration = "5s", lookback = "10m" }

[[alerting.rules]]
id = "busy-node"
name = "NodeUnlikeItsPeers"
interval = "2s"
[alerting.rules.condition]
kind = "host_comparison"
query = "rate(container_cpu_usage_seconds_total[5s])"
group_by = ["cluster"]
step = "1s"
detector = { min_group = 3, window_ms = 10000, fraction_of_window = 0.6, abs_floor = 0.02 }
"#;

fn open(c: AlertingConfig) -> Result<Arc<Alerting>, ServiceError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    // Keep the directory for the service's life (the test's).
    std::mem::forget(dir);
    Alerting::open(c, &path, Arc::new(FixedSource::default()), None)
}

#[test]
fn config_rules_of_any_kind_load_and_are_read_only() {
    let a = open(config(RULES)).expect("the service opens");
    let rules = a.rules();
    assert_eq!(rules.len(), 2);
    let silent = a.rule("nodesilent").expect("id derived from the name");
    assert_eq!(silent.spec.origin, "config");
    assert_eq!(silent.spec.for_, std::time::Duration::from_secs(2));
    assert_eq!(silent.spec.channels, ["hook"]);
    match &silent.spec.condition {
        Condition::Absence(c) => assert_eq!(c.duration, std::time::Duration::from_secs(5)),
        other => panic!("expected an absence rule, got {other:?}"),
    }
    let busy = a.rule("busy-node").expect("explicit id kept");
    match &busy.spec.condition {
        Condition::HostComparison(c) => {
            assert_eq!(c.detector.min_group, 3);
            assert_eq!(c.detector.window_ms, 10_000);
            assert_eq!(c.group_by, ["cluster"]);
        }
        other => panic!("expected a host-comparison rule, got {other:?}"),
    }
    let err = a.update_rule("busy-node", busy.spec.clone()).unwrap_err();
    assert!(
        matches!(&err, ServiceError::ReadOnly(m) if m.contains("configuration")),
        "{err:?}"
    );
    assert!(matches!(
        a.delete_rule("nodesilent"),
        Err(ServiceError::ReadOnly(_))
    ));
}

#[test]
fn a_bad_config_rule_stops_the_start_naming_it() {
    let bad = RULES.replace("min_group = 3", "min_group = 2");
    let err = open(config(&bad)).err().expect("refused");
    let msg = err.to_string();
    assert!(
        msg.contains("NodeUnlikeItsPeers") && msg.contains("min_group"),
        "{msg}"
    );

    let no_channel = RULES.replace(r#"channels = ["hook"]"#, r#"channels = ["pager"]"#);
    let msg = open(config(&no_channel))
        .err()
        .expect("refused")
        .to_string();
    assert!(msg.contains("pager"), "{msg}");

    let twice = format!(
        "{RULES}\n[[alerting.rules]]\nid = \"busy-node\"\nname = \"Again\"\ncondition = {{ kind = \"promql\", expr = \"up == 0\" }}\n"
    );
    let msg = open(config(&twice)).err().expect("refused").to_string();
    assert!(msg.contains("busy-node") && msg.contains("twice"), "{msg}");
}
