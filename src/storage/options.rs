//! [`StorageOptions`]: everything `Storage::open` can be told, as a plain serde struct.
//!
//! All durations are milliseconds so that the struct maps 1:1 onto a config file.

use serde::{Deserialize, Serialize};

use super::error::{Result, StorageError};

/// When the write-ahead log is flushed to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FsyncPolicy {
    /// `fsync` before every `append` returns: an acknowledged sample survives power loss.
    #[default]
    PerBatch,
    /// A background thread syncs once a second: an acknowledged sample survives a process
    /// crash (it is in the kernel's page cache) but up to one second may be lost on power loss.
    EverySecond,
}

/// Options of [`super::Storage::open`]. `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StorageOptions {
    /// WAL fsync policy (default `per_batch`).
    pub fsync: FsyncPolicy,
    /// Length of a raw block; blocks are aligned to multiples of it (default 2 h).
    pub block_duration_ms: i64,
    /// Blocks whose newest sample is older than this (relative to the newest sample stored)
    /// are deleted whole (default 15 days; `None` keeps everything).
    pub retention_age_ms: Option<i64>,
    /// When all blocks together exceed this many bytes, the oldest are deleted whole
    /// (default none).
    pub retention_bytes: Option<u64>,
    /// Rollup blocks are kept this long (default 400 days).
    pub rollup_retention_age_ms: Option<i64>,
    /// Samples older than the newest sample of their series are accepted when they are at
    /// most this much older (default 0: out-of-order samples are rejected and counted).
    pub out_of_order_window_ms: i64,
    /// A timestamp within this distance of the series' expected next timestamp (previous
    /// timestamp + previous interval) is snapped onto it, so regular series cost one bit per
    /// timestamp (default 5 ms; 0 disables snapping).
    pub grid_tolerance_ms: i64,
    /// Samples per head chunk before a new chunk is started (default 120). Sealed blocks
    /// re-encode series in larger chunks, so this only bounds the open chunk's memory.
    pub samples_per_chunk: usize,
    /// Size at which a WAL segment is closed and a new one started (default 64 MiB).
    pub wal_segment_bytes: u64,
    /// Longest block compaction produces (default 31 days, capped at 10% of the retention age).
    pub max_block_duration_ms: i64,
    /// Build 5-minute and 1-hour rollups for sealed blocks (default true).
    pub rollups: bool,
}

/// One hour in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;
/// One day in milliseconds.
pub const DAY_MS: i64 = 24 * HOUR_MS;

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            fsync: FsyncPolicy::PerBatch,
            block_duration_ms: 2 * HOUR_MS,
            retention_age_ms: Some(15 * DAY_MS),
            retention_bytes: None,
            rollup_retention_age_ms: Some(400 * DAY_MS),
            out_of_order_window_ms: 0,
            grid_tolerance_ms: 5,
            samples_per_chunk: 120,
            wal_segment_bytes: 64 << 20,
            max_block_duration_ms: 31 * DAY_MS,
            rollups: true,
        }
    }
}

impl StorageOptions {
    /// Rejects option combinations the engine cannot work with.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(StorageError::InvalidOptions(m.to_string()));
        if self.block_duration_ms < 60_000 {
            return bad("block_duration_ms must be at least one minute");
        }
        if self.out_of_order_window_ms < 0 || self.grid_tolerance_ms < 0 {
            return bad("windows and tolerances must not be negative");
        }
        if self.out_of_order_window_ms > self.block_duration_ms / 2 {
            return bad("out_of_order_window_ms must be at most half a block");
        }
        if !(2..=u16::MAX as usize).contains(&self.samples_per_chunk) {
            return bad("samples_per_chunk must be in 2..=65535");
        }
        if self.wal_segment_bytes < 4096 {
            return bad("wal_segment_bytes must be at least 4096");
        }
        Ok(())
    }

    /// The longest block compaction may produce, after the retention cap.
    pub fn effective_max_block_ms(&self) -> i64 {
        let mut m = self.max_block_duration_ms.max(self.block_duration_ms);
        if let Some(r) = self.retention_age_ms {
            m = m.min((r / 10).max(self.block_duration_ms));
        }
        // Compacted blocks are whole multiples of the block length.
        m / self.block_duration_ms * self.block_duration_ms
    }
}
