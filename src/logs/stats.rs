//! Index statistics, as Loki's `GET /loki/api/v1/index/stats` answers
//! them: how many streams, chunks, lines and bytes a stream selector
//! selects in a time range (Grafana shows them as the size of a query
//! before running it).
//!
//! Counts are exact: lines are counted from the timestamp and stream id
//! fast fields, bytes from the `bytes` fast field (the stored lines are
//! read only in partitions of format 2, which predate it). Osprey has no
//! chunks; a "chunk" here is a stream's lines within one index segment,
//! the unit its searches skip or read, so `chunks` grows with the number
//! of segments and streams the range touches as Loki's does.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use serde::Serialize;
use tantivy::query::{AllQuery, EnableScoring, Query, TermSetQuery};
use tantivy::schema::Value;
use tantivy::{DocAddress, SegmentOrdinal, Term};

use super::partition::Partition;
use super::segments::{for_each_alive, may_overlap, timestamps, u64_column};
use super::{LogError, LogStore};

/// What a stream selector selects in a time range (Loki's field names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IndexStats {
    /// Distinct streams (label sets) with at least one line in the range.
    pub streams: u64,
    /// Segment × stream pairs holding those lines.
    pub chunks: u64,
    /// Lines in the range.
    pub entries: u64,
    /// Bytes of those lines (the message, as pushed).
    pub bytes: u64,
}

impl LogStore {
    /// The statistics of the lines in `[start_ns, end_ns)` of the streams
    /// `keep` accepts (the caller folds the tenant scope into it).
    pub fn index_stats(
        &self,
        keep: &dyn Fn(&BTreeMap<String, String>) -> bool,
        start_ns: i64,
        end_ns: i64,
    ) -> Result<IndexStats, LogError> {
        let mut stats = IndexStats::default();
        let mut streams: HashSet<Arc<BTreeMap<String, String>>> = HashSet::new();
        for part in self.partitions(start_ns, end_ns) {
            let (ids, labels, total) = {
                let table = part.streams.read().expect("stream table lock");
                let ids = table.select(keep);
                let labels: Vec<_> = ids
                    .iter()
                    .filter_map(|id| table.labels(*id).cloned())
                    .collect();
                (ids, labels, table.len())
            };
            if ids.is_empty() {
                continue;
            }
            let seen = partition_stats(&part, &ids, total, start_ns, end_ns, &mut stats)?;
            for (id, labels) in ids.iter().zip(labels) {
                if seen.contains(id) {
                    streams.insert(labels);
                }
            }
        }
        stats.streams = streams.len() as u64;
        Ok(stats)
    }
}

/// Adds the lines of streams `ids` (of the partition's `total`) in
/// `[start_ns, end_ns)` to `stats`; returns the ids that had any.
fn partition_stats(
    part: &Partition,
    ids: &[u64],
    total: usize,
    start_ns: i64,
    end_ns: i64,
    stats: &mut IndexStats,
) -> Result<HashSet<u64>, LogError> {
    let err = |e: tantivy::TantivyError| LogError::Index(format!("{}: {e}", part.dir.display()));
    let searcher = part.reader.searcher();
    // Every stream selected: no need for the postings of the stream ids.
    let query: Box<dyn Query> = if ids.len() == total {
        Box::new(AllQuery)
    } else {
        Box::new(TermSetQuery::new(
            ids.iter()
                .map(|id| Term::from_field_u64(part.schema.stream_id, *id)),
        ))
    };
    let weight = query
        .weight(EnableScoring::disabled_from_searcher(&searcher))
        .map_err(err)?;
    let mut seen = HashSet::new();
    for (ord, reader) in searcher.segment_readers().iter().enumerate() {
        let ts = timestamps(reader).map_err(err)?;
        if reader.max_doc() == 0 || !may_overlap(ts.as_ref(), start_ns, end_ns) {
            continue;
        }
        let stream = u64_column(reader, "stream_id").map_err(err)?;
        // Absent in format 2: the stored lines are measured instead.
        let bytes = match part.schema.bytes {
            Some(_) => Some(u64_column(reader, "bytes").map_err(err)?),
            None => None,
        };
        let mut in_segment = HashSet::new();
        let mut legacy_docs = Vec::new();
        let (mut t, mut s, mut b) = (Vec::new(), Vec::new(), Vec::new());
        for_each_alive(weight.as_ref(), reader, &mut |docs| {
            t.resize(docs.len(), 0);
            s.resize(docs.len(), 0);
            ts.get_vals(docs, &mut t);
            stream.get_vals(docs, &mut s);
            if let Some(bytes) = &bytes {
                b.resize(docs.len(), 0);
                bytes.get_vals(docs, &mut b);
            }
            for (i, &doc) in docs.iter().enumerate() {
                if t[i] < start_ns || t[i] >= end_ns {
                    continue;
                }
                stats.entries += 1;
                in_segment.insert(s[i]);
                match bytes {
                    Some(_) => stats.bytes += b[i],
                    None => legacy_docs.push(doc),
                }
            }
        })
        .map_err(err)?;
        for doc in legacy_docs {
            let d: tantivy::TantivyDocument = searcher
                .doc(DocAddress::new(ord as SegmentOrdinal, doc))
                .map_err(err)?;
            stats.bytes += d
                .get_first(part.schema.message)
                .and_then(|v| v.as_str())
                .map_or(0, |m| m.len() as u64);
        }
        stats.chunks += in_segment.len() as u64;
        seen.extend(in_segment);
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::logs::partition::dir_name;
    use crate::logs::schema::{PreparedLine, StreamLabels};
    use crate::logs::{LogsConfig, now_ns};

    const DAY: i64 = 86_400 * 1_000_000_000;

    fn line(ts_ns: i64, stream: &Arc<StreamLabels>, message: &str) -> PreparedLine {
        PreparedLine {
            ts_ns,
            stream: stream.clone(),
            level: None,
            message: message.into(),
        }
    }

    #[test]
    fn stats_are_exact_in_both_formats() {
        let root = tempfile::tempdir().unwrap();
        // Yesterday's partition in format 2 (no `bytes` field), as an
        // earlier version left it; today's is created in the current one.
        let today = now_ns().div_euclid(DAY) * DAY;
        let yesterday = today - DAY;
        let old = root.path().join(dir_name(yesterday));
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(
            old.join("partition.json"),
            format!(r#"{{"start_ns":{yesterday},"end_ns":{today},"format":2}}"#),
        )
        .unwrap();
        let config = LogsConfig {
            commit_interval: Duration::from_millis(5),
            ..LogsConfig::default()
        };
        let store = LogStore::open(root.path(), config, &prometheus::Registry::new()).unwrap();
        let s = |ns: &str, pod: &str| {
            Arc::new(StreamLabels::new(BTreeMap::from([
                ("namespace".to_string(), ns.to_string()),
                ("pod".to_string(), pod.to_string()),
            ])))
        };
        let (a, b, c) = (s("prod", "a"), s("prod", "b"), s("dev", "c"));
        let t = yesterday + DAY / 2;
        store
            .push_blocking(
                vec![
                    line(t, &a, "one"),
                    line(t + 1, &a, "three"),
                    line(t + 2, &c, "elsewhere"),
                ],
                None,
            )
            .unwrap();
        let u = today + 10;
        store
            .push_blocking(vec![line(u, &a, "four"), line(u + 1, &b, "fives")], None)
            .unwrap();
        // A second commit: a's lines of today in two segments.
        store
            .push_blocking(vec![line(u + 2, &a, "sixsix")], None)
            .unwrap();
        let formats: Vec<u32> = store
            .partitions(i64::MIN, i64::MAX)
            .iter()
            .map(|p| p.format)
            .collect();
        assert_eq!(formats, [2, crate::logs::partition::FORMAT]);
        let prod = |l: &BTreeMap<String, String>| l["namespace"] == "prod";
        let all = store.index_stats(&prod, yesterday, today + DAY).unwrap();
        assert_eq!(
            all,
            IndexStats {
                // a (in both partitions, counted once) and b.
                streams: 2,
                // a yesterday; a twice and b today (a's commits being
                // merged into one segment would make it 3).
                chunks: all.chunks,
                entries: 5,
                bytes: (3 + 5 + 4 + 5 + 6),
            }
        );
        assert!((3..=4).contains(&all.chunks), "{all:?}");
        // The format-2 partition alone (bytes from the stored lines).
        let old = store.index_stats(&prod, yesterday, today).unwrap();
        assert_eq!(
            old,
            IndexStats {
                streams: 1,
                chunks: 1,
                entries: 2,
                bytes: 8
            }
        );
        // A range inside a partition counts only its lines.
        let one = store.index_stats(&prod, u + 1, u + 2).unwrap();
        assert_eq!(
            one,
            IndexStats {
                streams: 1,
                chunks: 1,
                entries: 1,
                bytes: 5
            }
        );
        let none = store.index_stats(&|_| false, i64::MIN, i64::MAX).unwrap();
        assert_eq!(none, IndexStats::default());
        // Searches read both formats.
        let everything = store
            .search(
                store.parse_query("").unwrap().as_ref(),
                &crate::logs::query::SearchParams {
                    start_ns: yesterday,
                    end_ns: today + DAY,
                    limit: 10,
                    cursor: None,
                    direction: crate::logs::query::Direction::Forward,
                },
            )
            .unwrap();
        let got: Vec<&str> = everything
            .lines
            .iter()
            .map(|l| l.message.as_str())
            .collect();
        assert_eq!(
            got,
            ["one", "three", "elsewhere", "four", "fives", "sixsix"]
        );
        store.shutdown();
    }
}
