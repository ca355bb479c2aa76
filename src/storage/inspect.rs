//! `osprey storage inspect DIR`: a read-only summary of a data directory (blocks, series,
//! samples, bytes per sample, WAL). It never modifies the directory, so it is safe to run
//! next to a live server.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::block::BlockMeta;
use super::engine::resolution_dir;
use super::error::{Result, StorageError};
use super::rollup::RESOLUTIONS;
use super::wal::{self, WalStats};

/// One block in an [`InspectReport`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlockSummary {
    /// Block directory.
    pub dir: PathBuf,
    /// The block's `meta.json`.
    pub meta: BlockMeta,
    /// Bytes of `index` + `chunks`.
    pub bytes: u64,
}

impl BlockSummary {
    /// Bytes per sample (per bucket for rollups), index included.
    pub fn bytes_per_sample(&self) -> f64 {
        self.bytes as f64 / self.meta.num_samples.max(1) as f64
    }
}

/// What `inspect` found in a data directory.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InspectReport {
    /// The directory inspected.
    pub dir: PathBuf,
    /// Raw blocks, oldest first.
    pub raw_blocks: Vec<BlockSummary>,
    /// Rollup blocks per resolution (ms), oldest first.
    pub rollup_blocks: Vec<(i64, Vec<BlockSummary>)>,
    /// The write-ahead log (the head's content).
    pub wal: WalStats,
}

impl InspectReport {
    /// Samples in raw blocks.
    pub fn raw_samples(&self) -> u64 {
        self.raw_blocks.iter().map(|b| b.meta.num_samples).sum()
    }

    /// Bytes of raw blocks.
    pub fn raw_bytes(&self) -> u64 {
        self.raw_blocks.iter().map(|b| b.bytes).sum()
    }
}

fn summarize(dir: &Path) -> Result<Vec<BlockSummary>> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    for e in fs::read_dir(dir).map_err(|e| StorageError::io(dir, e))? {
        let path = e.map_err(|e| StorageError::io(dir, e))?.path();
        let meta_path = path.join("meta.json");
        if !meta_path.exists() || path.extension().is_some() {
            continue;
        }
        let meta: BlockMeta = serde_json::from_slice(
            &fs::read(&meta_path).map_err(|e| StorageError::io(&meta_path, e))?,
        )
        .map_err(|e| StorageError::corrupt(&meta_path, e.to_string()))?;
        let mut bytes = 0;
        for f in ["index", "chunks"] {
            let p = path.join(f);
            bytes += fs::metadata(&p).map_err(|e| StorageError::io(&p, e))?.len();
        }
        out.push(BlockSummary {
            dir: path,
            meta,
            bytes,
        });
    }
    out.sort_by_key(|b| b.meta.min_t);
    Ok(out)
}

/// Inspects a data directory without modifying it.
pub fn inspect(dir: &Path) -> Result<InspectReport> {
    if !dir.is_dir() {
        return Err(StorageError::io(
            dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "not a data directory"),
        ));
    }
    let blocks = dir.join("blocks");
    Ok(InspectReport {
        dir: dir.to_path_buf(),
        raw_blocks: summarize(&blocks.join(resolution_dir(0)))?,
        rollup_blocks: RESOLUTIONS
            .iter()
            .map(|&r| Ok((r, summarize(&blocks.join(resolution_dir(r)))?)))
            .collect::<Result<_>>()?,
        wal: wal::scan(&dir.join("wal"))?,
    })
}

fn ts(ms: i64) -> String {
    // UTC date-time without a calendar dependency (civil-from-days, Howard Hinnant).
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60
    )
}

impl fmt::Display for InspectReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "data directory: {}", self.dir.display())?;
        let section = |f: &mut fmt::Formatter<'_>,
                       title: &str,
                       blocks: &[BlockSummary],
                       unit: &str|
         -> fmt::Result {
            writeln!(f, "\n{title}: {} blocks", blocks.len())?;
            if blocks.is_empty() {
                return Ok(());
            }
            writeln!(
                f,
                "  {:<17} {:<17} {:>5} {:>9} {:>12} {:>12} {:>9}",
                "from",
                "to",
                "level",
                "series",
                unit,
                "bytes",
                "B/".to_string() + unit.trim_end_matches('s')
            )?;
            for b in blocks {
                writeln!(
                    f,
                    "  {:<17} {:<17} {:>5} {:>9} {:>12} {:>12} {:>9.3}",
                    ts(b.meta.min_t),
                    ts(b.meta.max_t),
                    b.meta.level,
                    b.meta.num_series,
                    b.meta.num_samples,
                    b.bytes,
                    b.bytes_per_sample()
                )?;
            }
            let samples: u64 = blocks.iter().map(|b| b.meta.num_samples).sum();
            let bytes: u64 = blocks.iter().map(|b| b.bytes).sum();
            writeln!(
                f,
                "  total: {samples} {unit}, {bytes} bytes, {:.3} bytes per {}",
                bytes as f64 / samples.max(1) as f64,
                unit.trim_end_matches('s')
            )
        };
        section(f, "raw blocks", &self.raw_blocks, "samples")?;
        for (res, blocks) in &self.rollup_blocks {
            section(
                f,
                &format!("rollup {} blocks", resolution_dir(*res)),
                blocks,
                "buckets",
            )?;
        }
        writeln!(
            f,
            "\nWAL (head): {} segments, {} bytes, {} series, {} samples{}",
            self.wal.segments,
            self.wal.bytes,
            self.wal.series,
            self.wal.samples,
            if self.wal.torn_bytes > 0 {
                format!(
                    ", {} bytes of torn tail (cut at next open)",
                    self.wal.torn_bytes
                )
            } else {
                String::new()
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_timestamps() {
        assert_eq!(ts(0), "1970-01-01T00:00Z");
        assert_eq!(ts(1_700_000_000_000), "2023-11-14T22:13Z");
        assert_eq!(ts(951_782_400_000), "2000-02-29T00:00Z");
    }
}
