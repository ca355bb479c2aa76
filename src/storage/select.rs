//! The result of a selection: series with their samples, decoded lazily one series at a time.

use std::collections::btree_map;
use std::sync::Arc;

use super::block::{Block, ChunkRef};
use super::error::Result;
use super::labels::Labels;
use super::sample::Sample;

/// One selected series and its samples in the requested range, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The series identity.
    pub labels: Labels,
    /// Samples in `[start, end]`.
    pub samples: Vec<Sample>,
}

/// Where the samples of one selected series are: chunks of blocks, then head samples.
#[derive(Debug, Default)]
pub(crate) struct SeriesParts {
    pub(crate) blocks: Vec<(Arc<Block>, Vec<ChunkRef>)>,
    pub(crate) head: Vec<Sample>,
}

/// Iterator over selected series in label order; block chunks are read and decoded only
/// when the series is reached.
#[derive(Debug)]
pub struct SeriesSet {
    pub(crate) iter: btree_map::IntoIter<Labels, SeriesParts>,
    pub(crate) start: i64,
    pub(crate) end: i64,
}

impl SeriesSet {
    fn load(&self, labels: Labels, parts: SeriesParts) -> Result<Series> {
        if parts.blocks.is_empty() {
            // Only head samples (the recent hours): already in range and
            // sorted, taken as they are.
            return Ok(Series {
                labels,
                samples: parts.head,
            });
        }
        let mut samples = Vec::new();
        for (block, refs) in &parts.blocks {
            for c in refs {
                let decoded = block.read_samples(c)?;
                if c.min_t >= self.start && c.max_t <= self.end {
                    samples.extend_from_slice(&decoded);
                } else {
                    samples.extend(
                        decoded
                            .into_iter()
                            .filter(|s| s.t >= self.start && s.t <= self.end),
                    );
                }
            }
        }
        let sorted_before = samples.len();
        samples.extend_from_slice(&parts.head);
        if sorted_before > 0
            && sorted_before < samples.len()
            && samples[sorted_before].t <= samples[sorted_before - 1].t
        {
            samples.sort_by_key(|s| s.t);
            samples.dedup_by_key(|s| s.t);
        }
        Ok(Series { labels, samples })
    }
}

impl Iterator for SeriesSet {
    type Item = Result<Series>;

    fn next(&mut self) -> Option<Result<Series>> {
        let (labels, parts) = self.iter.next()?;
        Some(self.load(labels, parts))
    }
}
