//! Retention: which whole blocks to delete, by age and by total size.

/// What retention needs to know about a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockInfo {
    /// End of the block's range (exclusive).
    pub max_t: i64,
    /// Bytes on disk.
    pub size_bytes: u64,
}

/// Indexes of blocks to delete: those ending at or before `newest_t − max_age`, then the
/// oldest remaining ones while the total exceeds `max_bytes`. `blocks` is sorted oldest first.
pub fn expired(
    blocks: &[BlockInfo],
    newest_t: i64,
    max_age: Option<i64>,
    max_bytes: Option<u64>,
) -> Vec<usize> {
    let mut out = Vec::new();
    if let Some(age) = max_age {
        out.extend(
            blocks
                .iter()
                .enumerate()
                .filter(|(_, b)| b.max_t <= newest_t.saturating_sub(age))
                .map(|(i, _)| i),
        );
    }
    if let Some(limit) = max_bytes {
        let mut total: u64 = blocks
            .iter()
            .enumerate()
            .filter(|(i, _)| !out.contains(i))
            .map(|(_, b)| b.size_bytes)
            .sum();
        for (i, b) in blocks.iter().enumerate() {
            if total <= limit {
                break;
            }
            if !out.contains(&i) {
                out.push(i);
                total -= b.size_bytes;
            }
        }
    }
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(max_t: i64, size_bytes: u64) -> BlockInfo {
        BlockInfo { max_t, size_bytes }
    }

    #[test]
    fn deletes_by_age_then_by_size_oldest_first() {
        let blocks = [b(10, 100), b(20, 100), b(30, 100), b(40, 100)];
        assert_eq!(expired(&blocks, 45, Some(25), None), vec![0, 1]);
        assert_eq!(expired(&blocks, 45, None, Some(250)), vec![0, 1]);
        assert_eq!(expired(&blocks, 45, Some(30), Some(150)), vec![0, 1, 2]);
        assert_eq!(expired(&blocks, 45, None, Some(400)), Vec::<usize>::new());
        assert_eq!(expired(&blocks, 45, None, None), Vec::<usize>::new());
    }
}
