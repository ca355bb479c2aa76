//! A real HTTP receiver for the log shipper's tests: an axum server on its
//! own runtime that decodes Loki pushes (JSON and protobuf + snappy),
//! honours the `X-Osprey-Batch` rule (a batch whose sequence is at or below
//! the source's committed one is answered 204 and not stored) and records
//! what it stored. It stands in for the Osprey server, which is not what
//! these tests test.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use osprey_collector::logs::push;

/// One stored line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Stream labels.
    pub labels: BTreeMap<String, String>,
    /// ns since the epoch.
    pub ts_ns: i64,
    /// Text.
    pub line: String,
}

/// What the receiver saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Stored lines, in arrival order.
    pub lines: Vec<Line>,
    /// Committed sequence per source.
    pub committed: HashMap<String, u64>,
    /// Requests received (any outcome).
    pub requests: u64,
    /// Batches answered 204 without storing (already committed).
    pub duplicates: u64,
    /// Batches whose sequence skipped one (should never happen).
    pub gaps: u64,
    /// Requests without the batch header.
    pub without_header: u64,
    /// Answer this many requests with 500 before accepting.
    pub fail_next: u32,
    /// Store this many batches but answer 500 (a lost acknowledgement).
    pub fail_after_commit: u32,
    /// Bearer token required, if set.
    pub token: Option<String>,
    /// Content types seen.
    pub content_types: Vec<String>,
}

/// A running receiver.
pub struct Receiver {
    /// `http://127.0.0.1:<port>/loki/api/v1/push`.
    pub url: String,
    /// The address.
    pub addr: SocketAddr,
    /// What it saw.
    pub seen: Arc<Mutex<Seen>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[path = "../../../tests/support/ports.rs"]
mod ports;
pub use ports::free_port;

impl Receiver {
    /// Starts on a free port.
    pub fn start() -> Self {
        // A port can be taken between `free_port`'s probe and this bind by
        // a process outside its claims (a test's child still starting on
        // a port it was given): another port then serves as well.
        for _ in 0..5 {
            let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
            match TcpListener::bind(addr) {
                Ok(listener) => {
                    return Self::serve(listener, Arc::new(Mutex::new(Seen::default())));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
                Err(e) => panic!("binding the receiver to {addr}: {e}"),
            }
        }
        panic!("five free ports were taken before the receiver could bind one");
    }

    /// Starts on `port` with `seen` (shared with an earlier run).
    pub fn start_on(port: u16, seen: Arc<Mutex<Seen>>) -> Self {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let listener = TcpListener::bind(addr).expect("binding the receiver");
        Self::serve(listener, seen)
    }

    fn serve(listener: TcpListener, seen: Arc<Mutex<Seen>>) -> Self {
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = seen.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = axum::Router::new()
                    .route("/loki/api/v1/push", post(push_handler))
                    .with_state(state);
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        Self {
            url: format!("http://{addr}/loki/api/v1/push"),
            addr,
            seen,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Stops listening (a later `start_on` the same port resumes).
    pub fn stop(mut self) -> Arc<Mutex<Seen>> {
        self.shutdown();
        self.seen.clone()
    }

    fn shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Stored lines so far.
    pub fn lines(&self) -> Vec<Line> {
        self.seen.lock().unwrap().lines.clone()
    }

    /// Polls until `f` holds for the stored lines, or panics after `timeout`.
    pub fn wait_for(&self, timeout: Duration, what: &str, f: impl Fn(&[Line]) -> bool) {
        wait_lines(&self.seen, timeout, what, f)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Polls `seen` until `f` holds, or panics after `timeout`.
pub fn wait_lines(
    seen: &Arc<Mutex<Seen>>,
    timeout: Duration,
    what: &str,
    f: impl Fn(&[Line]) -> bool,
) {
    let deadline = Instant::now() + timeout;
    loop {
        {
            let s = seen.lock().unwrap();
            if f(&s.lines) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}; {} lines stored so far",
                s.lines.len()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn push_handler(
    State(seen): State<Arc<Mutex<Seen>>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let mut s = seen.lock().unwrap();
    s.requests += 1;
    if s.fail_next > 0 {
        s.fail_next -= 1;
        return (StatusCode::INTERNAL_SERVER_ERROR, "injected failure".into());
    }
    if let Some(token) = &s.token {
        let want = format!("Bearer {token}");
        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(want.as_str()) {
            return (StatusCode::UNAUTHORIZED, "bad token".into());
        }
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let lines = match decode(&content_type, &body) {
        Ok(l) => l,
        Err(e) => return (StatusCode::BAD_REQUEST, e),
    };
    s.content_types.push(content_type);
    match headers
        .get(push::BATCH_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit_once('/'))
        .and_then(|(src, seq)| Some((src.to_string(), seq.parse::<u64>().ok()?)))
    {
        Some((source, seq)) => {
            let committed = s.committed.get(&source).copied().unwrap_or(0);
            if seq <= committed {
                s.duplicates += 1;
                return (StatusCode::NO_CONTENT, String::new());
            }
            if committed != 0 && seq != committed + 1 {
                s.gaps += 1;
            }
            s.committed.insert(source, seq);
        }
        None => s.without_header += 1,
    }
    s.lines.extend(lines);
    if s.fail_after_commit > 0 {
        s.fail_after_commit -= 1;
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "lost acknowledgement".into(),
        );
    }
    (StatusCode::NO_CONTENT, String::new())
}

fn decode(content_type: &str, body: &[u8]) -> Result<Vec<Line>, String> {
    let mut out = Vec::new();
    if content_type.starts_with("application/x-protobuf") {
        let request = push::decode_protobuf(body)?;
        for stream in request.streams {
            let labels = parse_labels(&stream.labels)?;
            for e in stream.entries {
                out.push(Line {
                    labels: labels.clone(),
                    ts_ns: e.timestamp.map(|t| t.to_nanos()).unwrap_or(0),
                    line: e.line,
                });
            }
        }
    } else {
        let v: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| format!("bad JSON: {e}"))?;
        for stream in v["streams"].as_array().ok_or("no streams")? {
            let labels: BTreeMap<String, String> =
                serde_json::from_value(stream["stream"].clone()).map_err(|e| e.to_string())?;
            for pair in stream["values"].as_array().ok_or("no values")? {
                out.push(Line {
                    labels: labels.clone(),
                    ts_ns: pair[0].as_str().ok_or("ts")?.parse().map_err(|_| "ts")?,
                    line: pair[1].as_str().ok_or("line")?.to_string(),
                });
            }
        }
    }
    Ok(out)
}

/// Parses `{a="b", c="d\"e"}`.
pub fn parse_labels(s: &str) -> Result<BTreeMap<String, String>, String> {
    let inner = s
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .ok_or_else(|| format!("bad labels {s}"))?;
    let mut out = BTreeMap::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if chars.next() != Some('"') {
            return Err(format!("bad labels {s}"));
        }
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('\\') => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c) => value.push(c),
                    None => return Err("bad escape".into()),
                },
                Some('"') => break,
                Some(c) => value.push(c),
                None => return Err("unterminated".into()),
            }
        }
        out.insert(name.trim().to_string(), value);
    }
    Ok(out)
}

/// Counts of each text among `lines`.
pub fn counts(lines: &[Line]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for l in lines {
        *m.entry(l.line.clone()).or_insert(0) += 1;
    }
    m
}

/// Waits until every entry the tailer emitted was acknowledged and the
/// spool is empty (nothing more is on its way), or panics after `timeout`.
pub fn settled(stats: &osprey_collector::logs::LogStats, timeout: Duration) {
    use osprey_collector::logs::LogStats;
    let deadline = Instant::now() + timeout;
    loop {
        let entries = LogStats::get(&stats.entries);
        let done = LogStats::get(&stats.entries_sent) + LogStats::get(&stats.rejected_entries);
        if done == entries && LogStats::get(&stats.spool_batches) == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out: {done} of {entries} entries acknowledged"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
