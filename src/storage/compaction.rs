//! Compaction: merging adjacent small blocks into longer ones.
//!
//! The ladder of block lengths is `block_duration × 6^k` (2 h → 12 h → 3 d → 18 d), capped at
//! the maximum block length. A window of the ladder is compacted once it is complete (its
//! end is at or before the oldest time the head still accepts) and holds two or more
//! blocks. Blocks never overlap, so merging copies the chunks of each series unchanged.
//! The new block records its sources in `meta.json`; if the process dies before the
//! sources are deleted, opening the store deletes them (the merged block supersedes them).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::block::{Block, BlockMeta, ChunkData, write_block};
use super::error::Result;
use super::labels::Labels;

/// Picks one set of blocks to merge: indexes into `metas` (sorted by `min_t`), or `None`.
pub fn plan(
    metas: &[&BlockMeta],
    complete_before: i64,
    block_ms: i64,
    max_ms: i64,
) -> Option<Vec<usize>> {
    let mut range = block_ms * 6;
    let mut ranges = Vec::new();
    while range <= max_ms {
        ranges.push(range);
        range *= 6;
    }
    if ranges.is_empty() || ranges.last() != Some(&max_ms) && max_ms > block_ms {
        ranges.push(max_ms);
    }
    for &range in &ranges {
        let mut groups: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
        for (i, m) in metas.iter().enumerate() {
            let w = m.min_t.div_euclid(range);
            if m.max_t <= (w + 1) * range && m.max_t - m.min_t < range {
                groups.entry(w).or_default().push(i);
            }
        }
        for (w, idx) in groups {
            if idx.len() >= 2 && (w + 1) * range <= complete_before {
                return Some(idx);
            }
        }
    }
    None
}

/// Merges `sources` (sorted by time, non-overlapping) into one block under `parent`.
pub fn merge(parent: &Path, sources: &[Arc<Block>]) -> Result<PathBuf> {
    let mut series: BTreeMap<Labels, Vec<(usize, super::block::ChunkRef)>> = BTreeMap::new();
    for (si, b) in sources.iter().enumerate() {
        for r in 0..b.index().len() as u32 {
            let refs = b.chunk_refs(r)?;
            series
                .entry(b.index().labels(r)?)
                .or_default()
                .extend(refs.into_iter().map(|c| (si, c)));
        }
    }
    let first = sources[0].meta();
    let meta = BlockMeta {
        version: 2,
        min_t: sources
            .iter()
            .map(|b| b.meta().min_t)
            .min()
            .expect("non-empty"),
        max_t: sources
            .iter()
            .map(|b| b.meta().max_t)
            .max()
            .expect("non-empty"),
        resolution_ms: first.resolution_ms,
        num_series: 0,
        num_samples: sources.iter().map(|b| b.meta().num_samples).sum(),
        num_chunks: 0,
        level: sources.iter().map(|b| b.meta().level).max().unwrap_or(0) + 1,
        sources: sources.iter().map(|b| b.meta().dir_name()).collect(),
    };
    // Chunks are decoded and re-encoded so that a series gets few, large chunks in the
    // longer block (pco compresses long runs much better than many short ones).
    let mut err = None;
    let iter = series.into_iter().map_while(|(labels, mut refs)| {
        refs.sort_by_key(|(_, c)| (c.column, c.min_t));
        let mut chunks = Vec::new();
        let mut i = 0;
        while i < refs.len() {
            let column = refs[i].1.column;
            let mut samples = Vec::new();
            while i < refs.len() && refs[i].1.column == column {
                let (si, c) = refs[i];
                match sources[si].read_samples(&c) {
                    Ok(s) => samples.extend(s),
                    Err(e) => {
                        err = Some(e);
                        return None;
                    }
                }
                i += 1;
            }
            chunks.extend(ChunkData::seal(column, &samples));
        }
        Some((labels, chunks))
    });
    let path = write_block(parent, meta, iter)?;
    if let Some(e) = err {
        let _ = std::fs::remove_dir_all(&path);
        return Err(e);
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(min_t: i64, max_t: i64) -> BlockMeta {
        BlockMeta {
            version: 2,
            min_t,
            max_t,
            resolution_ms: 0,
            num_series: 0,
            num_samples: 0,
            num_chunks: 0,
            level: 0,
            sources: vec![],
        }
    }

    #[test]
    fn plans_only_complete_windows() {
        let h = 3_600_000;
        let blocks: Vec<BlockMeta> = (0..8).map(|i| m(i * 2 * h, (i + 1) * 2 * h)).collect();
        let refs: Vec<&BlockMeta> = blocks.iter().collect();
        // The first 12 h window holds blocks 0..6; complete once the head starts at 12 h.
        assert_eq!(plan(&refs, 11 * h, 2 * h, 31 * 24 * h), None);
        assert_eq!(
            plan(&refs, 12 * h, 2 * h, 31 * 24 * h),
            Some(vec![0, 1, 2, 3, 4, 5])
        );
        // A merged 12 h block plus 2 h blocks of the next window.
        let merged = [m(0, 12 * h), m(12 * h, 14 * h), m(14 * h, 16 * h)];
        let refs: Vec<&BlockMeta> = merged.iter().collect();
        assert_eq!(
            plan(&refs, 16 * h, 2 * h, 31 * 24 * h),
            None,
            "second window incomplete"
        );
        assert_eq!(plan(&refs, 24 * h, 2 * h, 31 * 24 * h), Some(vec![1, 2]));
        // Nothing merges beyond the maximum block length.
        assert_eq!(plan(&refs, 100 * h, 2 * h, 2 * h), None);
    }
}
