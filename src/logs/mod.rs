//! Log storage and search: container log lines pushed in Loki's format,
//! indexed with tantivy in time partitions, searched, counted and tailed.
//!
//! - [`schema`]: fields and how a line becomes a document (level parsing);
//! - [`partition`]: one index per time span, retention by directory;
//! - [`streams`]: each partition's stream table (a line stores a stream id);
//! - [`writer`]: the indexing thread, group commit, ingest checkpoint;
//! - [`push`]: decoding and validating Loki push requests;
//! - [`query`]: query strings, time ranges, newest-first cursor paging;
//! - [`histogram`]: matching lines per time bucket;
//! - [`segments`]: fast-field columns and segment walks the collectors share;
//! - [`stats`]: streams, lines and bytes a selector selects (Loki's index stats);
//! - [`tail`]: new matching lines as they are committed;
//! - [`tokenizer`]: the message tokenizer (tantivy's default tokens, faster);
//! - [`logql`]: the LogQL subset of Loki's query endpoints;
//! - [`api`]: the HTTP handlers.

pub mod api;
pub mod histogram;
pub mod logql;
pub mod partition;
pub mod push;
pub mod query;
pub mod schema;
pub mod segments;
pub mod stats;
pub mod streams;
pub mod tail;
pub mod tokenizer;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};
use serde::{Deserialize, Serialize};
use tantivy::store::Compressor;

use partition::Partition;
use schema::{LogSchema, PreparedLine};
pub use writer::PushOutcome;

/// `[server.logs]`: how logs are indexed and kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogsConfig {
    /// Partitions whose whole span is older than this are deleted.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// When the partitions together exceed this many bytes, the oldest
    /// are deleted (the newest is always kept); 0 = no size limit.
    pub max_bytes: u64,
    /// Longest a pushed line waits for the commit that makes it durable
    /// and searchable (pushes are answered after it).
    #[serde(with = "humantime_serde")]
    pub commit_interval: Duration,
    /// Commit early once this many bytes of lines are queued.
    pub commit_bytes: usize,
    /// Commit early, too, once a group holds this many bytes and no push
    /// has arrived for a moment (10 ms): its pushers are waiting for this
    /// commit (an agent sends its next batch after the answer to the
    /// last), so waiting out `commit_interval` would only idle the
    /// indexer. Smaller groups wait for the interval (fewer, larger
    /// segments under light load). 0 = always wait.
    pub commit_idle_bytes: usize,
    /// Lines longer than this are cut and marked `…[truncated N bytes]`.
    pub max_line_bytes: usize,
    /// Time span of one partition (one tantivy index); a day by default.
    /// Changing it affects new partitions only.
    #[serde(with = "humantime_serde")]
    pub partition_length: Duration,
    /// Memory budget of a partition's index writer, bytes (at least 15 MB).
    pub writer_memory_bytes: usize,
    /// Pushes queued for indexing before new ones are refused with 503.
    pub queue_depth: usize,
    /// How often retention runs.
    #[serde(with = "humantime_serde")]
    pub maintain_interval: Duration,
    /// Compress the document store (stored messages and labels) with
    /// LZ4. Off stores them raw: larger, slightly faster to index.
    pub compress: bool,
}

impl Default for LogsConfig {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(7 * 86_400),
            max_bytes: 0,
            commit_interval: Duration::from_secs(1),
            commit_bytes: 32 << 20,
            commit_idle_bytes: 4 << 20,
            max_line_bytes: 256 << 10,
            partition_length: Duration::from_secs(86_400),
            writer_memory_bytes: 64 << 20,
            queue_depth: 256,
            maintain_interval: Duration::from_secs(60),
            compress: true,
        }
    }
}

impl LogsConfig {
    /// Checks the settings make sense.
    pub fn validate(&self) -> Result<(), String> {
        if self.partition_length < Duration::from_secs(60) {
            return Err("logs.partition_length must be at least 1m".into());
        }
        if self.commit_interval.is_zero() || self.commit_interval > Duration::from_secs(4) {
            return Err(
                "logs.commit_interval must be between 1ms and 4s (lines must be searchable within 5 s)"
                    .into(),
            );
        }
        if self.max_line_bytes < 64 {
            return Err("logs.max_line_bytes must be at least 64".into());
        }
        if self.queue_depth == 0 {
            return Err("logs.queue_depth must be at least 1".into());
        }
        if self.retention < Duration::from_secs(60) {
            return Err("logs.retention must be at least 1m".into());
        }
        Ok(())
    }

    fn partition_length_ns(&self) -> i64 {
        self.partition_length.as_nanos().min(i64::MAX as u128) as i64
    }

    fn retention_ns(&self) -> i64 {
        self.retention.as_nanos().min(i64::MAX as u128) as i64
    }
}

/// What went wrong in the log store.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LogError {
    /// A file operation failed.
    #[error("{0}")]
    Io(String),
    /// tantivy failed.
    #[error("log index: {0}")]
    Index(String),
    /// Stored data is not what it should be.
    #[error("corrupt log data: {0}")]
    Corrupt(String),
    /// The indexing queue is full.
    #[error("the log indexer is overloaded; retry later")]
    Overloaded,
    /// The store is shutting down.
    #[error("the log store is shutting down")]
    Closed,
    /// The query is invalid (a 400).
    #[error("{0}")]
    BadQuery(String),
}

impl LogError {
    fn io(path: &Path, e: std::io::Error) -> Self {
        Self::Io(format!("{}: {e}", path.display()))
    }
}

/// Sent after each commit: which ids of which partition became visible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitEvent {
    /// The partition (its span's start).
    pub partition_start_ns: i64,
    /// First id committed.
    pub first_id: u64,
    /// Last id committed.
    pub last_id: u64,
}

/// The log store's counters, on the server's `/metrics`.
#[derive(Clone)]
pub struct LogMetrics {
    /// Push requests by outcome.
    pub push_requests: IntCounterVec,
    /// Lines indexed.
    pub lines_stored: IntCounter,
    /// Lines not stored, by reason (`too_old`, `duplicate`) or cut
    /// (`truncated`).
    pub lines_dropped: IntCounterVec,
    /// Partitions deleted by retention.
    pub partitions_deleted: IntCounter,
}

impl LogMetrics {
    /// Creates the counters and registers them in `registry`.
    pub fn new(registry: &Registry) -> Self {
        let push_requests = IntCounterVec::new(
            Opts::new(
                "osprey_logs_push_requests_total",
                "Log push requests by outcome.",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let lines_stored =
            IntCounter::new("osprey_logs_lines_stored_total", "Log lines indexed.").expect("valid");
        let lines_dropped = IntCounterVec::new(
            Opts::new(
                "osprey_logs_lines_dropped_total",
                "Log lines not stored (too_old, duplicate) or cut (truncated).",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let partitions_deleted = IntCounter::new(
            "osprey_logs_partitions_deleted_total",
            "Log partitions deleted by retention.",
        )
        .expect("valid");
        for c in [
            Box::new(push_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(lines_stored.clone()),
            Box::new(lines_dropped.clone()),
            Box::new(partitions_deleted.clone()),
        ] {
            // A second store on the same registry (tests) keeps the first.
            let _ = registry.register(c);
        }
        Self {
            push_requests,
            lines_stored,
            lines_dropped,
            partitions_deleted,
        }
    }
}

/// What the store and its indexing thread share.
pub struct Shared {
    root: PathBuf,
    config: LogsConfig,
    schema: LogSchema,
    compressor: Compressor,
    /// Partitions, sorted by start.
    partitions: RwLock<Vec<Arc<Partition>>>,
    commits: tokio::sync::broadcast::Sender<CommitEvent>,
    /// Set when the server stops: live tails end.
    closing: tokio::sync::watch::Sender<bool>,
    metrics: LogMetrics,
}

/// The log store: partitions, the indexing thread and the commit feed.
pub struct LogStore {
    shared: Arc<Shared>,
    jobs: Mutex<Option<SyncSender<writer::Job>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore")
            .field("root", &self.shared.root)
            .finish()
    }
}

/// Now, Unix nanoseconds.
pub fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

impl LogStore {
    /// Opens (or creates) the store in `root` and starts its indexing
    /// thread.
    pub fn open(root: &Path, config: LogsConfig, registry: &Registry) -> Result<Self, LogError> {
        config.validate().map_err(LogError::BadQuery)?;
        std::fs::create_dir_all(root).map_err(|e| LogError::io(root, e))?;
        let schema = LogSchema::new();
        let compressor = if config.compress {
            Compressor::Lz4
        } else {
            Compressor::None
        };
        let mut partitions = Vec::new();
        for entry in std::fs::read_dir(root).map_err(|e| LogError::io(root, e))? {
            let entry = entry.map_err(|e| LogError::io(root, e))?;
            let dir = entry.path();
            if !dir.is_dir() {
                continue;
            }
            if !dir.join("partition.json").exists() {
                tracing::warn!(dir = %dir.display(), "not a log partition (no partition.json); ignored");
                continue;
            }
            partitions.push(Arc::new(Partition::open(&dir, &schema, compressor)?));
        }
        partitions.sort_by_key(|p| p.span.start_ns);
        let (commits, _) = tokio::sync::broadcast::channel(1024);
        let shared = Arc::new(Shared {
            root: root.to_path_buf(),
            schema,
            compressor,
            partitions: RwLock::new(partitions),
            commits,
            closing: tokio::sync::watch::Sender::new(false),
            metrics: LogMetrics::new(registry),
            config,
        });
        let (tx, rx) = std::sync::mpsc::sync_channel(shared.config.queue_depth);
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("osprey-log-indexer".into())
            .spawn(move || writer::run(s, rx))
            .map_err(|e| LogError::Io(format!("cannot start the log indexing thread: {e}")))?;
        Ok(Self {
            shared,
            jobs: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LogsConfig {
        &self.shared.config
    }

    /// The schema.
    pub fn schema(&self) -> &LogSchema {
        &self.shared.schema
    }

    /// The counters.
    pub fn metrics(&self) -> &LogMetrics {
        &self.shared.metrics
    }

    /// The partitions overlapping `[start, end)`, oldest first.
    pub fn partitions(&self, start_ns: i64, end_ns: i64) -> Vec<Arc<Partition>> {
        self.shared
            .partitions
            .read()
            .expect("partitions lock")
            .iter()
            .filter(|p| p.span.overlaps(start_ns, end_ns))
            .cloned()
            .collect()
    }

    /// The partition starting at `start_ns`, if it still exists.
    pub fn partition(&self, start_ns: i64) -> Option<Arc<Partition>> {
        self.shared
            .partitions
            .read()
            .expect("partitions lock")
            .iter()
            .find(|p| p.span.start_ns == start_ns)
            .cloned()
    }

    /// Directories of all partitions, oldest first.
    pub fn partition_dirs(&self) -> Vec<PathBuf> {
        self.partitions(i64::MIN, i64::MAX)
            .iter()
            .map(|p| p.dir.clone())
            .collect()
    }

    /// A feed of commits (for tailing).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<CommitEvent> {
        self.shared.commits.subscribe()
    }

    /// Ends every live tail (the server is stopping).
    pub fn close_tails(&self) {
        self.shared.closing.send_replace(true);
    }

    /// Becomes `true` when the server stops.
    pub fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.shared.closing.subscribe()
    }

    /// Queues `lines` for indexing and waits for the commit that makes
    /// them durable and searchable. With `batch` (`X-Osprey-Batch`), lines
    /// of a batch already committed are skipped.
    pub async fn push(
        &self,
        lines: Vec<PreparedLine>,
        batch: Option<(String, u64)>,
    ) -> Result<PushOutcome, LogError> {
        let (done, wait) = tokio::sync::oneshot::channel();
        let job = writer::Job { lines, batch, done };
        let tx = self
            .jobs
            .lock()
            .expect("jobs lock")
            .clone()
            .ok_or(LogError::Closed)?;
        match tx.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(LogError::Overloaded),
            Err(TrySendError::Disconnected(_)) => return Err(LogError::Closed),
        }
        drop(tx);
        wait.await.map_err(|_| LogError::Closed)?
    }

    /// Pushes from a thread outside the async runtime.
    pub fn push_blocking(
        &self,
        lines: Vec<PreparedLine>,
        batch: Option<(String, u64)>,
    ) -> Result<PushOutcome, LogError> {
        let (done, wait) = tokio::sync::oneshot::channel();
        let job = writer::Job { lines, batch, done };
        let tx = self
            .jobs
            .lock()
            .expect("jobs lock")
            .clone()
            .ok_or(LogError::Closed)?;
        // Blocking callers (benchmarks, tools) wait for room instead.
        tx.send(job).map_err(|_| LogError::Closed)?;
        drop(tx);
        wait.blocking_recv().map_err(|_| LogError::Closed)?
    }

    /// Stops accepting pushes, lets the indexing thread commit what is
    /// queued and waits for it.
    pub fn shutdown(&self) {
        self.close_tails();
        drop(self.jobs.lock().expect("jobs lock").take());
        if let Some(t) = self.thread.lock().expect("thread lock").take() {
            let _ = t.join();
        }
    }
}

impl Drop for LogStore {
    fn drop(&mut self) {
        self.shutdown();
    }
}
