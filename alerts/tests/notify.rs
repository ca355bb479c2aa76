//! Routing, grouping and the notification log: group_wait, dedup, repeat,
//! resolved notices, silences, restarts (the log reloaded), and the
//! webhook payload's format; persisted state and history on disk.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use osprey_alerts::alert::{Alert, AlertState};
use osprey_alerts::labels::LabelSet;
use osprey_alerts::matcher::Matcher;
use osprey_alerts::notify::Notification;
use osprey_alerts::notify::dispatch::Dispatcher;
use osprey_alerts::notify::route::Route;
use osprey_alerts::notify::webhook::{payload, signature};
use osprey_alerts::silence::Silence;
use osprey_alerts::state::{HistoryEntry, HistoryEvent, HistoryLog, StateDir};
use serde_json::json;

const T0: i64 = 1_700_000_000_000;
const S: i64 = 1000;

fn alert(name: &str, pod: &str, state: AlertState) -> Alert {
    let labels: LabelSet = [
        ("alertname".to_string(), name.to_string()),
        ("pod".to_string(), pod.to_string()),
        ("team".to_string(), "db".to_string()),
    ]
    .into();
    Alert {
        labels,
        annotations: [("summary".to_string(), "busy".to_string())].into(),
        rule_id: name.to_lowercase(),
        state,
        value: 1.0,
        active_at: T0,
        fired_at: Some(T0),
        resolved_at: (state == AlertState::Resolved).then_some(T0 + 60 * S),
        keep_firing_since: None,
        flips: Vec::new(),
        flapping: false,
        generator_url: "http://x/graph".into(),
        chart_query: "cpu".into(),
        chart_threshold: None,
        channels: Vec::new(),
    }
}

fn route() -> Route {
    serde_json::from_value(json!({
        "receiver": "default",
        "group_by": ["alertname"],
        "group_wait": "30s",
        "group_interval": "5m",
        "repeat_interval": "4h",
        "routes": [
            {"matchers": ["team=\"db\""], "receiver": "db-oncall", "continue": true},
            {"matchers": ["team=~\"db|web\""], "receiver": "team-mail"}
        ]
    }))
    .unwrap()
}

fn flush(d: &mut Dispatcher, now: i64) -> Vec<Notification> {
    d.flush_due(now, &[], |_| true)
}

#[test]
fn routes_match_in_order_with_continue() {
    let r = route();
    let receivers: Vec<String> = r
        .resolve(&alert("A", "p", AlertState::Firing).labels)
        .into_iter()
        .map(|o| o.receiver)
        .collect();
    assert_eq!(receivers, vec!["db-oncall", "team-mail"]);
    let mut other = alert("A", "p", AlertState::Firing).labels;
    other.insert("team".into(), "ops".into());
    let receivers: Vec<String> = r.resolve(&other).into_iter().map(|o| o.receiver).collect();
    assert_eq!(
        receivers,
        vec!["default"],
        "no child matches: the root handles it"
    );
    let bad: Route =
        serde_json::from_value(json!({"group_interval": "5m", "repeat_interval": "1m"})).unwrap();
    assert!(bad.validate().is_err());
}

#[test]
fn group_wait_then_dedup_then_repeat() {
    let mut d = Dispatcher::new(route(), Vec::new(), "http://osprey".into());
    let a = alert("HighCPU", "a", AlertState::Firing);
    d.update([&a], T0);
    assert!(
        flush(&mut d, T0 + 29 * S).is_empty(),
        "group_wait holds the first notice"
    );
    let ns = flush(&mut d, T0 + 30 * S);
    assert_eq!(ns.len(), 2, "one per receiver");
    for n in &ns {
        assert_eq!(n.reason, "first notification");
        assert_eq!(n.status, "firing");
        d.delivered(n, T0 + 30 * S);
    }
    // Nothing changed: nothing at the next interval.
    assert!(flush(&mut d, T0 + 330 * S).is_empty());
    // A second alert in the group: "new alerts added" at the next interval.
    let b = alert("HighCPU", "b", AlertState::Firing);
    d.update([&a, &b], T0 + 400 * S);
    assert!(
        flush(&mut d, T0 + 400 * S).is_empty(),
        "waits for the group interval"
    );
    let ns = flush(&mut d, T0 + 630 * S);
    assert_eq!(ns.len(), 2);
    assert!(
        ns.iter()
            .all(|n| n.reason == "new alerts added" && n.alerts.len() == 2)
    );
    for n in &ns {
        d.delivered(n, T0 + 630 * S);
    }
    // Unchanged for the repeat interval: repeated.
    let later = T0 + 630 * S + 4 * 3600 * S;
    let ns = flush(&mut d, later + 300 * S);
    assert!(
        ns.iter().all(|n| n.reason == "repeat interval elapsed"),
        "{ns:?}"
    );
    assert_eq!(ns.len(), 2);
}

#[test]
fn an_alert_resolving_within_group_wait_is_never_notified() {
    let mut d = Dispatcher::new(route(), Vec::new(), String::new());
    d.update([&alert("A", "a", AlertState::Firing)], T0);
    d.update([&alert("A", "a", AlertState::Resolved)], T0 + 10 * S);
    assert!(flush(&mut d, T0 + 30 * S).is_empty());
}

#[test]
fn resolved_notices_and_send_resolved() {
    let mut d = Dispatcher::new(route(), Vec::new(), String::new());
    let (a, b) = (
        alert("A", "a", AlertState::Firing),
        alert("A", "b", AlertState::Firing),
    );
    d.update([&a, &b], T0);
    for n in flush(&mut d, T0 + 30 * S) {
        d.delivered(&n, T0 + 30 * S);
    }
    // One of two resolves: "some alerts resolved" only where wanted.
    let b_res = alert("A", "b", AlertState::Resolved);
    d.update([&a, &b_res], T0 + 100 * S);
    let ns = d.flush_due(T0 + 330 * S, &[], |r| r == "db-oncall");
    assert_eq!(ns.len(), 1, "team-mail does not send resolved");
    assert_eq!(ns[0].receiver, "db-oncall");
    assert_eq!(ns[0].reason, "some alerts resolved");
    assert_eq!(ns[0].status, "firing");
    d.delivered(&ns[0], T0 + 330 * S);
    // All resolved: sent to both, even without send_resolved (closes the
    // group), but only the wanting channel gets the resolved alerts.
    let a_res = alert("A", "a", AlertState::Resolved);
    d.update([&a_res, &b_res], T0 + 400 * S);
    let ns = d.flush_due(T0 + 630 * S, &[], |r| r == "db-oncall");
    assert_eq!(ns.len(), 1, "{ns:?}");
    assert_eq!(ns[0].reason, "all alerts resolved");
    assert_eq!(ns[0].status, "resolved");
    d.delivered(&ns[0], T0 + 630 * S);
    assert!(
        d.flush_due(T0 + 930 * S, &[], |r| r == "db-oncall")
            .is_empty(),
        "said once"
    );
}

#[test]
fn a_restart_with_the_log_sends_nothing_twice_and_failures_are_retried() {
    let mut d = Dispatcher::new(route(), Vec::new(), String::new());
    let a = alert("A", "a", AlertState::Firing);
    d.update([&a], T0);
    let ns = flush(&mut d, T0 + 30 * S);
    d.delivered(&ns[0], T0 + 30 * S);
    // The second receiver's delivery failed: retried at the next interval.
    d.failed(&ns[1]);
    let log = d.nflog();
    let log_json = serde_json::to_string(&log).unwrap();

    let mut restarted = Dispatcher::new(
        route(),
        serde_json::from_str(&log_json).unwrap(),
        String::new(),
    );
    restarted.update([&a], T0 + 40 * S);
    assert!(flush(&mut restarted, T0 + 40 * S).is_empty());
    // The receiver the log has never delivered to starts a fresh group
    // (group_wait); the delivered one waits its interval and has nothing new.
    let ns = flush(&mut restarted, T0 + 70 * S);
    assert_eq!(ns.len(), 1, "only the failed receiver is due again: {ns:?}");
    assert_eq!(ns[0].receiver, "team-mail");
    assert!(
        flush(&mut restarted, T0 + 400 * S)
            .iter()
            .all(|n| n.receiver != "db-oncall"),
        "the delivered one is not repeated"
    );
}

#[test]
fn silences_mute_matching_alerts_while_active() {
    let mut d = Dispatcher::new(route(), Vec::new(), String::new());
    let a = alert("A", "a", AlertState::Firing);
    let s = Silence {
        id: "s1".into(),
        matchers: vec![Matcher::parse("pod=\"a\"").unwrap()],
        starts_at: Utc.timestamp_millis_opt(T0).unwrap(),
        ends_at: Utc.timestamp_millis_opt(T0 + 3600 * S).unwrap(),
        created_by: "me".into(),
        comment: "maintenance".into(),
    };
    d.update([&a], T0);
    assert!(
        d.flush_due(T0 + 30 * S, std::slice::from_ref(&s), |_| true)
            .is_empty()
    );
    // After it ends, the alert is notified.
    let after = T0 + 3600 * S + 1;
    let active: Vec<Silence> = [s.clone()]
        .into_iter()
        .filter(|x| x.mutes(&a.labels, Utc.timestamp_millis_opt(after).unwrap()))
        .collect();
    assert!(active.is_empty());
    assert_eq!(d.flush_due(after + 330 * S, &active, |_| true).len(), 2);
    let bad = Silence {
        ends_at: s.starts_at,
        ..s
    };
    assert!(bad.validate().is_err());
}

#[test]
fn webhook_payload_is_alertmanager_v4() {
    let firing = alert("DiskFull", "a", AlertState::Firing);
    let resolved = alert("DiskFull", "b", AlertState::Resolved);
    let n = Notification {
        receiver: "team.db".into(),
        group_key: "{}/{team=\"db\"}:{alertname=\"DiskFull\"}".into(),
        group_labels: [("alertname".to_string(), "DiskFull".to_string())].into(),
        status: "firing".into(),
        reason: "new alerts added".into(),
        alerts: vec![firing.clone(), resolved],
        external_url: "http://osprey".into(),
        at_ms: T0,
    };
    let p = payload(&n, "team.db", 0);
    assert_eq!(p["version"], "4");
    assert_eq!(
        p["receiver"], "team\\.db",
        "QuoteMeta'd as Alertmanager does"
    );
    assert_eq!(p["status"], "firing");
    assert_eq!(p["truncatedAlerts"], 0);
    assert_eq!(
        p["commonLabels"],
        json!({"alertname": "DiskFull", "team": "db"})
    );
    assert_eq!(p["commonAnnotations"], json!({"summary": "busy"}));
    assert_eq!(p["notification_reason"], "new alerts added");
    assert_eq!(p["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(p["alerts"][0]["startsAt"], "2023-11-14T22:13:20Z");
    assert_eq!(p["alerts"][1]["status"], "resolved");
    assert_eq!(p["alerts"][1]["endsAt"], "2023-11-14T22:14:20Z");
    assert_eq!(p["alerts"][0]["fingerprint"], firing.fingerprint());
    let t = payload(&n, "x", 1);
    assert_eq!(t["truncatedAlerts"], 1);
    assert_eq!(t["alerts"].as_array().unwrap().len(), 1);
    // RFC 4231 test case 2.
    assert_eq!(
        signature("Jefe", b"what do ya want for nothing?"),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[test]
fn state_files_are_checked_and_history_survives_a_torn_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateDir::open(dir.path()).unwrap();
    assert_eq!(store.load::<Vec<u32>>("x.json").unwrap(), None);
    store.save("x.json", &vec![1u32, 2, 3]).unwrap();
    assert_eq!(
        store.load::<Vec<u32>>("x.json").unwrap(),
        Some(vec![1, 2, 3])
    );
    // A flipped byte is detected, not half-read.
    let path = dir.path().join("x.json");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 2;
    bytes[last] = b'9';
    std::fs::write(&path, bytes).unwrap();
    let err = store.load::<Vec<u32>>("x.json").unwrap_err().to_string();
    assert!(err.contains("damaged"), "{err}");

    let mut log = HistoryLog::open(dir.path(), 1 << 20).unwrap();
    let entry = |i: i64| HistoryEntry {
        at_ms: T0 + i,
        event: HistoryEvent::Transition {
            rule_id: "r".into(),
            labels: LabelSet::new(),
            from: None,
            to: Some(AlertState::Firing),
            value: i as f64,
        },
    };
    log.append(&[entry(1), entry(2)]).unwrap();
    // A crash mid-write leaves a torn line; later entries still count.
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("history.log"))
        .unwrap()
        .write_all(b"deadbeef {\"at_ms\":")
        .unwrap();
    drop(log);
    let mut log = HistoryLog::open(dir.path(), 1 << 20).unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("history.log"))
        .unwrap()
        .write_all(b"\n")
        .unwrap();
    log.append(&[entry(3)]).unwrap();
    let got: Vec<i64> = log
        .read(10, |_| true)
        .unwrap()
        .iter()
        .map(|e| e.at_ms - T0)
        .collect();
    assert_eq!(got, vec![3, 2, 1], "newest first, torn line skipped");
    let _ = Duration::ZERO;
}
