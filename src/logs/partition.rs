//! Time partitions: one tantivy index per span of time (a day by default)
//! under `<data_dir>/logs/<start>/`, so that retention deletes whole
//! directories and queries skip partitions outside their range.
//!
//! Each partition records its exact span in `partition.json` (written
//! before the index), so a change of the configured length never makes
//! spans overlap or lines land in the wrong place, and the format of its
//! contents ([`FORMAT`]): formats 2 and 3 are read and written with their
//! own schemas ([`LogSchema::for_format`]); format 1 is refused with an
//! error saying what to do, never misread.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tantivy::directory::MmapDirectory;
use tantivy::store::Compressor;
use tantivy::{Index, IndexReader, IndexSettings, ReloadPolicy};

use super::LogError;
use super::schema::LogSchema;
use super::streams::StreamTable;

/// The span file's name.
const SPAN_FILE: &str = "partition.json";

/// The partition format this version writes: 4 = lines carry a stream id
/// (labels are in the stream table, `streams.jsonl`) and their length in
/// bytes (a fast field), and no field has field norms (nothing is scored).
/// Formats 2 (no length) and 3 (field norms) are still read and written
/// with their own schemas ([`LogSchema::for_format`]); format 1 (no
/// `format` key) stored every line's labels in the index and is refused.
pub const FORMAT: u32 = 4;

/// The oldest format this version reads.
pub const OLDEST_FORMAT: u32 = 2;

/// What `partition.json` holds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct SpanFile {
    #[serde(flatten)]
    span: Span,
    /// Absent in format 1.
    #[serde(default = "format_1")]
    format: u32,
}

fn format_1() -> u32 {
    1
}

/// The time span of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// First nanosecond of the partition.
    pub start_ns: i64,
    /// First nanosecond after it.
    pub end_ns: i64,
}

impl Span {
    /// Whether `[start, end)` overlaps this span.
    pub fn overlaps(&self, start_ns: i64, end_ns: i64) -> bool {
        self.start_ns < end_ns && start_ns < self.end_ns
    }

    /// Whether `ts` falls in it.
    pub fn contains(&self, ts: i64) -> bool {
        self.start_ns <= ts && ts < self.end_ns
    }
}

/// One partition: its index and a reader reloaded after each commit.
pub struct Partition {
    /// Its span.
    pub span: Span,
    /// Its directory.
    pub dir: PathBuf,
    /// Its format ([`FORMAT`] or an older one still read).
    pub format: u32,
    /// The schema of its index (that of its format: documents for it are
    /// made with this one).
    pub schema: LogSchema,
    /// The index.
    pub index: Index,
    /// The reader searches use.
    pub reader: IndexReader,
    /// Its streams (written by the indexing thread only).
    pub streams: std::sync::RwLock<StreamTable>,
}

impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partition")
            .field("span", &self.span)
            .field("dir", &self.dir)
            .finish()
    }
}

/// The directory name of a partition starting at `start_ns`:
/// `YYYY-MM-DD` at midnight, `YYYY-MM-DDTHH-MM` otherwise.
pub fn dir_name(start_ns: i64) -> String {
    let t = chrono::DateTime::from_timestamp_nanos(start_ns);
    if start_ns.rem_euclid(86_400 * 1_000_000_000) == 0 {
        t.format("%Y-%m-%d").to_string()
    } else {
        t.format("%Y-%m-%dT%H-%M").to_string()
    }
}

impl Partition {
    /// Creates (or opens) the partition for `span` under `root`.
    pub fn create(
        root: &Path,
        span: Span,
        schema: &LogSchema,
        compressor: Compressor,
    ) -> Result<Self, LogError> {
        let dir = root.join(dir_name(span.start_ns));
        std::fs::create_dir_all(&dir).map_err(|e| LogError::io(&dir, e))?;
        let span_path = dir.join(SPAN_FILE);
        if !span_path.exists() {
            // Written (and synced) before the index exists, so every index
            // directory has a span.
            let tmp = dir.join(format!("{SPAN_FILE}.tmp"));
            let json = serde_json::to_vec(&SpanFile {
                span,
                format: FORMAT,
            })
            .expect("serialisable");
            write_synced(&tmp, &json).map_err(|e| LogError::io(&tmp, e))?;
            std::fs::rename(&tmp, &span_path).map_err(|e| LogError::io(&span_path, e))?;
            sync_dir(&dir).map_err(|e| LogError::io(&dir, e))?;
            sync_dir(root).map_err(|e| LogError::io(root, e))?;
        }
        Self::open(&dir, schema, compressor)
    }

    /// Opens the partition in `dir` (creating the index if only the span
    /// file exists: a crash between the two).
    pub fn open(dir: &Path, schema: &LogSchema, compressor: Compressor) -> Result<Self, LogError> {
        let span_path = dir.join(SPAN_FILE);
        let file: SpanFile = serde_json::from_slice(
            &std::fs::read(&span_path).map_err(|e| LogError::io(&span_path, e))?,
        )
        .map_err(|e| LogError::Corrupt(format!("{}: {e}", span_path.display())))?;
        if !(OLDEST_FORMAT..=FORMAT).contains(&file.format) {
            return Err(LogError::Corrupt(format!(
                "the log partition {} is in format {} (written by another version of Osprey); \
                 this version reads formats {OLDEST_FORMAT} to {FORMAT} only (lines refer to a \
                 stream table instead of carrying their labels) and does not convert it: move the \
                 directory out of the logs directory (or delete it) and start again",
                dir.display(),
                file.format
            )));
        }
        let schema = if file.format == FORMAT {
            schema.clone()
        } else {
            LogSchema::for_format(file.format)
        };
        let span = file.span;
        let mmap = MmapDirectory::open(dir)
            .map_err(|e| LogError::Index(format!("{}: {e}", dir.display())))?;
        let index = Index::builder()
            .schema(schema.schema.clone())
            .settings(IndexSettings {
                docstore_compression: compressor,
                ..IndexSettings::default()
            })
            .open_or_create(mmap)
            .map_err(|e| LogError::Index(format!("{}: {e}", dir.display())))?;
        // The same tokens as tantivy's own `default`, in less time.
        index
            .tokenizers()
            .register("default", super::tokenizer::MessageTokenizer::default());
        if index.schema() != schema.schema {
            return Err(LogError::Corrupt(format!(
                "{}: the index has another schema than this version of Osprey writes",
                dir.display()
            )));
        }
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|e| LogError::Index(format!("{}: {e}", dir.display())))?;
        let streams = std::sync::RwLock::new(StreamTable::open(dir)?);
        Ok(Self {
            span,
            dir: dir.to_path_buf(),
            format: file.format,
            schema,
            index,
            reader,
            streams,
        })
    }

    /// Bytes on disk.
    pub fn disk_bytes(&self) -> u64 {
        dir_bytes(&self.dir)
    }
}

/// Total size of the files in `dir` (not recursive: tantivy keeps one
/// flat directory).
pub fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// The span a new partition for `ts` gets: the aligned span of
/// `length_ns`, clipped so as not to overlap its neighbours.
pub fn span_for(ts: i64, length_ns: i64, existing: &[Span]) -> Span {
    let start = ts.div_euclid(length_ns) * length_ns;
    let mut span = Span {
        start_ns: start,
        end_ns: start.saturating_add(length_ns),
    };
    for s in existing {
        if s.end_ns <= ts {
            span.start_ns = span.start_ns.max(s.end_ns);
        } else if s.start_ns > ts {
            span.end_ns = span.end_ns.min(s.start_ns);
        }
    }
    span
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400 * 1_000_000_000;

    #[test]
    fn names_and_spans() {
        assert_eq!(dir_name(0), "1970-01-01");
        assert_eq!(dir_name(DAY + 6 * 3_600_000_000_000), "1970-01-02T06-00");
        let s = span_for(DAY + 5, DAY, &[]);
        assert_eq!(
            s,
            Span {
                start_ns: DAY,
                end_ns: 2 * DAY
            }
        );
        // A neighbour made with another length clips the new span.
        let existing = [Span {
            start_ns: DAY,
            end_ns: DAY + 100,
        }];
        let s = span_for(DAY + 200, DAY, &existing);
        assert_eq!(
            s,
            Span {
                start_ns: DAY + 100,
                end_ns: 2 * DAY
            }
        );
        let s = span_for(DAY - 5, DAY, &existing);
        assert_eq!(
            s,
            Span {
                start_ns: 0,
                end_ns: DAY
            }
        );
    }

    /// Partitions of formats 2 and 3 (left by earlier versions) are
    /// written and searched next to a new one: terms, phrases, level and
    /// label filters, histograms.
    #[test]
    fn every_readable_format_is_written_and_searched() {
        use std::collections::BTreeMap;
        use std::sync::Arc;

        use crate::logs::query::{Direction, SearchParams};
        use crate::logs::schema::{PreparedLine, StreamLabels, parse_level};
        use crate::logs::{LogStore, LogsConfig, now_ns};

        let root = tempfile::tempdir().unwrap();
        let today = now_ns().div_euclid(DAY) * DAY;
        let formats = [2, 3, FORMAT];
        // The day before yesterday in format 2, yesterday in format 3, as
        // earlier versions left them; today's is created in the current one.
        for (i, format) in formats[..2].iter().enumerate() {
            let start = today - (2 - i as i64) * DAY;
            let dir = root.path().join(dir_name(start));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(
                dir.join(SPAN_FILE),
                format!(
                    r#"{{"start_ns":{start},"end_ns":{},"format":{format}}}"#,
                    start + DAY
                ),
            )
            .unwrap();
        }
        let config = LogsConfig {
            commit_interval: std::time::Duration::from_millis(5),
            retention: std::time::Duration::from_secs(30 * 86_400),
            ..LogsConfig::default()
        };
        let store = LogStore::open(root.path(), config, &prometheus::Registry::new()).unwrap();
        let stream = |ns: &str| {
            Arc::new(StreamLabels::new(BTreeMap::from([(
                "namespace".to_string(),
                ns.to_string(),
            )])))
        };
        let (prod, dev) = (stream("prod"), stream("dev"));
        for day in 0..3 {
            let t = today - (2 - day) * DAY + 1_000;
            let line = |i: i64, s: &Arc<StreamLabels>, m: String| PreparedLine {
                ts_ns: t + i,
                stream: s.clone(),
                level: parse_level(&m),
                message: m,
            };
            let lines = vec![
                line(0, &prod, format!("ERROR day{day} connection refused by db")),
                line(
                    1,
                    &prod,
                    format!("INFO day{day} refused connection politely"),
                ),
                line(2, &dev, format!("ERROR day{day} connection refused in dev")),
            ];
            store.push_blocking(lines, None).unwrap();
        }
        let got: Vec<u32> = store
            .partitions(i64::MIN, i64::MAX)
            .iter()
            .map(|p| p.format)
            .collect();
        assert_eq!(got, formats);
        let params = SearchParams {
            start_ns: today - 2 * DAY,
            end_ns: today + DAY,
            limit: 100,
            cursor: None,
            direction: Direction::Forward,
        };
        let search = |q: &str| -> Vec<String> {
            let q = store.parse_query(q).unwrap();
            let page = store.search(q.as_ref(), &params).unwrap();
            page.lines.into_iter().map(|l| l.message).collect()
        };
        let per_day =
            |f: &dyn Fn(i64) -> Vec<String>| -> Vec<String> { (0..3).flat_map(f).collect() };
        assert_eq!(
            search("\"connection refused\""),
            per_day(&|d| vec![
                format!("ERROR day{d} connection refused by db"),
                format!("ERROR day{d} connection refused in dev"),
            ])
        );
        assert_eq!(search("refused connection").len(), 9);
        assert_eq!(
            search("namespace:prod AND level:error"),
            per_day(&|d| vec![format!("ERROR day{d} connection refused by db")])
        );
        assert_eq!(
            search("day1 AND politely"),
            ["INFO day1 refused connection politely"]
        );
        let q = store.parse_query("level:error").unwrap();
        let h = store
            .histogram(
                q.as_ref(),
                (today - 2 * DAY) / 1_000_000,
                (today + DAY) / 1_000_000,
                DAY / 1_000_000,
            )
            .unwrap();
        let counts: Vec<u64> = h.buckets.iter().map(|b| b.count).collect();
        assert_eq!(counts, [2, 2, 2]);
        store.shutdown();
    }

    #[test]
    fn a_partition_of_the_previous_format_is_refused_with_what_to_do() {
        let root = tempfile::tempdir().unwrap();
        let schema = LogSchema::new();
        let span = Span {
            start_ns: 0,
            end_ns: DAY,
        };
        let p = Partition::create(root.path(), span, &schema, Compressor::None).unwrap();
        assert_eq!(p.span, span);
        let dir = p.dir.clone();
        drop(p);
        let reopened = Partition::open(&dir, &schema, Compressor::None).unwrap();
        assert_eq!(reopened.span, span);
        drop(reopened);
        // Format 1 wrote the span alone.
        std::fs::write(
            dir.join(SPAN_FILE),
            r#"{"start_ns":0,"end_ns":86400000000000}"#,
        )
        .unwrap();
        let e = Partition::open(&dir, &schema, Compressor::None).unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains("format 1") && e.contains("formats 2 to 4"),
            "{e}"
        );
        assert!(e.contains("move the directory"), "{e}");
    }
}
