//! Container and node log collection: tailing files and shipping their
//! lines to a Loki-compatible push endpoint (Osprey's server, or Loki),
//! exactly once across retries, restarts and crashes.
//!
//! - [`discover`]: which files, and the labels of their lines;
//! - [`file_id`]: recognising a file (device, inode, fingerprint);
//! - [`format`]: Docker json-file, CRI and plain lines;
//! - [`multiline`]: joining stack traces;
//! - [`tailer`]: following files through rotation and truncation;
//! - [`batch`], [`push`]: the push body (JSON or protobuf + snappy) and
//!   its delivery;
//! - [`checkpoint`]: committed positions and the spool of unacknowledged
//!   batches (how exactly-once works is described there);
//! - [`config`]: `[agent.logs]`; [`stats`]: the self-metrics.
//!
//! [`LogShipper::spawn`] runs two threads: the tailer (read, parse, batch,
//! spool) and the sender (push the spool in order, commit). Reading pauses
//! while `max_inflight_bytes` of batches wait for the receiver.

pub mod batch;
pub mod checkpoint;
pub mod config;
pub mod discover;
pub mod file_id;
pub mod format;
pub mod labels;
pub mod multiline;
pub mod push;
pub mod stats;
pub mod tailer;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

pub use config::{FileSource, LogsConfig, ReadFrom};
pub use multiline::MultilineConfig;
pub use push::PushFormat;
pub use stats::LogStats;

use batch::Batch;
use checkpoint::{Checkpoint, Spool, SpoolEntry};
use discover::{PlainSource, Roots};
use multiline::MultilineRule;
use push::{Outcome, PushClient};
use tailer::{Tailer, TailerOptions};

use crate::snapshot::Snapshot;

/// Appended to an entry cut at `max_line_bytes`.
pub const TRUNCATION_MARKER: &str = " …[truncated by osprey]";

/// Why log shipping could not start.
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    /// The configuration is not usable.
    #[error("[agent.logs]: {0}")]
    Config(String),
    /// The state directory cannot be used.
    #[error("cannot use the log state directory {path}: {source}")]
    State {
        /// The directory or file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// What the agent hands the log shipper besides its config.
pub struct LogsContext {
    /// The `node` label (and the source id's prefix).
    pub node: String,
    /// The agent's data directory; state goes to `<data_dir>/logs`.
    pub data_dir: PathBuf,
    /// The kubelet's pod log directories.
    pub pod_log_root: PathBuf,
    /// The kubelet's container log symlinks.
    pub container_log_root: PathBuf,
    /// Docker's data root.
    pub docker_root: PathBuf,
    /// The agent's latest collection (container metadata), if any.
    pub metadata: Box<dyn Fn() -> Option<Arc<Snapshot>> + Send>,
}

/// Starts log shipping.
pub struct LogShipper;

/// A running log shipper.
pub struct LogShipperHandle {
    shared: Arc<Shared>,
    stats: Arc<LogStats>,
    source_id: String,
    tailer: Option<JoinHandle<()>>,
    sender: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<QueueState>,
    changed: Condvar,
}

#[derive(Default)]
struct QueueState {
    entries: VecDeque<SpoolEntry>,
    bytes: u64,
    /// Set by `shutdown`: stop reading, deliver until `deadline`.
    stop: Option<Instant>,
    tailer_done: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl LogShipper {
    /// Loads the state under `<data_dir>/logs` and starts the tailer and
    /// sender threads.
    pub fn spawn(config: LogsConfig, ctx: LogsContext) -> Result<LogShipperHandle, LogsError> {
        Self::spawn_with_tls(config, ctx, &crate::tls::ClientTls::default())
    }

    /// Like [`LogShipper::spawn`], verifying an `https://` receiver (and
    /// presenting a client certificate) as `tls` says; its files are read
    /// here, so a bad setting fails the start.
    pub fn spawn_with_tls(
        config: LogsConfig,
        ctx: LogsContext,
        tls: &crate::tls::ClientTls,
    ) -> Result<LogShipperHandle, LogsError> {
        if config.url.trim().is_empty() {
            return Err(LogsError::Config(
                "`url` is required (e.g. http://osprey-server:9090/loki/api/v1/push)".into(),
            ));
        }
        let url = reqwest::Url::parse(&config.url)
            .map_err(|e| LogsError::Config(format!("invalid url {:?}: {e}", config.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(LogsError::Config(format!(
                "invalid url {}: only http:// and https:// are supported",
                config.url
            )));
        }
        let tls = tls
            .rustls_config()
            .map_err(|e| LogsError::Config(format!("TLS: {e}")))?;
        let token = match &config.bearer_token_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|source| LogsError::State {
                        path: path.clone(),
                        source,
                    })?
                    .trim()
                    .to_string(),
            ),
            None => config.bearer_token.clone(),
        };
        if let Some(t) = &token
            && reqwest::header::HeaderValue::from_str(&format!("Bearer {t}")).is_err()
        {
            return Err(LogsError::Config(
                "the bearer token contains characters not allowed in an HTTP header".into(),
            ));
        }
        let compile = |m: &Option<MultilineConfig>, what: &str| {
            m.as_ref()
                .map(MultilineRule::new)
                .transpose()
                .map_err(|e| LogsError::Config(format!("{what}: invalid start_pattern: {e}")))
        };
        let container_multiline = compile(&config.multiline, "multiline")?;
        let plain_multiline = config
            .files
            .iter()
            .map(|f| compile(&f.multiline, &format!("files {:?} multiline", f.name)))
            .collect::<Result<Vec<_>, _>>()?;

        let dir = ctx.data_dir.join("logs");
        let state_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| LogsError::State { path, source }
        };
        std::fs::create_dir_all(&dir).map_err(state_err(&dir))?;
        let source_id = load_source_id(&dir, &ctx.node).map_err(state_err(&dir))?;
        let checkpoint_path = dir.join("checkpoint.json");
        let checkpoint = Checkpoint::load(&checkpoint_path).map_err(state_err(&checkpoint_path))?;
        let spool_dir = dir.join("spool");
        let spool = Spool::open(&spool_dir).map_err(state_err(&spool_dir))?;
        let (mut entries, damaged) = spool.load().map_err(state_err(&spool_dir))?;
        let stats = Arc::new(LogStats::default());
        LogStats::add(&stats.spool_damaged, damaged);
        // Batches acknowledged just before a crash (checkpoint written,
        // spool file not yet removed).
        entries.retain(|e| {
            let keep = e.seq > checkpoint.acked_seq;
            if !keep {
                let _ = spool.remove(e);
            }
            keep
        });
        let next_seq = entries
            .last()
            .map_or(checkpoint.acked_seq, |e| e.seq)
            .max(checkpoint.acked_seq)
            + 1;
        let first_start = checkpoint.acked_seq == 0 && entries.is_empty();
        let mut resume = checkpoint.clone();
        for e in &entries {
            resume.apply(&e.delta);
        }
        tracing::info!(
            source = %source_id,
            files = resume.files.len(),
            spooled = entries.len(),
            url = %config.url,
            "shipping logs"
        );
        let roots = Roots {
            container_log_root: config.containers.then(|| ctx.container_log_root.clone()),
            pod_log_root: config.containers.then(|| ctx.pod_log_root.clone()),
            docker_root: config.containers.then(|| ctx.docker_root.clone()),
            plain: config
                .files
                .iter()
                .map(|f| PlainSource {
                    job: f.name.clone(),
                    patterns: f.paths.clone(),
                })
                .collect(),
        };
        let tailer = Tailer::new(
            TailerOptions {
                node: ctx.node.clone(),
                roots,
                max_line_bytes: config.max_line_bytes.max(1),
                start_at_end: config.read_from == ReadFrom::End,
                rotate_wait: config.rotate_wait,
                container_multiline,
                plain_multiline,
                read_chunk: 256 << 10,
            },
            resume.files.into_values(),
            first_start,
            stats.clone(),
        );
        let bytes: u64 = entries.iter().map(|e| e.size).sum();
        stats
            .spool_batches
            .store(entries.len() as u64, Ordering::Relaxed);
        stats.spool_bytes.store(bytes, Ordering::Relaxed);
        let shared = Arc::new(Shared {
            state: Mutex::new(QueueState {
                entries: entries.into(),
                bytes,
                ..QueueState::default()
            }),
            changed: Condvar::new(),
        });
        let tail_loop = TailLoop {
            tailer,
            config: config.clone(),
            spool: spool.clone(),
            shared: shared.clone(),
            stats: stats.clone(),
            next_seq,
            metadata: ctx.metadata,
        };
        let send_loop = SendLoop {
            config,
            tls,
            token,
            source_id: source_id.clone(),
            spool,
            checkpoint,
            checkpoint_path,
            shared: shared.clone(),
            stats: stats.clone(),
        };
        let tailer = std::thread::Builder::new()
            .name("osprey-logs-tail".into())
            .spawn(move || tail_loop.run())
            .expect("spawning a thread");
        let sender = std::thread::Builder::new()
            .name("osprey-logs-send".into())
            .spawn(move || send_loop.run())
            .expect("spawning a thread");
        Ok(LogShipperHandle {
            shared,
            stats,
            source_id,
            tailer: Some(tailer),
            sender: Some(sender),
        })
    }
}

impl LogShipperHandle {
    /// The live counters.
    pub fn stats(&self) -> Arc<LogStats> {
        self.stats.clone()
    }

    /// The `<node>-<id>` part of `X-Osprey-Batch`.
    pub fn source_id(&self) -> &str {
        &self.source_id
    }

    /// Stops reading (the batch being filled is spooled), keeps pushing
    /// for at most `flush_timeout`, and returns once both threads ended.
    /// What is not delivered stays in the spool for the next start.
    /// Blocking: call from a blocking context.
    pub fn shutdown(mut self, flush_timeout: Duration) {
        {
            let mut s = self.shared.lock();
            s.stop = Some(Instant::now() + flush_timeout);
        }
        self.shared.changed.notify_all();
        if let Some(t) = self.tailer.take() {
            let _ = t.join();
        }
        if let Some(t) = self.sender.take() {
            let _ = t.join();
        }
    }
}

impl Drop for LogShipperHandle {
    fn drop(&mut self) {
        if self.tailer.is_some() || self.sender.is_some() {
            let mut s = self.shared.lock();
            s.stop.get_or_insert_with(Instant::now);
            drop(s);
            self.shared.changed.notify_all();
        }
    }
}

/// `<node>-<16 hex>`, created once and kept in `<dir>/source-id`.
fn load_source_id(dir: &Path, node: &str) -> std::io::Result<String> {
    let path = dir.join("source-id");
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let node: String = node
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let id = format!("{node}-{:016x}", fastrand::u64(..));
    checkpoint::write_atomic(&path, id.as_bytes())?;
    Ok(id)
}

struct TailLoop {
    tailer: Tailer,
    config: LogsConfig,
    spool: Spool,
    shared: Arc<Shared>,
    stats: Arc<LogStats>,
    next_seq: u64,
    metadata: Box<dyn Fn() -> Option<Arc<Snapshot>> + Send>,
}

impl TailLoop {
    fn run(mut self) {
        let mut batch = Batch::default();
        let mut next_discovery = Instant::now();
        loop {
            if self.shared.lock().stop.is_some() {
                break;
            }
            let now = Instant::now();
            if now >= next_discovery {
                if let Some(snap) = (self.metadata)() {
                    self.tailer.set_metadata(&snap);
                }
                self.tailer.discover(now);
                next_discovery = now + self.config.discover_interval;
            }
            if !self.wait_for_room() {
                break;
            }
            let n = self
                .tailer
                .poll(&mut batch, now, self.config.batch_max_bytes);
            let full = batch.bytes() >= self.config.batch_max_bytes;
            let old = batch
                .opened()
                .is_some_and(|t| t.elapsed() >= self.config.batch_wait);
            if (full || old) && !self.seal(&mut batch) {
                break;
            }
            if n == 0 {
                let s = self.shared.lock();
                if s.stop.is_some() {
                    break;
                }
                let _ = self
                    .shared
                    .changed
                    .wait_timeout(s, self.config.poll_interval)
                    .unwrap_or_else(|e| e.into_inner());
            }
        }
        if !batch.is_empty() {
            self.seal(&mut batch);
        }
        self.shared.lock().tailer_done = true;
        self.shared.changed.notify_all();
    }

    /// Blocks while the spool holds `max_inflight_bytes`; false when
    /// stopping.
    fn wait_for_room(&self) -> bool {
        let mut s = self.shared.lock();
        let mut paused = false;
        while s.bytes >= self.config.max_inflight_bytes && s.stop.is_none() {
            if !paused {
                paused = true;
                LogStats::add(&self.stats.backpressure_pauses, 1);
            }
            s = self
                .shared
                .changed
                .wait_timeout(s, Duration::from_millis(500))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        s.stop.is_none()
    }

    /// Spools the batch with the file states after it and queues it.
    /// Retries a failing spool write (reading is paused meanwhile); false
    /// when asked to stop before it succeeded — the lines are then read
    /// again at the next start, since their positions were not stored.
    fn seal(&mut self, batch: &mut Batch) -> bool {
        let delta = self.tailer.take_delta();
        let body = batch.encode(self.config.format);
        let lines = batch.lines() as u64;
        let seq = self.next_seq;
        loop {
            match self.spool.write(seq, lines, delta.clone(), &body) {
                Ok(entry) => {
                    self.next_seq += 1;
                    batch.clear();
                    let mut s = self.shared.lock();
                    s.bytes += entry.size;
                    s.entries.push_back(entry);
                    self.stats
                        .spool_batches
                        .store(s.entries.len() as u64, Ordering::Relaxed);
                    self.stats.spool_bytes.store(s.bytes, Ordering::Relaxed);
                    drop(s);
                    self.shared.changed.notify_all();
                    return true;
                }
                Err(e) => {
                    LogStats::add(&self.stats.state_write_errors, 1);
                    tracing::error!(error = %e, "cannot write a log batch to the spool; reading paused, retrying");
                    let s = self.shared.lock();
                    if s.stop.is_some() {
                        return false;
                    }
                    let _ = self
                        .shared
                        .changed
                        .wait_timeout(s, Duration::from_secs(1))
                        .unwrap_or_else(|e| e.into_inner());
                }
            }
        }
    }
}

struct SendLoop {
    config: LogsConfig,
    tls: Option<rustls::ClientConfig>,
    token: Option<String>,
    source_id: String,
    spool: Spool,
    checkpoint: Checkpoint,
    checkpoint_path: PathBuf,
    shared: Arc<Shared>,
    stats: Arc<LogStats>,
}

impl SendLoop {
    fn run(mut self) {
        let client = match PushClient::new(
            &self.config.url,
            self.token.as_deref(),
            self.config.format,
            self.config.timeout,
            self.source_id.clone(),
            self.tls.take(),
        ) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "log shipping cannot start");
                return;
            }
        };
        while let Some(entry) = self.next() {
            if !self.deliver(&client, &entry) {
                return;
            }
            self.commit(&entry);
        }
    }

    /// The oldest spooled batch; `None` when stopping with nothing left
    /// (or past the flush deadline).
    fn next(&self) -> Option<SpoolEntry> {
        let mut s = self.shared.lock();
        loop {
            if let Some(stop) = s.stop
                && Instant::now() >= stop
            {
                return None;
            }
            if let Some(e) = s.entries.front() {
                return Some(e.clone());
            }
            if s.tailer_done {
                return None;
            }
            s = self
                .shared
                .changed
                .wait_timeout(s, Duration::from_millis(500))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Pushes one batch until accepted or refused; false when the stop
    /// deadline passed first (the batch stays spooled).
    fn deliver(&self, client: &PushClient, entry: &SpoolEntry) -> bool {
        let body = match self.spool.body(entry) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(seq = entry.seq, error = %e, "a spooled log batch cannot be read; its lines are skipped");
                LogStats::add(&self.stats.spool_damaged, 1);
                return true;
            }
        };
        let mut attempt = 0u32;
        let mut warned = false;
        loop {
            match client.send(entry.seq, body.clone()) {
                Outcome::Accepted => {
                    LogStats::add(&self.stats.batches_sent, 1);
                    LogStats::add(&self.stats.entries_sent, entry.lines);
                    LogStats::add(&self.stats.bytes_sent, body.len() as u64);
                    *self
                        .stats
                        .last_success
                        .lock()
                        .unwrap_or_else(|e| e.into_inner()) = Some(SystemTime::now());
                    if warned {
                        tracing::info!(url = %self.config.url, "log push recovered");
                    }
                    return true;
                }
                Outcome::Rejected { status, body } => {
                    LogStats::add(&self.stats.rejected_batches, 1);
                    LogStats::add(&self.stats.rejected_entries, entry.lines);
                    tracing::error!(seq = entry.seq, status, answer = %body, lines = entry.lines, "the receiver refused a log batch; dropped");
                    return true;
                }
                Outcome::Retry {
                    error,
                    retry_after,
                    tls_hint,
                } => {
                    LogStats::add(&self.stats.failed_attempts, 1);
                    if !warned {
                        warned = true;
                        if let Some(hint) = tls_hint {
                            tracing::error!(error, hint, url = %self.config.url, "log push TLS handshake failed; batches stay spooled and are retried with backoff");
                        } else {
                            tracing::warn!(error, url = %self.config.url, "log push failed; retrying with backoff, reading pauses when the spool is full");
                        }
                    }
                    let delay = retry_after.unwrap_or_else(|| {
                        crate::ship::sender::backoff(
                            attempt,
                            self.config.min_backoff,
                            self.config.max_backoff,
                        )
                    });
                    attempt = attempt.saturating_add(1);
                    let wake = Instant::now() + delay;
                    let mut s = self.shared.lock();
                    loop {
                        let now = Instant::now();
                        if let Some(stop) = s.stop
                            && now >= stop
                        {
                            return false;
                        }
                        if now >= wake {
                            break;
                        }
                        let until = s.stop.map_or(wake, |stop| stop.min(wake));
                        s = self
                            .shared
                            .changed
                            .wait_timeout(s, until.saturating_duration_since(now))
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                    }
                }
            }
        }
    }

    /// The batch is delivered: fold its positions into the checkpoint,
    /// write it, then drop the spool file.
    fn commit(&mut self, entry: &SpoolEntry) {
        self.checkpoint.acked_seq = entry.seq;
        self.checkpoint.apply(&entry.delta);
        match self.checkpoint.save(&self.checkpoint_path) {
            // Without a saved checkpoint the spool file must stay: the
            // next start sends it again (the receiver de-duplicates it).
            Err(e) => {
                LogStats::add(&self.stats.state_write_errors, 1);
                tracing::error!(error = %e, "cannot write the log checkpoint");
            }
            Ok(()) => {
                if let Err(e) = self.spool.remove(entry) {
                    tracing::warn!(error = %e, "cannot remove a delivered log batch");
                }
            }
        }
        let mut s = self.shared.lock();
        if s.entries.front().is_some_and(|e| e.seq == entry.seq) {
            s.entries.pop_front();
            s.bytes = s.bytes.saturating_sub(entry.size);
        }
        self.stats
            .spool_batches
            .store(s.entries.len() as u64, Ordering::Relaxed);
        self.stats.spool_bytes.store(s.bytes, Ordering::Relaxed);
        drop(s);
        self.shared.changed.notify_all();
    }
}
