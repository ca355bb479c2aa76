//! Self-metrics of the storage engine: counters updated on the hot paths with relaxed
//! atomics, read as a [`MetricsSnapshot`].

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

use super::head::AppendReport;

/// Live counters; cheap to update from any thread.
#[derive(Debug, Default)]
pub struct Metrics {
    pub(crate) samples_appended: AtomicU64,
    pub(crate) samples_duplicate: AtomicU64,
    pub(crate) samples_rejected: AtomicU64,
    pub(crate) series_created: AtomicU64,
    pub(crate) append_batches: AtomicU64,
    pub(crate) blocks_cut: AtomicU64,
    pub(crate) compactions: AtomicU64,
    pub(crate) blocks_deleted: AtomicU64,
    pub(crate) queries: AtomicU64,
    pub(crate) query_micros_total: AtomicU64,
    pub(crate) query_micros_max: AtomicU64,
    pub(crate) wal_truncated_bytes: AtomicU64,
    pub(crate) wal_group_syncs: AtomicU64,
}

impl Metrics {
    pub(crate) fn record_append(&self, r: &AppendReport) {
        self.append_batches.fetch_add(1, Relaxed);
        self.samples_appended.fetch_add(r.accepted, Relaxed);
        self.samples_duplicate.fetch_add(r.duplicates, Relaxed);
        self.samples_rejected.fetch_add(r.rejected(), Relaxed);
        self.series_created.fetch_add(r.new_series, Relaxed);
    }

    pub(crate) fn record_query(&self, d: std::time::Duration) {
        let us = d.as_micros() as u64;
        self.queries.fetch_add(1, Relaxed);
        self.query_micros_total.fetch_add(us, Relaxed);
        self.query_micros_max.fetch_max(us, Relaxed);
    }
}

/// A point-in-time copy of the engine's self-metrics.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MetricsSnapshot {
    /// Samples accepted since open.
    pub samples_appended: u64,
    /// Samples dropped as identical duplicates since open.
    pub samples_duplicate: u64,
    /// Samples rejected (out of order, too old, conflicting) since open.
    pub samples_rejected: u64,
    /// Series created in the head since open.
    pub series_created: u64,
    /// Successful `append` calls since open.
    pub append_batches: u64,
    /// Series in the head now.
    pub head_series: u64,
    /// Samples in the head now.
    pub head_samples: u64,
    /// Approximate heap bytes of the head now.
    pub head_bytes: u64,
    /// Bytes in the live WAL segments now.
    pub wal_bytes: u64,
    /// WAL bytes cut off as torn/corrupt at open.
    pub wal_truncated_bytes: u64,
    /// fsyncs made by group commit (each covers every append written before it).
    pub wal_group_syncs: u64,
    /// Raw blocks on disk now.
    pub raw_blocks: u64,
    /// Rollup blocks on disk now.
    pub rollup_blocks: u64,
    /// Approximate heap bytes of the block indexes loaded in memory now.
    pub block_index_bytes: u64,
    /// Bytes of all blocks on disk now.
    pub block_bytes: u64,
    /// Blocks cut from the head since open.
    pub blocks_cut: u64,
    /// Compactions since open.
    pub compactions: u64,
    /// Blocks deleted by retention since open.
    pub blocks_deleted: u64,
    /// Queries served since open.
    pub queries: u64,
    /// Sum of query durations in microseconds.
    pub query_micros_total: u64,
    /// Longest query in microseconds.
    pub query_micros_max: u64,
}
