//! Counters of log collection and shipping, read by `/metrics`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// Live counters (atomics, updated by the tailer and sender threads).
#[derive(Debug, Default)]
pub struct LogStats {
    /// Files open for tailing.
    pub files_open: AtomicU64,
    /// Bytes read from log files.
    pub bytes_read: AtomicU64,
    /// Physical lines read.
    pub lines_read: AtomicU64,
    /// Entries put into batches (after joining fragments and multiline).
    pub entries: AtomicU64,
    /// Entries cut at `max_line_bytes`.
    pub truncated: AtomicU64,
    /// Entries with invalid UTF-8 replaced by U+FFFD.
    pub invalid_utf8: AtomicU64,
    /// Lines that did not decode in their file's format (sent as plain text).
    pub parse_errors: AtomicU64,
    /// Files rotated away by rename or deleted (read to their end).
    pub rotations: AtomicU64,
    /// Files truncated in place (copytruncate), restarted from 0.
    pub truncations: AtomicU64,
    /// Files that could not be opened or read.
    pub read_errors: AtomicU64,
    /// Batches the receiver acknowledged.
    pub batches_sent: AtomicU64,
    /// Entries the receiver acknowledged.
    pub entries_sent: AtomicU64,
    /// Request body bytes the receiver acknowledged.
    pub bytes_sent: AtomicU64,
    /// Pushes that failed and are retried.
    pub failed_attempts: AtomicU64,
    /// Batches refused by the receiver as invalid (dropped).
    pub rejected_batches: AtomicU64,
    /// Entries in refused batches.
    pub rejected_entries: AtomicU64,
    /// Batches waiting in the spool.
    pub spool_batches: AtomicU64,
    /// Bytes waiting in the spool.
    pub spool_bytes: AtomicU64,
    /// Damaged spool files skipped at start.
    pub spool_damaged: AtomicU64,
    /// Spool or checkpoint writes that failed.
    pub state_write_errors: AtomicU64,
    /// Times reading paused because `max_inflight_bytes` was reached.
    pub backpressure_pauses: AtomicU64,
    /// When the receiver last acknowledged a batch.
    pub last_success: Mutex<Option<SystemTime>>,
}

impl LogStats {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
