//! Alerting end to end with real parts: `osprey up` (server + agent), a
//! real cgroup under CPU load, a real SMTP server (Python's aiosmtpd,
//! writing each message to a Maildir) and a real HTTP receiver for
//! webhooks. A threshold rule trips; the e-mail arrives with the chart,
//! the webhook gets a signed Alertmanager v4 payload (after 500s that are
//! retried); a restart mid-alert sends nothing twice; the load stops and
//! the resolved notices arrive. A second test takes SMTP down and makes
//! the webhook hang: the failures are retried, recorded, and delivered
//! once the receivers are back.

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::*;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

const SECRET: &str = "e2e-hmac-secret";

// ---- a real SMTP server ----

struct Smtp {
    _guard: ChildGuard,
    maildir: PathBuf,
}

fn start_smtp(port: u16, dir: &Path, name: &str) -> Smtp {
    let maildir = dir.join(format!("maildir-{name}"));
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(&maildir);
    let guard = ChildGuard::spawn(cmd, &format!("smtp-{name}"), dir);
    wait_for(
        Duration::from_secs(30),
        "aiosmtpd to listen (installed by .ci/run: pip install aiosmtpd)",
        || TcpStream::connect(("127.0.0.1", port)).ok(),
    );
    Smtp {
        _guard: guard,
        maildir,
    }
}

/// Every message in the Maildir, parsed by Python's `email` package:
/// subject, text body and the parts' types, file names and first bytes.
fn mails(maildir: &Path) -> Vec<Value> {
    let mut files: Vec<PathBuf> = ["new", "cur"]
        .iter()
        .filter_map(|d| std::fs::read_dir(maildir.join(d)).ok())
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    files
        .iter()
        .map(|f| {
            let out = Command::new("python3")
                .arg("-c")
                .arg(
                    r#"
import email, json, sys
m = email.message_from_binary_file(open(sys.argv[1], 'rb'))
parts = []
text = ''
for p in m.walk():
    if p.is_multipart():
        continue
    body = p.get_payload(decode=True) or b''
    if p.get_content_type() == 'text/plain':
        text = body.decode('utf-8', 'replace')
    parts.append({'type': p.get_content_type(), 'filename': p.get_filename(),
                  'size': len(body), 'head': body[:8].hex()})
print(json.dumps({'subject': m['Subject'], 'to': m['To'], 'text': text, 'parts': parts}))
"#,
                )
                .arg(f)
                .output()
                .expect("python3 runs");
            serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("cannot parse {}: {e}", f.display()))
        })
        .collect()
}

fn subjects(maildir: &Path) -> Vec<String> {
    mails(maildir)
        .iter()
        .map(|m| m["subject"].as_str().unwrap_or("").to_string())
        .collect()
}

// ---- a real HTTP receiver for webhooks ----

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Answer 200.
    Ok,
    /// Answer 500 this many more times, then 200.
    Fail(u32),
    /// Never answer in time.
    Hang,
}

#[derive(Clone)]
struct Hit {
    status: u16,
    body: Value,
    raw: Vec<u8>,
    signature: Option<String>,
}

#[derive(Clone)]
struct Receiver {
    url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    mode: Arc<Mutex<Mode>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mode = *r.mode.lock().unwrap();
    let status = match mode {
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            return StatusCode::OK;
        }
        Mode::Fail(n) if n > 0 => {
            *r.mode.lock().unwrap() = Mode::Fail(n - 1);
            500
        }
        _ => 200,
    };
    r.hits.lock().unwrap().push(Hit {
        status,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        raw: body.to_vec(),
        signature: headers
            .get("x-osprey-signature")
            .and_then(|v| v.to_str().ok())
            .map(String::from),
    });
    StatusCode::from_u16(status).unwrap()
}

fn start_receiver(mode: Mode) -> Receiver {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let r = Receiver {
        url: format!("http://{}/hook", listener.local_addr().unwrap()),
        hits: Arc::default(),
        mode: Arc::new(Mutex::new(mode)),
    };
    let state = r.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new()
                .route("/hook", axum::routing::post(receive))
                .with_state(state);
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(l, app).await.unwrap();
        });
    });
    r
}

impl Receiver {
    fn delivered(&self) -> Vec<Hit> {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.status == 200)
            .cloned()
            .collect()
    }
    fn refused(&self) -> usize {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.status != 200)
            .count()
    }
}

// ---- the server ----

fn config(dir: &Path, smtp_port: u16, hook: &str, retry: &str) -> PathBuf {
    let path = dir.join("osprey.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[server.alerting]
evaluation_interval = "1s"
external_url = "http://osprey.e2e.test"

[server.alerting.retry]
{retry}

[server.alerting.route]
group_wait = "1s"
group_interval = "2s"
repeat_interval = "1h"

[[server.alerting.channels]]
id = "mail"
type = "email"
to = ["ops@example.test"]
from = "Osprey <osprey@example.test>"
smarthost = "127.0.0.1:{smtp_port}"
security = "none"

[[server.alerting.channels]]
id = "hook"
type = "webhook"
url = "{hook}"
hmac_secret = "{SECRET}"
"#
        ),
    )
    .unwrap();
    path
}

fn start_up(port: u16, agent_port: u16, data: &Path, config: &Path, dir: &Path) -> ChildGuard {
    let mut cmd = osprey();
    cmd.arg("--config")
        .arg(config)
        .args(["up", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--agent-listen", &format!("127.0.0.1:{agent_port}")])
        .arg("--data-dir")
        .arg(data)
        .args(["--interval", "1s", "--node-name", "alerts-node"]);
    let guard = ChildGuard::spawn(cmd, &format!("up-{port}"), dir);
    wait_for(Duration::from_secs(60), "osprey up to be ready", || {
        get(&format!("http://127.0.0.1:{port}/readyz")).filter(|(s, _)| *s == 200)
    });
    guard
}

fn start_server(port: u16, data: &Path, config: &Path, dir: &Path) -> ServerProcess {
    ServerProcess::start_on(port, data, Some(config), dir)
}

fn post_json(url: &str, body: &Value) -> (u16, Value) {
    let resp = reqwest::blocking::Client::new()
        .post(url)
        .json(body)
        .send()
        .expect("server answers");
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

fn history(base: &str) -> Vec<Value> {
    get_json(&format!("{base}/api/v1/alerting/history?limit=1000"))["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn check_signature(hit: &Hit) {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&hit.raw);
    let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(
        hit.signature.as_deref(),
        Some(want.as_str()),
        "HMAC signature"
    );
}

fn check_v4(p: &Value, status: &str) {
    assert_eq!(p["version"], "4");
    assert_eq!(p["status"], status, "{p}");
    assert_eq!(p["receiver"], "hook");
    assert!(
        p["groupKey"]
            .as_str()
            .unwrap()
            .contains("alertname=\"CgroupBusy\""),
        "{p}"
    );
    assert_eq!(p["groupLabels"]["alertname"], "CgroupBusy");
    assert_eq!(p["commonLabels"]["severity"], "page");
    assert_eq!(p["externalURL"], "http://osprey.e2e.test");
    assert_eq!(p["truncatedAlerts"], 0);
    assert!(p["notification_reason"].is_string());
    let alerts = p["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{p}");
    let a = &alerts[0];
    assert_eq!(a["status"], status);
    assert_eq!(a["labels"]["alertname"], "CgroupBusy");
    assert!(
        a["labels"]["id"]
            .as_str()
            .unwrap()
            .starts_with("/osprey-e2e-")
    );
    assert!(
        a["annotations"]["summary"]
            .as_str()
            .unwrap()
            .contains("CPU")
    );
    let fp = a["fingerprint"].as_str().unwrap();
    assert!(
        fp.len() == 16 && fp.chars().all(|c| c.is_ascii_hexdigit()),
        "{fp}"
    );
    assert!(chrono::DateTime::parse_from_rfc3339(a["startsAt"].as_str().unwrap()).is_ok());
    if status == "firing" {
        assert_eq!(a["endsAt"], "0001-01-01T00:00:00Z");
    } else {
        let ends = chrono::DateTime::parse_from_rfc3339(a["endsAt"].as_str().unwrap()).unwrap();
        let starts = chrono::DateTime::parse_from_rfc3339(a["startsAt"].as_str().unwrap()).unwrap();
        assert!(ends > starts);
    }
    assert!(
        a["generatorURL"]
            .as_str()
            .unwrap()
            .starts_with("http://osprey.e2e.test/graph?g0.expr=")
    );
}

#[test]
fn a_loaded_cgroup_trips_a_threshold_rule_by_email_and_webhook_once_across_a_restart() {
    let dir = artifact_dir("alerts-e2e");
    let data = dir.join("data");
    let smtp_port = free_port();
    let smtp = start_smtp(smtp_port, &dir, "main");
    // The first two webhook deliveries are refused: retried, then delivered.
    let hook = start_receiver(Mode::Fail(2));
    let retry =
        "max_attempts = 5\ninitial_backoff = \"200ms\"\nmax_backoff = \"1s\"\ntimeout = \"5s\"";
    let cfg = config(&dir, smtp_port, &hook.url, retry);

    let cg = RealCgroup::create("alert");
    cg.set("cpu", "cpu.shares", "262144");
    let mut spin = cg.spawn(
        "nice",
        &["-n", "-19", "sh", "-c", "while :; do :; done"],
        &dir,
        "spin",
    );
    let (port, agent_port) = (free_port(), free_port());
    let mut up = start_up(port, agent_port, &data, &cfg, &dir);
    let base = format!("http://127.0.0.1:{port}");

    let rule = json!({
        "id": "busy",
        "name": "CgroupBusy",
        "condition": {
            "kind": "threshold",
            "query": format!("rate(container_cpu_usage_seconds_total{{id=\"{}\"}}[5s])", cg.path),
            "op": "above",
            "threshold": 0.5
        },
        "interval": "1s",
        "for": "2s",
        // Bridges the seconds the restart below leaves without fresh samples.
        "keep_firing_for": "15s",
        "labels": {"severity": "page"},
        "annotations": {"summary": "CPU of {{ $labels.id }} is {{ $value | humanize }} cores"},
        "channels": ["mail", "hook"]
    });
    let (status, body) = post_json(&format!("{base}/api/v1/alerting/rules"), &rule);
    assert_eq!(status, 201, "{body}");

    // The e-mail: subject, labels and value in the text, the chart attached.
    let mail = wait_for(Duration::from_secs(90), "the firing e-mail", || {
        mails(&smtp.maildir).into_iter().next()
    });
    let subject = mail["subject"].as_str().unwrap();
    assert!(subject.starts_with("[FIRING:1] CgroupBusy"), "{subject}");
    assert_eq!(mail["to"], "ops@example.test");
    let text = mail["text"].as_str().unwrap();
    assert!(
        text.contains(&cg.path) && text.contains("severity = page"),
        "{text}"
    );
    assert!(
        text.contains("http://osprey.e2e.test/alerts"),
        "dashboard link: {text}"
    );
    let parts = mail["parts"].as_array().unwrap();
    assert!(parts.iter().any(|p| p["type"] == "text/html"), "{parts:?}");
    let chart = parts
        .iter()
        .find(|p| p["type"] == "image/png")
        .unwrap_or_else(|| panic!("no PNG chart in {parts:?}"));
    assert_eq!(chart["filename"], "chart.png");
    assert_eq!(chart["head"], "89504e470d0a1a0a", "PNG signature");
    assert!(
        chart["size"].as_u64().unwrap() > 2000,
        "a drawn chart, not a stub"
    );

    // The webhook: refused twice, retried, then a valid signed v4 payload.
    let first = wait_for(Duration::from_secs(30), "the firing webhook", || {
        hook.delivered().into_iter().next()
    });
    assert_eq!(hook.refused(), 2, "both 500s were retried");
    check_v4(&first.body, "firing");
    check_signature(&first);
    let h = history(&base);
    assert!(
        h.iter()
            .any(|e| e["kind"] == "notified" && e["receiver"] == "hook" && e["attempts"] == 3),
        "history records the delivery after 3 attempts: {h:?}"
    );

    // The Prometheus-compatible views show the firing alert.
    let alerts = get_json(&format!("{base}/api/v1/alerts"));
    assert_eq!(alerts["data"]["alerts"][0]["state"], "firing", "{alerts}");
    let rules = get_json(&format!("{base}/api/v1/rules"));
    assert_eq!(
        rules["data"]["groups"][0]["rules"][0]["state"], "firing",
        "{rules}"
    );

    // Restart mid-alert: nothing is sent twice.
    assert!(
        up.terminate(Duration::from_secs(30)).is_some(),
        "osprey up stops on SIGTERM"
    );
    let (mails_before, hooks_before) = (mails(&smtp.maildir).len(), hook.delivered().len());
    assert_eq!((mails_before, hooks_before), (1, 1));
    let restarted_at = chrono::Utc::now();
    let mut up = start_up(port, agent_port, &data, &cfg, &dir);
    // Several evaluations and group intervals (2 s) after the restart:
    wait_for(
        Duration::from_secs(60),
        "8 s of evaluations after the restart",
        || {
            let r = get_json(&format!("{base}/api/v1/alerting/rules/busy"));
            let last = r["data"]["last_evaluation"].as_str()?;
            let last = chrono::DateTime::parse_from_rfc3339(last).ok()?;
            (last > restarted_at + chrono::Duration::seconds(8) && r["data"]["state"] == "firing")
                .then_some(())
        },
    );
    assert_eq!(
        mails(&smtp.maildir).len(),
        1,
        "no e-mail re-sent after the restart"
    );
    assert_eq!(
        hook.delivered().len(),
        1,
        "no webhook re-sent after the restart"
    );

    // The load stops: resolved notices arrive, once each.
    let _ = spin.child.kill();
    let _ = spin.child.wait();
    wait_for(Duration::from_secs(90), "the resolved e-mail", || {
        subjects(&smtp.maildir)
            .iter()
            .any(|s| s.starts_with("[RESOLVED] CgroupBusy"))
            .then_some(())
    });
    let resolved = wait_for(Duration::from_secs(30), "the resolved webhook", || {
        hook.delivered()
            .into_iter()
            .find(|h| h.body["status"] == "resolved")
    });
    check_v4(&resolved.body, "resolved");
    check_signature(&resolved);
    assert_eq!(resolved.body["notification_reason"], "all alerts resolved");
    assert_eq!(
        mails(&smtp.maildir).len(),
        2,
        "{:?}",
        subjects(&smtp.maildir)
    );
    assert_eq!(hook.delivered().len(), 2);
    assert!(up.terminate(Duration::from_secs(30)).is_some());
}

#[test]
fn failed_deliveries_are_retried_recorded_and_delivered_once_the_receivers_are_back() {
    let dir = artifact_dir("alerts-e2e-failures");
    let data = dir.join("data");
    let smtp_port = free_port(); // nothing listens yet: SMTP is down
    let hook = start_receiver(Mode::Hang);
    let retry =
        "max_attempts = 2\ninitial_backoff = \"100ms\"\nmax_backoff = \"200ms\"\ntimeout = \"1s\"";
    let cfg = config(&dir, smtp_port, &hook.url, retry);
    let server = start_server(free_port(), &data, &cfg, &dir);
    let base = server.base.clone();
    let rule = json!({
        "id": "always",
        "name": "AlwaysOn",
        "condition": {"kind": "promql", "expr": "vector(1)"},
        "interval": "1s",
        "channels": ["mail", "hook"]
    });
    let (status, body) = post_json(&format!("{base}/api/v1/alerting/rules"), &rule);
    assert_eq!(status, 201, "{body}");

    let failures = |receiver: &str| -> Vec<Value> {
        history(&base)
            .into_iter()
            .filter(|e| e["kind"] == "notification_failed" && e["receiver"] == receiver)
            .collect()
    };
    let mail_fail = wait_for(
        Duration::from_secs(30),
        "the SMTP failure in the history",
        || failures("mail").into_iter().next(),
    );
    assert_eq!(mail_fail["attempts"], 2, "retried: {mail_fail}");
    assert_eq!(mail_fail["attempt_errors"].as_array().unwrap().len(), 2);
    assert!(
        mail_fail["error"].as_str().unwrap().contains("SMTP"),
        "{mail_fail}"
    );
    let hook_fail = wait_for(
        Duration::from_secs(30),
        "the webhook timeout in the history",
        || failures("hook").into_iter().next(),
    );
    assert_eq!(hook_fail["attempts"], 2, "{hook_fail}");
    assert!(
        hook_fail["error"].as_str().unwrap().contains("timed out"),
        "{hook_fail}"
    );
    // Still due: the next group interval tries again (and fails again).
    wait_for(Duration::from_secs(30), "a second failed round", || {
        (failures("mail").len() >= 2 && failures("hook").len() >= 2).then_some(())
    });

    // The receivers come back: each gets the alert exactly once.
    let smtp = start_smtp(smtp_port, &dir, "late");
    *hook.mode.lock().unwrap() = Mode::Ok;
    wait_for(
        Duration::from_secs(30),
        "the e-mail after SMTP came back",
        || (!mails(&smtp.maildir).is_empty()).then_some(()),
    );
    wait_for(
        Duration::from_secs(30),
        "the webhook after it recovered",
        || (!hook.delivered().is_empty()).then_some(()),
    );
    // Three more group intervals (2 s) pass: nothing more is sent.
    let delivered_at = chrono::Utc::now();
    wait_for(Duration::from_secs(30), "6 s of evaluations", || {
        let r = get_json(&format!("{base}/api/v1/alerting/rules/always"));
        let last =
            chrono::DateTime::parse_from_rfc3339(r["data"]["last_evaluation"].as_str()?).ok()?;
        (last > delivered_at + chrono::Duration::seconds(6)).then_some(())
    });
    let subjects_now = subjects(&smtp.maildir);
    assert_eq!(subjects_now.len(), 1, "{subjects_now:?}");
    assert!(subjects_now[0].starts_with("[FIRING:1] AlwaysOn"));
    assert_eq!(hook.delivered().len(), 1);
    assert_eq!(hook.delivered()[0].body["status"], "firing");

    // The test notification reports the channel's state.
    let (status, t) = post_json(
        &format!("{base}/api/v1/alerting/channels/mail/test"),
        &json!({}),
    );
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["data"]["delivered"], true, "{t}");
    wait_for(Duration::from_secs(10), "the test e-mail", || {
        subjects(&smtp.maildir)
            .iter()
            .any(|s| s.contains("OspreyTestNotification"))
            .then_some(())
    });
}
