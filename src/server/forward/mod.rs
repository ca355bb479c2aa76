//! Forwarding: the server hands selected series to external Prometheus
//! remote-write receivers and log streams to external Loki push endpoints
//! (see `docs/forwarding.md`).
//!
//! Each target has its own persistent queue and delivery task: the agent's
//! shipper ([`osprey_collector::ship`]), run with every batch written to
//! disk and fsynced as it is queued. The ingest handler queues the
//! matching part of a request *after* storing it and *before* answering
//! 2xx ([`Forwarders::store_and_forward`]), so:
//!
//! - an acknowledged sample is on disk in every matching target's queue
//!   and survives kill -9 and power loss; it is delivered at least once;
//! - a crash between storing and queueing leaves the request
//!   unacknowledged: the sender retries, the storage drops the duplicates,
//!   and the retry is queued;
//! - storing and queueing happen under one lock, so the queue order is the
//!   storage's append order and each series reaches the target in order.
//!
//! - [`config`]: the `[server.forward]` table;
//! - [`selector`]: series and stream selectors;
//! - [`loki`]: encoding log streams for Loki's push API.

pub mod config;
pub mod loki;
pub mod selector;

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use osprey_collector::ship::{
    Label as WireLabel, Payload, Sample as WireSample, Shipper, ShipperFeed, ShipperHandle,
    ShipperStats, TimeSeries, encode_batch,
};

pub use config::{ForwardConfig, LokiTarget, RemoteWriteTarget};
pub use loki::LogStream;
pub use selector::SelectorSet;

use crate::storage::sample::with_refs;
use crate::storage::{AppendReport, SeriesSamples, SeriesSamplesRef, Storage, StorageError};

/// `User-Agent` of forwarded requests.
const USER_AGENT: &str = concat!("osprey-server/", env!("CARGO_PKG_VERSION"));

/// What a target receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// Series, over Prometheus remote-write.
    RemoteWrite,
    /// Log streams, over Loki's push API.
    Loki,
}

impl TargetKind {
    /// The `type` label value on `/metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::RemoteWrite => "remote_write",
            TargetKind::Loki => "loki",
        }
    }
}

/// One running target.
struct Target {
    name: String,
    kind: TargetKind,
    selectors: SelectorSet,
    feed: ShipperFeed,
    /// Samples (or lines) queued since start.
    queued: AtomicU64,
}

/// A snapshot of one target for `/metrics`.
#[derive(Debug, Clone)]
pub struct TargetStats {
    /// The target's name.
    pub name: String,
    /// What it receives.
    pub kind: TargetKind,
    /// Samples or log lines queued since start.
    pub queued: u64,
    /// The shipper's counters and queue sizes.
    pub shipper: ShipperStats,
}

impl TargetStats {
    /// Seconds the oldest waiting batch has waited; 0 when none waits.
    pub fn lag_seconds(&self, now: SystemTime) -> f64 {
        self.shipper
            .oldest_queued
            .and_then(|t| now.duration_since(t).ok())
            .map_or(0.0, |d| d.as_secs_f64())
    }
}

/// Why a request could not be stored and queued.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The storage refused or failed (nothing was queued).
    #[error("storing the samples failed: {0}")]
    Store(#[from] StorageError),
    /// A target's queue could not take the batch; the request must not be
    /// acknowledged (the sender retries; the storage drops duplicates).
    #[error("queueing for forwarding target {target} failed: {source}")]
    Queue {
        /// The target.
        target: String,
        /// The cause.
        source: osprey_collector::ship::EnqueueError,
    },
}

/// Every forwarding target of the server.
pub struct Forwarders {
    targets: Vec<Target>,
    /// Kept to stop the delivery tasks on shutdown.
    handles: Mutex<Vec<ShipperHandle>>,
    /// Serialises "store, then queue" so queue order is storage order.
    order: Mutex<()>,
}

impl std::fmt::Debug for Forwarders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.targets.iter().map(|t| &t.name))
            .finish()
    }
}

impl Forwarders {
    /// No targets: [`Forwarders::store_and_forward`] only stores.
    pub fn none() -> Self {
        Self {
            targets: Vec::new(),
            handles: Mutex::new(Vec::new()),
            order: Mutex::new(()),
        }
    }

    /// Validates the targets, opens their queues (resuming what a previous
    /// run left) and starts their delivery tasks on the current tokio
    /// runtime. Without targets no runtime is needed.
    pub fn start(config: &ForwardConfig, data_dir: &Path) -> Result<Self, String> {
        let mut forwarders = Self::none();
        if config.remote_write.is_empty() && config.loki.is_empty() {
            return Ok(forwarders);
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err("forwarding needs a tokio runtime".into());
        }
        let mut names = std::collections::HashSet::new();
        let mut dirs = std::collections::HashSet::new();
        let mut add = |common: config::Common<'_>,
                       kind: TargetKind,
                       selectors: SelectorSet|
         -> Result<(), String> {
            common.validate()?;
            if !names.insert(common.name.to_string()) {
                return Err(format!(
                    "two forward targets are named {:?}; names must be unique",
                    common.name
                ));
            }
            if !dirs.insert(common.queue_dir(data_dir)) {
                return Err(format!(
                    "forward target {}: its queue_dir {} is another target's; every target needs its own",
                    common.name,
                    common.queue_dir(data_dir).display()
                ));
            }
            let payload = match kind {
                TargetKind::RemoteWrite => Payload::RemoteWrite,
                TargetKind::Loki => Payload::LokiJson,
            };
            let handle = Shipper::spawn_with(common.shipper_config(data_dir), payload, USER_AGENT)
                .map_err(|e| format!("forward target {}: {e}", common.name))?;
            tracing::info!(target_name = common.name, url = common.url, kind = kind.as_str(), queue = %common.queue_dir(data_dir).display(), "forwarding enabled");
            forwarders.targets.push(Target {
                name: common.name.to_string(),
                kind,
                selectors,
                feed: handle.feed(),
                queued: AtomicU64::new(0),
            });
            lock(&forwarders.handles).push(handle);
            Ok(())
        };
        for target in &config.remote_write {
            let selectors = SelectorSet::parse_series(&target.matchers)
                .map_err(|e| format!("forward target {}: {e}", target.name))?;
            add(target.common(), TargetKind::RemoteWrite, selectors)?;
        }
        for target in &config.loki {
            let selectors = SelectorSet::parse_streams(&target.selectors)
                .map_err(|e| format!("forward target {}: {e}", target.name))?;
            add(target.common(), TargetKind::Loki, selectors)?;
        }
        Ok(forwarders)
    }

    /// True when any remote-write target is configured.
    pub fn forwards_series(&self) -> bool {
        self.targets
            .iter()
            .any(|t| t.kind == TargetKind::RemoteWrite)
    }

    /// True when any Loki target is configured.
    pub fn forwards_logs(&self) -> bool {
        self.targets.iter().any(|t| t.kind == TargetKind::Loki)
    }

    /// Appends `batch` to `storage`, then queues the series each
    /// remote-write target selects, durably, before returning. Blocking:
    /// call from a blocking context. On `Err` the request must not be
    /// acknowledged.
    ///
    /// Every series of the request is forwarded as received (original
    /// timestamps), including samples the storage found duplicate; samples
    /// the storage refused are forwarded too, since the report does not
    /// say which they are; a target refusing them drops that batch
    /// (counted as rejected).
    pub fn store_and_forward(
        &self,
        storage: &Storage,
        batch: &[SeriesSamples],
    ) -> Result<AppendReport, ForwardError> {
        with_refs(batch, |refs| self.store_and_forward_refs(storage, refs))
    }

    /// [`Forwarders::store_and_forward`] of borrowed series (the ingest path).
    pub fn store_and_forward_refs(
        &self,
        storage: &Storage,
        batch: &[SeriesSamplesRef<'_>],
    ) -> Result<AppendReport, ForwardError> {
        if !self.forwards_series() {
            return Ok(storage.append_refs(batch)?);
        }
        // Select and encode outside the lock; only storing and queueing
        // need to be ordered.
        let mut bodies = Vec::new();
        for target in self
            .targets
            .iter()
            .filter(|t| t.kind == TargetKind::RemoteWrite)
        {
            let selected: Vec<TimeSeries> = batch
                .iter()
                .filter(|s| {
                    !s.samples.is_empty() && target.selectors.matches_with(|n| s.labels.get(n))
                })
                .map(to_wire)
                .collect();
            if selected.is_empty() {
                continue;
            }
            let (body, samples) = encode_batch(selected).map_err(|source| ForwardError::Queue {
                target: target.name.clone(),
                source,
            })?;
            bodies.push((target, body, samples));
        }
        let _order = lock(&self.order);
        let report = storage.append_refs(batch)?;
        for (target, body, samples) in bodies {
            let samples = target
                .feed
                .enqueue_body_durable(body, samples)
                .map_err(|source| ForwardError::Queue {
                    target: target.name.clone(),
                    source,
                })?;
            target.queued.fetch_add(samples, Ordering::Relaxed);
        }
        Ok(report)
    }

    /// The hook for log ingest: queues the streams each Loki target
    /// selects, durably, before returning. Call it after the lines are
    /// committed and before acknowledging the push, under the same
    /// ordering discipline (one push at a time per source). Blocking.
    pub fn forward_logs(&self, streams: &[LogStream]) -> Result<(), ForwardError> {
        if !self.forwards_logs() {
            return Ok(());
        }
        let _order = lock(&self.order);
        for target in self.targets.iter().filter(|t| t.kind == TargetKind::Loki) {
            let selected: Vec<&LogStream> = streams
                .iter()
                .filter(|s| !s.entries.is_empty() && target.selectors.matches_with(|n| s.get(n)))
                .collect();
            if selected.is_empty() {
                continue;
            }
            let (body, lines) = loki::encode_push(&selected);
            let lines = target
                .feed
                .enqueue_body_durable(body, lines)
                .map_err(|source| ForwardError::Queue {
                    target: target.name.clone(),
                    source,
                })?;
            target.queued.fetch_add(lines, Ordering::Relaxed);
        }
        Ok(())
    }

    /// A snapshot of every target.
    pub fn stats(&self) -> Vec<TargetStats> {
        self.targets
            .iter()
            .map(|t| TargetStats {
                name: t.name.clone(),
                kind: t.kind,
                queued: t.queued.load(Ordering::Relaxed),
                shipper: t.feed.stats(),
            })
            .collect()
    }

    /// Stops the delivery tasks (each delivers for up to 2 s more). The
    /// queues are on disk already; the next start resumes them.
    pub async fn shutdown(&self) {
        let handles = std::mem::take(&mut *lock(&self.handles));
        for handle in handles {
            handle.shutdown().await;
        }
    }
}

/// A stored series in remote-write form.
fn to_wire(series: &SeriesSamplesRef<'_>) -> TimeSeries {
    TimeSeries {
        labels: series
            .labels
            .iter()
            .map(|(name, value)| WireLabel::new(name, value))
            .collect(),
        samples: series
            .samples
            .iter()
            .map(|s| WireSample::new(s.t, s.v))
            .collect(),
    }
}

/// Locks a mutex, tolerating poison: the guarded data stays consistent.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
