//! The agent's own figures on `/metrics`: its CPU time and RSS (the
//! `prometheus` crate's process collector), collection duration, cgroups
//! seen, files held open, read errors by reason and scrapes by encoding.

use std::time::Duration;

use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry};

use crate::collect::ErrorCounts;

/// Registry and handles of the agent's self-metrics.
pub struct SelfMetrics {
    registry: Registry,
    collection_seconds: Histogram,
    cgroups: IntGauge,
    open_files: IntGauge,
    errors: IntCounterVec,
    scrapes: IntCounterVec,
}

impl SelfMetrics {
    /// Registers every self-metric.
    pub fn new() -> Self {
        let registry = Registry::new();
        let collection_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "osprey_agent_collection_duration_seconds",
                "Wall time of one collection cycle over every cgroup.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
        )
        .expect("valid histogram");
        let cgroups = IntGauge::new(
            "osprey_agent_cgroups",
            "Cgroups read in the last collection.",
        )
        .expect("valid gauge");
        let open_files = IntGauge::new(
            "osprey_agent_open_files",
            "Cgroup and /proc files held open for re-reading.",
        )
        .expect("valid gauge");
        let errors = IntCounterVec::new(
            Opts::new(
                "osprey_agent_read_errors_total",
                "Cgroup reads and metadata look-ups (reason=\"metadata\") that failed, by reason.",
            ),
            &["reason"],
        )
        .expect("valid counter");
        registry
            .register(Box::new(collection_seconds.clone()))
            .expect("unique");
        registry
            .register(Box::new(cgroups.clone()))
            .expect("unique");
        registry
            .register(Box::new(open_files.clone()))
            .expect("unique");
        let scrapes = IntCounterVec::new(
            Opts::new(
                "osprey_agent_scrapes_total",
                "Scrapes of /metrics answered, by content encoding (gzip when the scraper accepts it).",
            ),
            &["encoding"],
        )
        .expect("valid counter");
        registry.register(Box::new(errors.clone())).expect("unique");
        registry
            .register(Box::new(scrapes.clone()))
            .expect("unique");
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("unique");
        Self {
            registry,
            collection_seconds,
            cgroups,
            open_files,
            errors,
            scrapes,
        }
    }

    /// Counts a scrape of `/metrics` answered in `encoding` (`gzip` or
    /// `identity`).
    pub fn count_scrape(&self, encoding: &str) {
        self.scrapes.with_label_values(&[encoding]).inc();
    }

    /// Records one cycle.
    pub fn observe(&self, took: Duration, cgroups: usize, open_files: usize, errors: &ErrorCounts) {
        self.collection_seconds.observe(took.as_secs_f64());
        self.cgroups.set(cgroups as i64);
        self.open_files.set(open_files as i64);
        for (reason, total) in &errors.by_reason {
            let c = self.errors.with_label_values(&[reason]);
            let seen = c.get();
            if *total > seen {
                c.inc_by(total - seen);
            }
        }
    }

    /// Current values, for the exposition.
    pub fn gather(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.registry.gather()
    }
}

impl Default for SelfMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The shipper's counters as metric families (built at scrape time from a
/// snapshot of its atomics).
pub fn shipper_families(s: &crate::ship::ShipperStats) -> Vec<prometheus::proto::MetricFamily> {
    use crate::expose::families::{Family, MetricKind, Sample};
    let base = crate::expose::families::LabelSet::new(Vec::new());
    let one = |name, help, kind, value: u64| Family {
        name,
        help,
        kind,
        samples: vec![Sample {
            base: base.clone(),
            extra: Box::default(),
            value: value as f64,
            timestamp_ms: None,
        }],
    };
    let mut families = vec![
        one(
            "osprey_agent_remote_write_samples_sent_total",
            "Samples the receiver accepted.",
            MetricKind::Counter,
            s.samples_sent,
        ),
        one(
            "osprey_agent_remote_write_requests_sent_total",
            "Requests the receiver accepted.",
            MetricKind::Counter,
            s.requests_sent,
        ),
        one(
            "osprey_agent_remote_write_failed_attempts_total",
            "Requests that failed (errors, timeouts, non-2xx).",
            MetricKind::Counter,
            s.failed_attempts,
        ),
        one(
            "osprey_agent_remote_write_retries_total",
            "Requests that retried a failed one.",
            MetricKind::Counter,
            s.retries,
        ),
        one(
            "osprey_agent_remote_write_dropped_samples_total",
            "Samples dropped because the queue's bounds were hit.",
            MetricKind::Counter,
            s.dropped_samples,
        ),
        one(
            "osprey_agent_remote_write_rejected_samples_total",
            "Samples the receiver refused as invalid (non-retryable 4xx).",
            MetricKind::Counter,
            s.rejected_samples,
        ),
        one(
            "osprey_agent_remote_write_queue_batches",
            "Batches waiting to be sent.",
            MetricKind::Gauge,
            s.queue_batches,
        ),
        one(
            "osprey_agent_remote_write_queue_memory_bytes",
            "Bytes of batches waiting in memory.",
            MetricKind::Gauge,
            s.queue_memory_bytes,
        ),
        one(
            "osprey_agent_remote_write_queue_disk_bytes",
            "Bytes of batches waiting on disk.",
            MetricKind::Gauge,
            s.queue_disk_bytes,
        ),
    ];
    if let Some(t) = s
        .last_success
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
    {
        families.push(Family {
            name: "osprey_agent_remote_write_last_success_timestamp_seconds",
            help: "When the receiver last accepted a request.",
            kind: MetricKind::Gauge,
            samples: vec![Sample {
                base: base.clone(),
                extra: Box::default(),
                value: t.as_secs_f64(),
                timestamp_ms: None,
            }],
        });
    }
    crate::expose::text::to_proto(&families)
}

/// The log shipper's counters as metric families.
pub fn log_families(s: &crate::logs::LogStats) -> Vec<prometheus::proto::MetricFamily> {
    use crate::expose::families::{Family, MetricKind, Sample};
    use crate::logs::LogStats;
    let base = crate::expose::families::LabelSet::new(Vec::new());
    let one = |name, help, kind, value: f64| Family {
        name,
        help,
        kind,
        samples: vec![Sample {
            base: base.clone(),
            extra: Box::default(),
            value,
            timestamp_ms: None,
        }],
    };
    let counter = |name, help, c: &std::sync::atomic::AtomicU64| {
        one(name, help, MetricKind::Counter, LogStats::get(c) as f64)
    };
    let gauge = |name, help, c: &std::sync::atomic::AtomicU64| {
        one(name, help, MetricKind::Gauge, LogStats::get(c) as f64)
    };
    let mut families = vec![
        gauge(
            "osprey_agent_logs_files_open",
            "Log files being tailed.",
            &s.files_open,
        ),
        counter(
            "osprey_agent_logs_read_bytes_total",
            "Bytes read from log files.",
            &s.bytes_read,
        ),
        counter(
            "osprey_agent_logs_read_lines_total",
            "Physical lines read from log files.",
            &s.lines_read,
        ),
        counter(
            "osprey_agent_logs_entries_total",
            "Entries batched (after joining fragments and multiline events).",
            &s.entries,
        ),
        counter(
            "osprey_agent_logs_truncated_entries_total",
            "Entries cut at max_line_bytes.",
            &s.truncated,
        ),
        counter(
            "osprey_agent_logs_invalid_utf8_entries_total",
            "Entries whose invalid UTF-8 was replaced.",
            &s.invalid_utf8,
        ),
        counter(
            "osprey_agent_logs_parse_errors_total",
            "Lines not in their file's format (sent as plain text).",
            &s.parse_errors,
        ),
        counter(
            "osprey_agent_logs_rotations_total",
            "Files rotated by rename or deleted, read to their end.",
            &s.rotations,
        ),
        counter(
            "osprey_agent_logs_truncations_total",
            "Files truncated in place (copytruncate), read again from 0.",
            &s.truncations,
        ),
        counter(
            "osprey_agent_logs_read_errors_total",
            "Log files that could not be opened or read.",
            &s.read_errors,
        ),
        counter(
            "osprey_agent_logs_batches_sent_total",
            "Batches the receiver acknowledged.",
            &s.batches_sent,
        ),
        counter(
            "osprey_agent_logs_entries_sent_total",
            "Entries the receiver acknowledged.",
            &s.entries_sent,
        ),
        counter(
            "osprey_agent_logs_sent_bytes_total",
            "Request body bytes the receiver acknowledged.",
            &s.bytes_sent,
        ),
        counter(
            "osprey_agent_logs_failed_pushes_total",
            "Pushes that failed and were retried.",
            &s.failed_attempts,
        ),
        counter(
            "osprey_agent_logs_rejected_batches_total",
            "Batches the receiver refused as invalid (dropped).",
            &s.rejected_batches,
        ),
        counter(
            "osprey_agent_logs_rejected_entries_total",
            "Entries in refused batches.",
            &s.rejected_entries,
        ),
        gauge(
            "osprey_agent_logs_spool_batches",
            "Batches waiting for the receiver.",
            &s.spool_batches,
        ),
        gauge(
            "osprey_agent_logs_spool_bytes",
            "Bytes of batches waiting for the receiver.",
            &s.spool_bytes,
        ),
        counter(
            "osprey_agent_logs_spool_damaged_total",
            "Damaged spool files skipped.",
            &s.spool_damaged,
        ),
        counter(
            "osprey_agent_logs_state_write_errors_total",
            "Spool or checkpoint writes that failed.",
            &s.state_write_errors,
        ),
        counter(
            "osprey_agent_logs_backpressure_pauses_total",
            "Times reading paused because max_inflight_bytes was reached.",
            &s.backpressure_pauses,
        ),
    ];
    if let Some(t) = s
        .last_success
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
    {
        families.push(one(
            "osprey_agent_logs_last_success_timestamp_seconds",
            "When the receiver last acknowledged a batch.",
            MetricKind::Gauge,
            t.as_secs_f64(),
        ));
    }
    crate::expose::text::to_proto(&families)
}
