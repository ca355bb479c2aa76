//! The stream table of a partition: stream id → labels, so that a line
//! stores only its stream's id (a `u64` fast and indexed field) instead of
//! its labels, and label filters (query fields `namespace:` …, LogQL
//! selectors) become a set of stream ids.
//!
//! Ids are given in order of first sight, per partition. The table lives
//! in memory and in `streams.jsonl` next to the index: one JSON object
//! `{"id":N,"labels":{…}}` per line, appended. The indexing thread writes
//! and fsyncs the records of new streams **before** the tantivy commit
//! that makes their lines durable, so a committed line's stream is always
//! on disk. A crash can leave records of streams whose lines were never
//! committed (harmless: an id without lines) and a torn last record, which
//! is cut off when the partition is opened again.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::LogError;
use super::schema::StreamLabels;

/// The table's file name.
pub const STREAMS_FILE: &str = "streams.jsonl";

#[derive(Serialize, Deserialize)]
struct Record<'a> {
    id: u64,
    #[serde(borrow)]
    labels: BTreeMap<&'a str, &'a str>,
}

/// A partition's streams.
#[derive(Debug)]
pub struct StreamTable {
    path: PathBuf,
    /// Labels by id (ids are indexes).
    by_id: Vec<Arc<BTreeMap<String, String>>>,
    /// Id by the labels' canonical JSON.
    by_json: HashMap<String, u64>,
    /// Records `..persisted` are in the file (fsynced).
    persisted: usize,
}

impl StreamTable {
    /// Loads the table of the partition in `dir` (empty when there is no
    /// file yet), cutting off a torn last record.
    pub fn open(dir: &Path) -> Result<Self, LogError> {
        let path = dir.join(STREAMS_FILE);
        let mut table = Self {
            path: path.clone(),
            by_id: Vec::new(),
            by_json: HashMap::new(),
            persisted: 0,
        };
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(table),
            Err(e) => return Err(LogError::io(&path, e)),
        };
        let mut valid = 0;
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            if !line.ends_with(b"\n") {
                // A record torn by a crash: its stream has no committed
                // line (records are synced before the commit).
                break;
            }
            let rec: Record<'_> = serde_json::from_slice(&line[..line.len() - 1]).map_err(|e| {
                LogError::Corrupt(format!(
                    "{}: record {} is not a stream: {e}",
                    path.display(),
                    table.by_id.len()
                ))
            })?;
            if rec.id != table.by_id.len() as u64 {
                return Err(LogError::Corrupt(format!(
                    "{}: record {} has id {}",
                    path.display(),
                    table.by_id.len(),
                    rec.id
                )));
            }
            let labels: BTreeMap<String, String> = rec
                .labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let json = serde_json::to_string(&labels).expect("string map serialises");
            table.by_json.insert(json, rec.id);
            table.by_id.push(Arc::new(labels));
            valid += line.len();
        }
        if valid < bytes.len() {
            tracing::warn!(file = %path.display(), bytes = bytes.len() - valid, "cutting a torn stream record");
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| LogError::io(&path, e))?;
            f.set_len(valid as u64)
                .and_then(|()| f.sync_all())
                .map_err(|e| LogError::io(&path, e))?;
        }
        table.persisted = table.by_id.len();
        Ok(table)
    }

    /// The id of `stream`, if known.
    pub fn get_id(&self, stream: &StreamLabels) -> Option<u64> {
        self.by_json.get(&stream.json).copied()
    }

    /// The id of `stream`, given a new one when unknown (written to the
    /// file by the next [`StreamTable::persist`]).
    pub fn id_for(&mut self, stream: &StreamLabels) -> u64 {
        if let Some(id) = self.by_json.get(&stream.json) {
            return *id;
        }
        let id = self.by_id.len() as u64;
        self.by_json.insert(stream.json.clone(), id);
        self.by_id.push(Arc::new(stream.labels.clone()));
        id
    }

    /// The records of streams not yet in the file, and the count to give
    /// [`StreamTable::persisted`] once they are written with
    /// [`write_records`]. Called before the commit of lines that may use
    /// them, by the indexing thread (the only writer), so that the file is
    /// written without holding the table's lock.
    pub fn unpersisted(&self) -> Option<(PathBuf, Vec<u8>, bool, usize)> {
        if self.persisted == self.by_id.len() {
            return None;
        }
        let mut buf = Vec::new();
        for (id, labels) in self.by_id.iter().enumerate().skip(self.persisted) {
            let rec = Record {
                id: id as u64,
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect(),
            };
            serde_json::to_writer(&mut buf, &rec).expect("serialisable");
            buf.push(b'\n');
        }
        Some((
            self.path.clone(),
            buf,
            self.persisted == 0,
            self.by_id.len(),
        ))
    }

    /// Records that the first `count` streams are in the file.
    pub fn persisted(&mut self, count: usize) {
        self.persisted = self.persisted.max(count);
    }

    /// Appends and fsyncs the records of streams not yet in the file (for
    /// a table not shared).
    pub fn persist(&mut self) -> Result<(), LogError> {
        if let Some((path, buf, first, count)) = self.unpersisted() {
            write_records(&path, &buf, first)?;
            self.persisted(count);
        }
        Ok(())
    }

    /// The labels of stream `id`.
    pub fn labels(&self, id: u64) -> Option<&Arc<BTreeMap<String, String>>> {
        self.by_id.get(usize::try_from(id).ok()?)
    }

    /// Every stream, by id.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Arc<BTreeMap<String, String>>)> {
        self.by_id.iter().enumerate().map(|(i, l)| (i as u64, l))
    }

    /// The ids of the streams `keep` accepts.
    pub fn select(&self, keep: &dyn Fn(&BTreeMap<String, String>) -> bool) -> Vec<u64> {
        self.iter()
            .filter(|(_, l)| keep(l))
            .map(|(id, _)| id)
            .collect()
    }

    /// Number of streams.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// No streams.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// Appends `records` to the table file at `path` and fsyncs it (and the
/// directory when the file may be new).
pub fn write_records(path: &Path, records: &[u8], may_be_new: bool) -> Result<(), LogError> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| LogError::io(path, e))?;
    f.write_all(records)
        .and_then(|()| f.sync_data())
        .map_err(|e| LogError::io(path, e))?;
    if may_be_new && let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| LogError::io(dir, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(pod: &str) -> StreamLabels {
        StreamLabels::new(BTreeMap::from([
            ("namespace".to_string(), "prod".to_string()),
            ("pod".to_string(), pod.to_string()),
        ]))
    }

    #[test]
    fn ids_survive_a_reopen_and_a_torn_record_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = StreamTable::open(dir.path()).unwrap();
        assert_eq!(t.id_for(&stream("a")), 0);
        assert_eq!(t.id_for(&stream("b")), 1);
        assert_eq!(t.id_for(&stream("a")), 0);
        t.persist().unwrap();
        // A record torn by a crash after the last sync.
        let path = dir.path().join(STREAMS_FILE);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(br#"{"id":2,"labels":{"pod":"#).unwrap();
        drop(f);
        let mut t = StreamTable::open(dir.path()).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.get_id(&stream("b")), Some(1));
        assert_eq!(t.labels(0).unwrap()["pod"], "a");
        assert_eq!(t.id_for(&stream("c")), 2);
        t.persist().unwrap();
        let t = StreamTable::open(dir.path()).unwrap();
        assert_eq!(t.get_id(&stream("c")), Some(2));
        assert_eq!(t.select(&|l| l["pod"] != "a"), vec![1, 2]);
    }

    #[test]
    fn a_damaged_record_in_the_middle_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(STREAMS_FILE),
            "{\"id\":0,\"labels\":{}}\nnot json\n{\"id\":2,\"labels\":{}}\n",
        )
        .unwrap();
        let e = StreamTable::open(dir.path()).unwrap_err();
        assert!(e.to_string().contains("record 1"), "{e}");
    }
}
