//! Helpers shared by the end-to-end tests: running the real `osprey`
//! binary, polling with timeouts, real cgroups and child processes that are
//! cleaned up even when a test fails.

#![allow(dead_code)]

pub mod netns;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `osprey` binary built for these tests.
pub fn osprey() -> Command {
    Command::new(env!("CARGO_BIN_EXE_osprey"))
}

#[path = "../support/ports.rs"]
mod ports;
pub use ports::free_port;

/// Polls `f` every 50 ms until it returns `Some`, or panics after `timeout`
/// with `what` in the message.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// GET `url`: status and body, or `None` when nothing answers.
pub fn get(url: &str) -> Option<(u16, String)> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .ok()?;
    let resp = client.get(url).send().ok()?;
    let status = resp.status().as_u16();
    Some((status, resp.text().unwrap_or_default()))
}

/// GET `url` and parse JSON, expecting 200.
pub fn get_json(url: &str) -> serde_json::Value {
    let (status, body) = get(url).unwrap_or_else(|| panic!("nothing answers {url}"));
    assert_eq!(status, 200, "GET {url}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url} is not JSON ({e}): {body}"))
}

/// A child process killed (SIGKILL) and reaped on drop.
pub struct ChildGuard {
    /// The process.
    pub child: Child,
    /// What it is, for messages.
    pub name: String,
}

impl ChildGuard {
    /// Spawns `cmd` with stdout/stderr going to files in `log_dir`.
    pub fn spawn(mut cmd: Command, name: &str, log_dir: &Path) -> Self {
        let out = std::fs::File::create(log_dir.join(format!("{name}.log"))).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Self {
            child,
            name: name.to_string(),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit.
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The v1 controllers a test cgroup is created in.
pub const V1_CONTROLLERS: &[&str] = &["cpu", "cpuacct", "memory", "blkio", "pids"];

/// A real cgroup in every v1 controller hierarchy of this machine,
/// removed (after killing its tasks) on drop.
pub struct RealCgroup {
    /// Path relative to the hierarchy root, e.g. `/osprey-test-123-cpu`.
    pub path: String,
    dirs: Vec<PathBuf>,
}

impl RealCgroup {
    /// Creates `/osprey-e2e-<pid>-<name>` in each v1 controller.
    pub fn create(name: &str) -> Self {
        let path = format!("/osprey-e2e-{}-{name}", std::process::id());
        let mut dirs = Vec::new();
        for c in V1_CONTROLLERS {
            let dir = Path::new("/sys/fs/cgroup")
                .join(c)
                .join(path.trim_start_matches('/'));
            std::fs::create_dir_all(&dir).unwrap_or_else(|e| {
                panic!(
                    "cannot create cgroup {} (the tests need root and cgroup v1): {e}",
                    dir.display()
                )
            });
            dirs.push(dir);
        }
        Self { path, dirs }
    }

    /// Writes `value` to `file` of the cgroup in `controller`.
    pub fn set(&self, controller: &str, file: &str, value: &str) {
        let dir = Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(self.path.trim_start_matches('/'));
        std::fs::write(dir.join(file), value).unwrap_or_else(|e| panic!("cannot set {file}: {e}"));
    }

    /// Moves `pid` into the cgroup in every controller.
    pub fn add(&self, pid: u32) {
        for d in &self.dirs {
            std::fs::write(d.join("cgroup.procs"), pid.to_string())
                .unwrap_or_else(|e| panic!("cannot move {pid} into {}: {e}", d.display()));
        }
    }

    /// Starts `program args…` inside the cgroup (moved in right after the
    /// spawn, before it does any real work).
    pub fn spawn(&self, program: &str, args: &[&str], log_dir: &Path, name: &str) -> ChildGuard {
        let mut cmd = Command::new(program);
        cmd.args(args);
        let guard = ChildGuard::spawn(cmd, name, log_dir);
        self.add(guard.pid());
        guard
    }
}

impl Drop for RealCgroup {
    fn drop(&mut self) {
        for d in &self.dirs {
            if let Ok(procs) = std::fs::read_to_string(d.join("cgroup.procs")) {
                for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                    }
                }
            }
        }
        for d in &self.dirs {
            // Tasks take a moment to leave after SIGKILL.
            let deadline = Instant::now() + Duration::from_secs(5);
            while std::fs::remove_dir(d).is_err() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Runs `osprey agent` with `args` on a free port and waits for `/healthz`.
pub struct AgentProcess {
    /// The process.
    pub guard: ChildGuard,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl AgentProcess {
    /// Starts the agent with `--listen` on a free port plus `args`.
    pub fn start(args: &[&str], log_dir: &Path) -> Self {
        let port = free_port();
        let mut cmd = osprey();
        cmd.arg("agent")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(args);
        let guard = ChildGuard::spawn(cmd, &format!("agent-{port}"), log_dir);
        let base = format!("http://127.0.0.1:{port}");
        let health = format!("{base}/healthz");
        wait_for(Duration::from_secs(20), "the agent's /healthz", || {
            get(&health).filter(|(s, _)| *s == 200)
        });
        Self { guard, base }
    }

    /// GET a path of the agent's API as JSON.
    pub fn json(&self, path: &str) -> serde_json::Value {
        get_json(&format!("{}{path}", self.base))
    }

    /// The agent's `/metrics` text.
    pub fn metrics(&self) -> String {
        let (status, body) = get(&format!("{}/metrics", self.base)).expect("agent answers");
        assert_eq!(status, 200);
        body
    }
}

/// Finds the value of the sample `name{labels…}` whose labels include all
/// of `want` in Prometheus text.
pub fn metric_value(text: &str, name: &str, want: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .find(|l| {
            want.iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| {
            // `name{labels} value [timestamp]`: the value is the first
            // token after the labels (carried samples have a timestamp).
            let rest = l.rfind('}').map_or(&l[name.len()..], |i| &l[i + 1..]);
            rest.split_whitespace().next()
        })
        .and_then(|v| v.parse().ok())
}

/// A directory for logs and artefacts of one test, kept under
/// `target/test-artifacts/<name>` so CI keeps it after a failure.
pub fn artifact_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("test-artifacts")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("artifact dir");
    dir
}

/// A real Prometheus (Debian's `prometheus`) with its remote-write
/// receiver enabled, on a free loopback port.
pub struct PrometheusProcess {
    /// The process.
    pub guard: ChildGuard,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    port: u16,
    data: PathBuf,
    log_dir: PathBuf,
}

impl PrometheusProcess {
    /// Starts Prometheus keeping its TSDB in `data`.
    pub fn start(data: &Path, log_dir: &Path) -> Self {
        Self::start_on(free_port(), data, log_dir)
    }

    /// Starts Prometheus scraping `target` (`host:port`) every second as
    /// job `osprey-agent`, as a Prometheus set up for cAdvisor would (its
    /// defaults: `/metrics`, gzip accepted).
    pub fn start_scraping(data: &Path, log_dir: &Path, target: &str) -> Self {
        let config = format!(
            "global:\n  scrape_interval: 1h\nscrape_configs:\n  - job_name: osprey-agent\n    scrape_interval: 1s\n    scrape_timeout: 1s\n    static_configs:\n      - targets: ['{target}']\n"
        );
        Self::start_with(free_port(), data, log_dir, &config)
    }

    fn start_on(port: u16, data: &Path, log_dir: &Path) -> Self {
        Self::start_with(port, data, log_dir, "global:\n  scrape_interval: 1h\n")
    }

    fn start_with(port: u16, data: &Path, log_dir: &Path, config_text: &str) -> Self {
        let config = data.with_extension("yml");
        std::fs::write(&config, config_text).expect("prometheus config");
        let mut cmd = Command::new("prometheus");
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-remote-write-receiver")
            .arg("--storage.tsdb.retention.time=1d");
        let guard = ChildGuard::spawn(cmd, &format!("prometheus-{port}"), log_dir);
        let base = format!("http://127.0.0.1:{port}");
        let ready = format!("{base}/-/ready");
        wait_for(Duration::from_secs(60), "Prometheus to be ready", || {
            get(&ready).filter(|(s, _)| *s == 200)
        });
        Self {
            guard,
            base,
            port,
            data: data.to_path_buf(),
            log_dir: log_dir.to_path_buf(),
        }
    }

    /// Stops Prometheus cleanly (SIGTERM), keeping its data.
    pub fn stop(&mut self) {
        assert!(
            self.guard.terminate(Duration::from_secs(60)).is_some(),
            "Prometheus did not stop on SIGTERM"
        );
    }

    /// Starts it again on the same port and data.
    pub fn restart(&mut self) {
        let fresh = Self::start_on(self.port, &self.data, &self.log_dir);
        // Replace the old guard without running its Drop on a live process.
        self.guard = fresh.guard;
    }

    /// Instant query; the `data.result` array.
    pub fn query(&self, expr: &str) -> Vec<serde_json::Value> {
        let client = reqwest::blocking::Client::new();
        let resp = client
            .post(format!("{}/api/v1/query", self.base))
            .form(&[("query", expr)])
            .send()
            .expect("Prometheus answers");
        let v: serde_json::Value = resp.json().expect("JSON");
        assert_eq!(v["status"], "success", "query {expr}: {v}");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }
}

/// A running `osprey server` on a free port.
pub struct ServerProcess {
    /// The process.
    pub guard: ChildGuard,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The port.
    pub port: u16,
}

impl ServerProcess {
    /// Starts `osprey [--config FILE] server --listen 127.0.0.1:<port> --data-dir DIR`
    /// and waits for `/readyz`.
    pub fn start(data_dir: &Path, config: Option<&Path>, log_dir: &Path) -> Self {
        Self::start_on(free_port(), data_dir, config, log_dir)
    }

    /// The same on a chosen port (to restart a server where it was).
    pub fn start_on(port: u16, data_dir: &Path, config: Option<&Path>, log_dir: &Path) -> Self {
        let mut cmd = osprey();
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        cmd.arg("server")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data_dir);
        let guard = ChildGuard::spawn(
            cmd,
            &format!("server-{port}-{}", std::process::id()),
            log_dir,
        );
        let base = format!("http://127.0.0.1:{port}");
        let ready = format!("{base}/readyz");
        wait_for(Duration::from_secs(60), "the server's /readyz", || {
            get(&ready).filter(|(s, _)| *s == 200)
        });
        Self { guard, base, port }
    }

    /// The server's own `/metrics`.
    pub fn metrics(&self) -> String {
        get(&format!("{}/metrics", self.base))
            .expect("server answers")
            .1
    }
}

/// One series for [`remote_write_body`]: name, extra labels, samples.
pub type SeriesSpec<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [(i64, f64)]);

/// A remote-write body (protobuf + snappy) for `series`: each is a metric
/// name, extra labels and `(timestamp_ms, value)` samples.
pub fn remote_write_body(series: &[SeriesSpec<'_>]) -> Vec<u8> {
    use osprey_collector::ship::remote_write::{
        Label, Sample, TimeSeries, WriteRequest, encode_snappy,
    };
    let timeseries = series
        .iter()
        .map(|(name, labels, samples)| {
            let mut l: Vec<Label> = labels
                .iter()
                .map(|(k, v)| Label {
                    name: k.to_string(),
                    value: v.to_string(),
                })
                .collect();
            l.push(Label {
                name: "__name__".into(),
                value: name.to_string(),
            });
            l.sort_by(|a, b| a.name.cmp(&b.name));
            TimeSeries {
                labels: l,
                samples: samples
                    .iter()
                    .map(|(t, v)| Sample {
                        timestamp: *t,
                        value: *v,
                    })
                    .collect(),
            }
        })
        .collect();
    encode_snappy(&WriteRequest {
        timeseries,
        metadata: Vec::new(),
    })
    .expect("encodable")
}

/// POSTs a remote-write body; returns status and response body.
pub fn post_write(base: &str, body: Vec<u8>, token: Option<&str>) -> (u16, String) {
    let client = reqwest::blocking::Client::new();
    let mut req = client
        .post(format!("{base}/api/v1/write"))
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().expect("server answers");
    (resp.status().as_u16(), resp.text().unwrap_or_default())
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
