//! TLS on every listener, with the real binary and certificates made for
//! each test (rcgen): HTTPS for clients that trust the CA and nothing for
//! those that do not or speak plain HTTP; mutual TLS; an agent shipping
//! over HTTPS, keeping its data queued while it cannot trust the server;
//! the agent's own API over HTTPS; `osprey up` with TLS; slow clients cut
//! off by the header-read timeout; bad certificate files refused at start.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use osprey_collector::fixture::{CgroupValues, FixtureTree, paths};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

/// A certificate authority made for the test; its certificate is in `pem`.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
    pem: PathBuf,
}

/// A certificate and its key, as PEM files.
struct Issued {
    cert: PathBuf,
    key: PathBuf,
}

impl Ca {
    fn new(dir: &Path, name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} CA"));
        let cert = params.self_signed(&key).unwrap();
        let pem = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&pem, cert.pem()).unwrap();
        Self { cert, key, pem }
    }

    /// A certificate for `names` (DNS names or IP addresses) signed by
    /// this CA.
    fn issue(&self, dir: &Path, name: &str, names: &[&str]) -> Issued {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        let issued = Issued {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        };
        std::fs::write(&issued.cert, cert.pem()).unwrap();
        std::fs::write(&issued.key, key.serialize_pem()).unwrap();
        issued
    }
}

/// An HTTPS client trusting only `ca` (nothing when `None`), presenting
/// `identity` when given.
fn client(ca: Option<&Path>, identity: Option<&Issued>) -> reqwest::blocking::Client {
    let mut builder = reqwest::blocking::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .timeout(Duration::from_secs(10));
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).unwrap();
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
    }
    if let Some(id) = identity {
        let mut pem = std::fs::read(&id.cert).unwrap();
        pem.extend(std::fs::read(&id.key).unwrap());
        builder = builder.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    builder.build().unwrap()
}

fn arg(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

/// A running `osprey server` on a free port.
struct Server {
    guard: ChildGuard,
    port: u16,
    base: String,
}

/// Starts `osprey --config <toml> server … args` and waits until `ready`
/// (a client the server accepts) gets 200 from `/readyz`.
fn start_server(
    dir: &Path,
    name: &str,
    toml: &str,
    args: &[String],
    ready: &reqwest::blocking::Client,
    scheme: &str,
) -> Server {
    let port = free_port();
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(&config, toml).unwrap();
    let mut cmd = osprey();
    cmd.arg("--config")
        .arg(&config)
        .args(["server", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir.join(format!("{name}-data")))
        .args(args);
    let guard = ChildGuard::spawn(cmd, name, dir);
    let base = format!("{scheme}://127.0.0.1:{port}");
    let url = format!("{base}/readyz");
    wait_for(WAIT, "the server's /readyz", || {
        ready
            .get(&url)
            .send()
            .ok()
            .filter(|r| r.status().as_u16() == 200)
    });
    Server { guard, port, base }
}

fn tls_args(cert: &Issued, client_ca: Option<&Path>) -> Vec<String> {
    let mut args = vec![
        "--tls-cert".into(),
        arg(&cert.cert),
        "--tls-key".into(),
        arg(&cert.key),
    ];
    if let Some(ca) = client_ca {
        args.extend(["--tls-client-ca".into(), arg(ca)]);
    }
    args
}

/// POSTs one sample of `tls_probe{case="<case>"}`.
fn write_probe(
    client: &reqwest::blocking::Client,
    base: &str,
    case: &str,
) -> reqwest::Result<reqwest::blocking::Response> {
    let body = remote_write_body(&[("tls_probe", &[("case", case)], &[(now_ms(), 1.0)])]);
    client
        .post(format!("{base}/api/v1/write"))
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body)
        .send()
}

/// The `case` labels of every stored `tls_probe` series.
fn probe_cases(client: &reqwest::blocking::Client, base: &str) -> Vec<String> {
    let v: Value = client
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", "tls_probe")])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(v["status"], "success", "{v}");
    let mut cases: Vec<String> = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["metric"]["case"].as_str().unwrap().to_owned())
        .collect();
    cases.sort();
    cases
}

/// The error and its causes, for matching on what went wrong.
fn chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Reads from `stream` until the peer closes it (EOF or reset); what it
/// sent and when it closed. Panics if it stays open for `limit`.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, Instant) {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (got, Instant::now()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {
                return (got, Instant::now());
            }
            Err(e) => panic!("the connection stayed open ({e}) for {limit:?}"),
        }
    }
}

/// One HTTP/1.1 response with a `Content-Length` body, read from `stream`.
fn read_response(stream: &mut TcpStream) -> String {
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).expect("a response");
        assert!(n > 0, "closed before a full response: {got:?}");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if got.len() >= end + 4 + length {
                return text;
            }
        }
    }
}

/// True when the peer has not closed `stream` (no data, no EOF yet).
fn still_open(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 1];
    let open = matches!(stream.peek(&mut buf), Err(e) if e.kind() == ErrorKind::WouldBlock);
    stream.set_nonblocking(false).unwrap();
    open
}

#[test]
fn https_serves_clients_trusting_the_ca_and_nothing_else() {
    let dir = artifact_dir("tls-https");
    let ca = Ca::new(&dir, "osprey");
    let rogue = Ca::new(&dir, "rogue");
    let cert = ca.issue(&dir, "server", &["localhost", "127.0.0.1"]);
    let trusting = client(Some(&ca.pem), None);
    let server = start_server(
        &dir,
        "server",
        "[server]\nheader_read_timeout = \"2s\"\n",
        &tls_args(&cert, None),
        &trusting,
        "https",
    );

    // A client trusting the CA writes and reads back.
    let resp = write_probe(&trusting, &server.base, "https").unwrap();
    assert_eq!(resp.status().as_u16(), 204, "{:?}", resp.text());
    assert_eq!(probe_cases(&trusting, &server.base), ["https"]);

    // Clients trusting another CA, or none, fail in the handshake.
    for (what, other) in [
        ("another CA", client(Some(&rogue.pem), None)),
        ("no CA", client(None, None)),
    ] {
        let e = write_probe(&other, &server.base, "untrusted").unwrap_err();
        let text = chain(&e);
        assert!(
            text.contains("certificate") || text.contains("UnknownIssuer"),
            "a client trusting {what} must refuse the server's certificate: {text}"
        );
    }

    // Plain HTTP to the TLS port: no HTTP answer, nothing stored.
    let body = remote_write_body(&[("tls_probe", &[("case", "plain")], &[(now_ms(), 1.0)])]);
    let mut plain = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let head = format!(
        "POST /api/v1/write HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Encoding: snappy\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // The server may close before reading all of it.
    let _ = plain.write_all(head.as_bytes());
    let _ = plain.write_all(&body);
    let (answer, _) = read_until_closed(&mut plain, WAIT);
    assert!(
        !answer.starts_with(b"HTTP/"),
        "plain HTTP got an HTTP answer: {:?}",
        String::from_utf8_lossy(&answer)
    );
    if let Some(first) = answer.first() {
        assert_eq!(*first, 0x15, "anything sent back is a TLS alert record");
    }

    // A client that connects and never starts the handshake is dropped
    // after the header-read timeout, while others are served meanwhile.
    let mut stalled = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let opened = Instant::now();
    assert_eq!(
        trusting
            .get(format!("{}/readyz", server.base))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert!(
        still_open(&stalled) || opened.elapsed() >= Duration::from_secs(2),
        "the stalled handshake was cut before the timeout"
    );
    let (_, closed) = read_until_closed(&mut stalled, WAIT);
    assert!(
        closed.duration_since(opened) >= Duration::from_millis(1900),
        "closed after {:?}, before the 2 s timeout",
        closed.duration_since(opened)
    );

    assert_eq!(
        probe_cases(&trusting, &server.base),
        ["https"],
        "only the trusted client's sample is stored"
    );
}

#[test]
fn mutual_tls_accepts_only_client_certificates_from_the_configured_ca() {
    let dir = artifact_dir("tls-mutual");
    let ca = Ca::new(&dir, "osprey");
    let rogue = Ca::new(&dir, "rogue");
    let cert = ca.issue(&dir, "server", &["127.0.0.1"]);
    let good_id = ca.issue(&dir, "agent", &["agent.example"]);
    let rogue_id = rogue.issue(&dir, "intruder", &["agent.example"]);
    let good = client(Some(&ca.pem), Some(&good_id));
    let server = start_server(
        &dir,
        "server",
        "",
        &tls_args(&cert, Some(&ca.pem)),
        &good,
        "https",
    );

    for (what, other, case) in [
        (
            "no client certificate",
            client(Some(&ca.pem), None),
            "nocert",
        ),
        (
            "a certificate from another CA",
            client(Some(&ca.pem), Some(&rogue_id)),
            "rogue",
        ),
    ] {
        let refused = write_probe(&other, &server.base, case);
        assert!(
            refused.is_err(),
            "a client with {what} must be refused, got {:?}",
            refused.map(|r| r.status())
        );
        let read = other.get(format!("{}/readyz", server.base)).send();
        assert!(read.is_err(), "{what}: /readyz answered {read:?}");
    }

    let resp = write_probe(&good, &server.base, "mtls").unwrap();
    assert_eq!(resp.status().as_u16(), 204, "{:?}", resp.text());
    assert_eq!(probe_cases(&good, &server.base), ["mtls"]);
}

/// The agent's arguments: a fixture cgroup tree, 1 s interval, its data
/// directory and API port, and `extra`.
fn agent_command(
    tree: &FixtureTree,
    root: &Path,
    port: u16,
    extra: &[String],
) -> std::process::Command {
    let mut cmd = osprey();
    cmd.args(["agent", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--interval", "1s", "--node-name", "tls-node"])
        .arg("--cgroup-root")
        .arg(tree.root())
        .arg("--rootfs")
        .arg(root.join("rootfs"))
        .arg("--docker-root")
        .arg(root.join("docker"))
        .arg("--pod-log-root")
        .arg(root.join("pods"))
        .arg("--container-log-root")
        .arg(root.join("containers"))
        .arg("--data-dir")
        .arg(root.join("agent-data"))
        .args(extra);
    cmd
}

fn fixture_tree() -> FixtureTree {
    let tree = FixtureTree::v2().unwrap();
    tree.add_cgroup(
        &paths::kubepods_systemd(
            paths::Qos::Burstable,
            &paths::pod_uid(1),
            paths::Runtime::Containerd,
            &paths::container_id(1),
        ),
        &CgroupValues::sample(1),
    )
    .unwrap();
    tree
}

/// Series of `expr` at `time` (Unix seconds; now when `None`).
fn query(
    client: &reqwest::blocking::Client,
    base: &str,
    expr: &str,
    time: Option<f64>,
) -> Vec<Value> {
    let mut req = client
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", expr)]);
    if let Some(t) = time {
        req = req.query(&[("time", t.to_string())]);
    }
    let v: Value = req.send().unwrap().json().unwrap();
    assert_eq!(v["status"], "success", "{v}");
    v["data"]["result"].as_array().unwrap().clone()
}

#[test]
fn agent_ships_over_mutual_tls_and_keeps_its_queue_while_it_cannot_trust_the_server() {
    let dir = artifact_dir("tls-agent");
    let ca = Ca::new(&dir, "osprey");
    let rogue = Ca::new(&dir, "rogue");
    let server_cert = ca.issue(&dir, "server", &["127.0.0.1"]);
    let agent_id = ca.issue(&dir, "agent-client", &["tls-node"]);
    let agent_listener = ca.issue(&dir, "agent-api", &["127.0.0.1"]);
    let reader = client(Some(&ca.pem), Some(&agent_id));
    let server = start_server(
        &dir,
        "server",
        "",
        &tls_args(&server_cert, Some(&ca.pem)),
        &reader,
        "https",
    );
    let tree = fixture_tree();
    let agent_port = free_port();
    let agent_base = format!("https://127.0.0.1:{agent_port}");
    // Logs go the same way: a plain file, pushed to the server over HTTPS.
    let app_log = dir.join("app.log");
    std::fs::write(
        &app_log,
        (0..5)
            .map(|i| format!("shipped over tls line {i}\n"))
            .collect::<String>(),
    )
    .unwrap();
    let agent_toml = dir.join("agent.toml");
    std::fs::write(
        &agent_toml,
        format!(
            "[agent.logs]\nurl = \"{}/loki/api/v1/push\"\ncontainers = false\npoll_interval = \"100ms\"\n\n[[agent.logs.files]]\nname = \"app\"\npaths = [\"{}\"]\n",
            server.base,
            app_log.display()
        ),
    )
    .unwrap();
    let agent_args = |server_ca: &Path| -> Vec<String> {
        vec![
            "--config".into(),
            arg(&agent_toml),
            "--remote-write".into(),
            format!("{}/api/v1/write", server.base),
            "--server-ca".into(),
            arg(server_ca),
            "--client-cert".into(),
            arg(&agent_id.cert),
            "--client-key".into(),
            arg(&agent_id.key),
            "--tls-cert".into(),
            arg(&agent_listener.cert),
            "--tls-key".into(),
            arg(&agent_listener.key),
        ]
    };
    let agent_client = client(Some(&ca.pem), None);
    let metric = |name: &str| -> Option<f64> {
        let r = agent_client
            .get(format!("{agent_base}/metrics"))
            .send()
            .ok()?;
        (r.status().as_u16() == 200)
            .then(|| metric_value(&r.text().ok()?, name, &[]))
            .flatten()
    };

    // First run: the agent is told the wrong CA. It refuses the server,
    // says why, and keeps every batch.
    let mut agent = ChildGuard::spawn(
        agent_command(&tree, &dir, agent_port, &agent_args(&rogue.pem)),
        "agent-wrong-ca",
        &dir,
    );
    wait_for(WAIT, "batches queued behind the refused server", || {
        metric("osprey_agent_remote_write_queue_batches").filter(|n| *n >= 3.0)
    });
    let log = std::fs::read_to_string(dir.join("agent-wrong-ca.log")).unwrap();
    assert!(
        log.contains("remote-write TLS handshake failed")
            && log.contains("not signed by a CA this agent trusts"),
        "the agent says clearly why it cannot ship:\n{log}"
    );
    wait_for(WAIT, "the log pusher's TLS error", || {
        std::fs::read_to_string(dir.join("agent-wrong-ca.log"))
            .ok()
            .filter(|l| l.contains("log push TLS handshake failed"))
    });
    assert_eq!(
        metric("osprey_agent_remote_write_samples_sent_total"),
        Some(0.0)
    );
    // The agent's API is HTTPS only.
    assert!(
        get(&format!("http://127.0.0.1:{agent_port}/healthz")).is_none(),
        "plain HTTP to the agent's TLS port must get no answer"
    );
    let nothing = query(
        &reader,
        &server.base,
        "count(container_memory_usage_bytes{node=\"tls-node\"})",
        None,
    );
    assert!(
        nothing.is_empty(),
        "nothing arrives while refused: {nothing:?}"
    );
    let status = agent.terminate(WAIT).expect("the agent stops on SIGTERM");
    assert!(status.success(), "{status:?}");
    let stopped_at = now_ms() as f64 / 1000.0;

    // Second run, same data directory, the right CA: the queued samples
    // (collected before `stopped_at`) arrive.
    let _agent = ChildGuard::spawn(
        agent_command(&tree, &dir, agent_port, &agent_args(&ca.pem)),
        "agent-right-ca",
        &dir,
    );
    let delivered = wait_for(WAIT, "the first run's samples at the server", || {
        let r = query(
            &reader,
            &server.base,
            "count(container_memory_usage_bytes{node=\"tls-node\"})",
            Some(stopped_at),
        );
        (!r.is_empty()).then_some(r)
    });
    assert!(
        delivered[0]["value"][1]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap()
            >= 1.0
    );
    let lines = wait_for(WAIT, "the spooled log lines at the server", || {
        let v: Value = reader
            .get(format!("{}/api/v1/logs/search", server.base))
            .query(&[
                ("query", "shipped"),
                ("start", "0"),
                ("direction", "forward"),
            ])
            .send()
            .ok()?
            .json()
            .ok()?;
        let lines: Vec<String> = v["data"]["lines"]
            .as_array()?
            .iter()
            .filter_map(|l| l["message"].as_str().map(str::to_owned))
            .collect();
        (lines.len() >= 5).then_some(lines)
    });
    assert_eq!(
        lines,
        (0..5)
            .map(|i| format!("shipped over tls line {i}"))
            .collect::<Vec<_>>()
    );
    wait_for(WAIT, "the agent to count sent samples", || {
        metric("osprey_agent_remote_write_samples_sent_total").filter(|n| *n > 0.0)
    });
}

#[test]
fn up_with_tls_ships_in_process_to_its_own_server_and_serves_https_only() {
    let dir = artifact_dir("tls-up");
    let ca = Ca::new(&dir, "osprey");
    // A name the in-process agent does not use: it reaches its server on
    // 127.0.0.1 and trusts exactly this certificate.
    let cert = ca.issue(&dir, "server", &["osprey.example"]);
    let tree = fixture_tree();
    let port = free_port();
    let agent_port = free_port();
    let mut cmd = osprey();
    cmd.args(["up", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--agent-listen", &format!("127.0.0.1:{agent_port}")])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--interval", "1s", "--node-name", "up-tls"])
        .arg("--cgroup-root")
        .arg(tree.root())
        .arg("--rootfs")
        .arg(dir.join("rootfs"))
        .arg("--docker-root")
        .arg(dir.join("docker"))
        .arg("--pod-log-root")
        .arg(dir.join("pods"))
        .arg("--container-log-root")
        .arg(dir.join("containers"))
        .args(tls_args(&cert, None));
    let _up = ChildGuard::spawn(cmd, "up", &dir);
    let server: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let agent: SocketAddr = format!("127.0.0.1:{agent_port}").parse().unwrap();
    let named = reqwest::blocking::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&ca.pem).unwrap()).unwrap(),
        )
        .resolve("osprey.example", server)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let base = format!("https://osprey.example:{port}");
    wait_for(WAIT, "the agent's samples over HTTPS", || {
        let r = named
            .get(format!("{base}/api/v1/query"))
            .query(&[(
                "query",
                "count(container_memory_usage_bytes{node=\"up-tls\"})",
            )])
            .send()
            .ok()?;
        let v: Value = r.json().ok()?;
        v["data"]["result"].as_array()?.first().cloned()
    });
    // The agent's API speaks the same TLS.
    let agent_client = reqwest::blocking::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&ca.pem).unwrap()).unwrap(),
        )
        .resolve("osprey.example", agent)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let r = agent_client
        .get(format!("https://osprey.example:{agent_port}/metrics"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.text()
            .unwrap()
            .contains("osprey_agent_remote_write_samples_sent_total")
    );
    assert!(get(&format!("http://127.0.0.1:{port}/readyz")).is_none());
    assert!(get(&format!("http://127.0.0.1:{agent_port}/healthz")).is_none());
}

#[test]
fn a_client_trickling_its_header_is_cut_off_while_others_are_served() {
    let dir = artifact_dir("tls-slow-client");
    let plain = reqwest::blocking::Client::new();
    let server = start_server(
        &dir,
        "server",
        "[server]\nheader_read_timeout = \"2s\"\n",
        &[],
        &plain,
        "http",
    );
    // A kept-alive connection, idle from here on: it outlives the header
    // timeout (the idle limit is longer), so a client reusing it is fine.
    let mut kept = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let request = b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    kept.write_all(request).unwrap();
    assert!(read_response(&mut kept).starts_with("HTTP/1.1 200"));

    let mut slow = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    slow.write_all(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: hal")
        .unwrap();
    let opened = Instant::now();
    for _ in 0..3 {
        let (status, _) = get(&format!("{}/readyz", server.base)).expect("served");
        assert_eq!(status, 200);
    }
    assert!(
        still_open(&slow) || opened.elapsed() >= Duration::from_secs(2),
        "the slow client was cut before the timeout"
    );
    let (answer, closed) = read_until_closed(&mut slow, WAIT);
    assert!(
        closed.duration_since(opened) >= Duration::from_millis(1900),
        "closed after {:?}, before the 2 s timeout",
        closed.duration_since(opened)
    );
    assert!(
        answer.is_empty(),
        "the half request got an answer: {:?}",
        String::from_utf8_lossy(&answer)
    );
    // Still serving, on new connections and on the idle kept-alive one.
    assert_eq!(get(&format!("{}/readyz", server.base)).unwrap().0, 200);
    kept.write_all(request).unwrap();
    let again = read_response(&mut kept);
    assert!(again.starts_with("HTTP/1.1 200"), "{again}");
    let mut server = server;
    let status = server.guard.terminate(WAIT).expect("stops on SIGTERM");
    assert!(status.success(), "{status:?}");
}

#[test]
fn bad_certificate_files_stop_the_start_with_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "osprey");
    let a = ca.issue(dir.path(), "a", &["127.0.0.1"]);
    let b = ca.issue(dir.path(), "b", &["127.0.0.1"]);
    let missing = dir.path().join("missing.crt");
    let garbage = dir.path().join("garbage.crt");
    std::fs::write(&garbage, "not PEM at all\n").unwrap();
    let run = |cert: &Path, key: &Path| -> String {
        let out = osprey()
            .args(["server", "--listen", &format!("127.0.0.1:{}", free_port())])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--tls-cert")
            .arg(cert)
            .arg("--tls-key")
            .arg(key)
            .output()
            .unwrap();
        assert!(!out.status.success(), "the server must not start");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run(&missing, &a.key);
    assert!(
        err.contains("missing.crt") && err.contains("cannot read the TLS certificate chain"),
        "{err}"
    );
    let err = run(&garbage, &a.key);
    assert!(
        err.contains("garbage.crt") && err.contains("no PEM certificate"),
        "{err}"
    );
    let err = run(&a.cert, &b.key);
    assert!(
        err.contains("b.key") && err.contains("does not go with the certificate"),
        "{err}"
    );
    let out = osprey()
        .args(["server", "--tls-cert"])
        .arg(&a.cert)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-key"));
}
