//! The write-ahead log: checksummed records in numbered segment files under `wal/`.
//!
//! Segment file: the 8-byte magic `OSPWAL1\n`, then frames
//! `[u32 LE payload length][u32 LE CRC32 of payload][payload]`.
//! Payload: a type byte and the record body (see [`WalRecord`]).
//!
//! Series refs in records are the head's refs. They stay valid from one checkpoint to the
//! next: whenever the head renumbers its series (on open and after a block is cut) a
//! checkpoint segment is written that restates every head series and sample, and older
//! segments are deleted. Replay starts at the newest segment that begins with a checkpoint
//! record. A torn or garbage tail (failed CRC, truncated frame) is cut off with a warning.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::encode::{ByteReader, put_str, put_uvarint, put_varint};
use super::error::{Result, StorageError};
use super::labels::{Label, Labels};
use super::options::FsyncPolicy;
use super::sample::Sample;

const MAGIC: &[u8; 8] = b"OSPWAL1\n";
const FRAME_HEADER: usize = 8;
/// Frames larger than this are treated as garbage (protects replay from bogus lengths).
const MAX_FRAME: usize = 256 << 20;

const TYPE_CHECKPOINT: u8 = 1;
const TYPE_SERIES: u8 = 2;
const TYPE_SAMPLES: u8 = 3;

/// One logical WAL record.
#[derive(Debug, Clone, PartialEq)]
pub enum WalRecord {
    /// Starts a checkpoint segment: everything before it is superseded.
    Checkpoint {
        /// The head's `min_valid_t` when the checkpoint was written.
        min_valid_t: i64,
    },
    /// New series with their head refs.
    Series(Vec<(u32, Labels)>),
    /// Accepted samples (already snapped) per series ref.
    Samples(Vec<(u32, Sample)>),
}

impl WalRecord {
    fn encode(&self, buf: &mut Vec<u8>) {
        match self {
            WalRecord::Checkpoint { min_valid_t } => {
                buf.push(TYPE_CHECKPOINT);
                put_varint(buf, *min_valid_t);
            }
            WalRecord::Series(series) => {
                buf.push(TYPE_SERIES);
                put_uvarint(buf, series.len() as u64);
                for (r, labels) in series {
                    put_uvarint(buf, *r as u64);
                    put_uvarint(buf, labels.len() as u64);
                    for (n, v) in labels.iter() {
                        put_str(buf, n);
                        put_str(buf, v);
                    }
                }
            }
            WalRecord::Samples(samples) => {
                buf.push(TYPE_SAMPLES);
                put_uvarint(buf, samples.len() as u64);
                let base = samples.first().map_or(0, |s| s.1.t);
                put_varint(buf, base);
                for (r, s) in samples {
                    put_uvarint(buf, *r as u64);
                    put_varint(buf, s.t.wrapping_sub(base));
                    buf.extend_from_slice(&s.v.to_bits().to_le_bytes());
                }
            }
        }
    }

    fn decode(payload: &[u8]) -> Option<WalRecord> {
        let (&ty, rest) = payload.split_first()?;
        let mut r = ByteReader::new(rest);
        let rec = match ty {
            TYPE_CHECKPOINT => WalRecord::Checkpoint {
                min_valid_t: r.varint()?,
            },
            TYPE_SERIES => {
                let n = r.uvarint()? as usize;
                let mut v = Vec::with_capacity(n.min(1 << 16));
                for _ in 0..n {
                    let id = u32::try_from(r.uvarint()?).ok()?;
                    let nl = r.uvarint()? as usize;
                    let mut labels = Vec::with_capacity(nl.min(64));
                    for _ in 0..nl {
                        let name = r.str()?.to_string();
                        let value = r.str()?.to_string();
                        labels.push(Label { name, value });
                    }
                    v.push((id, Labels::from_sorted(labels)));
                }
                WalRecord::Series(v)
            }
            TYPE_SAMPLES => {
                let n = r.uvarint()? as usize;
                let base = r.varint()?;
                let mut v = Vec::with_capacity(n.min(1 << 20));
                for _ in 0..n {
                    let id = u32::try_from(r.uvarint()?).ok()?;
                    let t = base.wrapping_add(r.varint()?);
                    let bits = r.u64_le()?;
                    v.push((id, Sample::new(t, f64::from_bits(bits))));
                }
                WalRecord::Samples(v)
            }
            _ => return None,
        };
        r.is_empty().then_some(rec)
    }
}

fn frame(rec: &WalRecord, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER]);
    rec.encode(out);
    let payload_len = (out.len() - start - FRAME_HEADER) as u32;
    let crc = crc32fast::hash(&out[start + FRAME_HEADER..]);
    out[start..start + 4].copy_from_slice(&payload_len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// What replay found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Segments read.
    pub segments: usize,
    /// Records applied.
    pub records: u64,
    /// Bytes cut off torn or corrupt segment tails.
    pub truncated_bytes: u64,
    /// Segments that had a tail cut off.
    pub truncated_segments: Vec<PathBuf>,
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:08}"))
}

/// Numbered segments in `dir`, ascending; leftover temporary files are removed.
fn list_segments(dir: &Path) -> Result<Vec<u64>> {
    let mut seqs = Vec::new();
    for e in fs::read_dir(dir).map_err(|e| StorageError::io(dir, e))? {
        let e = e.map_err(|e| StorageError::io(dir, e))?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".tmp") {
            fs::remove_file(e.path()).map_err(|err| StorageError::io(e.path(), err))?;
        } else if let Ok(seq) = name.parse::<u64>() {
            seqs.push(seq);
        }
    }
    seqs.sort_unstable();
    Ok(seqs)
}

/// Parses the frames of a segment; returns the records and the length of the valid prefix.
fn parse_segment(data: &[u8]) -> (Vec<WalRecord>, usize, Option<String>) {
    if data.len() < MAGIC.len() || &data[..MAGIC.len()] != MAGIC {
        return (Vec::new(), 0, Some("missing segment header".into()));
    }
    let mut pos = MAGIC.len();
    let mut recs = Vec::new();
    while pos < data.len() {
        if data.len() - pos < FRAME_HEADER {
            return (recs, pos, Some("truncated frame header".into()));
        }
        let len = u32::from_le_bytes(data[pos..pos + 4].try_into().expect("4")) as usize;
        let crc = u32::from_le_bytes(data[pos + 4..pos + 8].try_into().expect("4"));
        if len > MAX_FRAME || data.len() - pos - FRAME_HEADER < len {
            return (recs, pos, Some("truncated frame".into()));
        }
        let payload = &data[pos + FRAME_HEADER..pos + FRAME_HEADER + len];
        if crc32fast::hash(payload) != crc {
            return (recs, pos, Some("checksum mismatch".into()));
        }
        match WalRecord::decode(payload) {
            Some(r) => recs.push(r),
            None => return (recs, pos, Some("undecodable record".into())),
        }
        pos += FRAME_HEADER + len;
    }
    (recs, pos, None)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io(dir, e))
}

/// Read-only statistics of a WAL directory (for `inspect`; nothing is modified).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WalStats {
    /// Segment files.
    pub segments: usize,
    /// Total bytes.
    pub bytes: u64,
    /// Valid records.
    pub records: u64,
    /// Series records' series.
    pub series: u64,
    /// Samples in sample records.
    pub samples: u64,
    /// Bytes after the last valid record of each segment (a torn tail replay would cut).
    pub torn_bytes: u64,
}

/// Scans a WAL directory without modifying it.
pub fn scan(dir: &Path) -> Result<WalStats> {
    let mut st = WalStats::default();
    if !dir.exists() {
        return Ok(st);
    }
    let mut seqs = Vec::new();
    for e in fs::read_dir(dir).map_err(|e| StorageError::io(dir, e))? {
        let e = e.map_err(|e| StorageError::io(dir, e))?;
        if let Ok(seq) = e.file_name().to_string_lossy().parse::<u64>() {
            seqs.push(seq);
        }
    }
    seqs.sort_unstable();
    for seq in seqs {
        let path = segment_path(dir, seq);
        let data = fs::read(&path).map_err(|e| StorageError::io(&path, e))?;
        let (recs, valid, _) = parse_segment(&data);
        st.segments += 1;
        st.bytes += data.len() as u64;
        st.torn_bytes += (data.len() - valid) as u64;
        for r in recs {
            st.records += 1;
            match r {
                WalRecord::Series(v) => st.series += v.len() as u64,
                WalRecord::Samples(v) => st.samples += v.len() as u64,
                WalRecord::Checkpoint { .. } => {}
            }
        }
    }
    Ok(st)
}

/// The open WAL, appending to its newest segment.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    file: File,
    seq: u64,
    /// Bytes in the current segment.
    size: u64,
    /// Bytes in older live segments.
    older_bytes: u64,
    segment_bytes: u64,
    fsync: FsyncPolicy,
    dirty: bool,
    /// Appends so far: the position [`Wal::write`] returns and [`Wal::sync_handle`] reports.
    appended: u64,
    /// The frames of one append, kept between appends so that their encoding does not
    /// allocate.
    buf: Vec<u8>,
}

impl Wal {
    /// Replays the WAL in `dir` (created if missing) through `apply`, cutting torn tails, and
    /// returns the report and the highest segment number seen.
    pub fn replay(
        dir: &Path,
        mut apply: impl FnMut(WalRecord) -> Result<()>,
    ) -> Result<(ReplayReport, u64)> {
        fs::create_dir_all(dir).map_err(|e| StorageError::io(dir, e))?;
        let seqs = list_segments(dir)?;
        let mut report = ReplayReport::default();
        let mut segments: Vec<(u64, Vec<WalRecord>)> = Vec::new();
        for &seq in &seqs {
            let path = segment_path(dir, seq);
            let mut data = Vec::new();
            File::open(&path)
                .and_then(|mut f| f.read_to_end(&mut data))
                .map_err(|e| StorageError::io(&path, e))?;
            let (recs, valid, problem) = parse_segment(&data);
            if let Some(problem) = problem {
                let cut = data.len() - valid;
                tracing::warn!(
                    segment = %path.display(),
                    offset = valid,
                    bytes_cut = cut,
                    %problem,
                    "WAL segment has a torn or corrupt tail; cutting it off"
                );
                report.truncated_bytes += cut as u64;
                report.truncated_segments.push(path.clone());
                let f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| StorageError::io(&path, e))?;
                if valid == 0 {
                    drop(f);
                    fs::remove_file(&path).map_err(|e| StorageError::io(&path, e))?;
                } else {
                    f.set_len(valid as u64)
                        .and_then(|_| f.sync_all())
                        .map_err(|e| StorageError::io(&path, e))?;
                }
            }
            segments.push((seq, recs));
        }
        let start = segments
            .iter()
            .rposition(|(_, recs)| matches!(recs.first(), Some(WalRecord::Checkpoint { .. })))
            .unwrap_or(0);
        for (seq, recs) in segments.drain(..).skip(start) {
            report.segments += 1;
            for r in recs {
                report.records += 1;
                apply(r).map_err(|e| match e {
                    StorageError::Corrupt { .. } => e,
                    other => StorageError::corrupt(
                        segment_path(dir, seq),
                        format!("replay failed: {other}"),
                    ),
                })?;
            }
        }
        Ok((report, seqs.last().copied().unwrap_or(0)))
    }

    /// Starts a checkpoint segment numbered after `last_seq` holding `records` (which must
    /// begin with a [`WalRecord::Checkpoint`]) and deletes all older segments.
    pub fn create_with_checkpoint(
        dir: &Path,
        last_seq: u64,
        segment_bytes: u64,
        fsync: FsyncPolicy,
        records: impl IntoIterator<Item = WalRecord>,
    ) -> Result<Wal> {
        let seq = last_seq + 1;
        let path = segment_path(dir, seq);
        let tmp = dir.join(format!("{seq:08}.tmp"));
        let mut f = File::create(&tmp).map_err(|e| StorageError::io(&tmp, e))?;
        let mut buf = MAGIC.to_vec();
        let mut size = 0u64;
        for r in records {
            frame(&r, &mut buf);
            if buf.len() > 1 << 20 {
                f.write_all(&buf).map_err(|e| StorageError::io(&tmp, e))?;
                size += buf.len() as u64;
                buf.clear();
            }
        }
        f.write_all(&buf).map_err(|e| StorageError::io(&tmp, e))?;
        size += buf.len() as u64;
        f.sync_all().map_err(|e| StorageError::io(&tmp, e))?;
        drop(f);
        fs::rename(&tmp, &path).map_err(|e| StorageError::io(&path, e))?;
        sync_dir(dir)?;
        for old in list_segments(dir)?.into_iter().filter(|&s| s < seq) {
            let p = segment_path(dir, old);
            fs::remove_file(&p).map_err(|e| StorageError::io(&p, e))?;
        }
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| StorageError::io(&path, e))?;
        Ok(Wal {
            dir: dir.to_path_buf(),
            file,
            seq,
            size,
            older_bytes: 0,
            segment_bytes,
            fsync,
            dirty: false,
            appended: 0,
            buf: Vec::new(),
        })
    }

    /// Replaces the log with a checkpoint (see [`Wal::create_with_checkpoint`]). Everything
    /// appended before is durable afterwards (the checkpoint holds it and is synced).
    pub fn checkpoint(&mut self, records: impl IntoIterator<Item = WalRecord>) -> Result<()> {
        let mut new = Wal::create_with_checkpoint(
            &self.dir,
            self.seq,
            self.segment_bytes,
            self.fsync,
            records,
        )?;
        new.appended = self.appended;
        *self = new;
        Ok(())
    }

    /// Appends records as one write; syncs when the policy is per batch. On a failed write
    /// the partial frame is cut off again so later records stay readable.
    pub fn append(&mut self, records: &[WalRecord]) -> Result<()> {
        self.write(records)?;
        if self.fsync == FsyncPolicy::PerBatch {
            self.sync()?;
        }
        Ok(())
    }

    /// A second handle on the segment being written and the position of the newest append:
    /// syncing the handle makes every append up to that position durable (older segments
    /// were synced when they were rotated out). Group commit syncs through it without holding
    /// the log, so appends of other writers go on meanwhile.
    pub fn sync_handle(&self) -> Result<(File, u64)> {
        let f = self
            .file
            .try_clone()
            .map_err(|e| StorageError::io(segment_path(&self.dir, self.seq), e))?;
        Ok((f, self.appended))
    }

    /// Appends records as one write without syncing (see [`Wal::sync_handle`]) and returns
    /// the append's position. On a failed write the partial frame is cut off again.
    pub fn write(&mut self, records: &[WalRecord]) -> Result<u64> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        for r in records {
            frame(r, &mut buf);
        }
        let written = self.file.write_all(&buf);
        let len = buf.len() as u64;
        // A huge append (a checkpoint-sized batch) does not pin its buffer.
        if buf.capacity() <= 16 << 20 {
            self.buf = buf;
        }
        if let Err(e) = written {
            let _ = self.file.set_len(self.size);
            return Err(StorageError::io(segment_path(&self.dir, self.seq), e));
        }
        self.size += len;
        self.dirty = true;
        self.appended += 1;
        if self.size >= self.segment_bytes {
            self.rotate()?;
        }
        Ok(self.appended)
    }

    fn rotate(&mut self) -> Result<()> {
        self.sync()?;
        let seq = self.seq + 1;
        let path = segment_path(&self.dir, seq);
        let mut f = File::create(&path).map_err(|e| StorageError::io(&path, e))?;
        f.write_all(MAGIC)
            .and_then(|_| f.sync_all())
            .map_err(|e| StorageError::io(&path, e))?;
        sync_dir(&self.dir)?;
        self.older_bytes += self.size;
        self.file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| StorageError::io(&path, e))?;
        self.seq = seq;
        self.size = MAGIC.len() as u64;
        Ok(())
    }

    /// Flushes written records to stable storage if anything was written since last time.
    pub fn sync(&mut self) -> Result<()> {
        if self.dirty {
            self.file
                .sync_data()
                .map_err(|e| StorageError::io(segment_path(&self.dir, self.seq), e))?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Total bytes of all live segments.
    pub fn size_bytes(&self) -> u64 {
        self.size + self.older_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::labels::METRIC_NAME;

    fn recs() -> Vec<WalRecord> {
        vec![
            WalRecord::Series(vec![(
                0,
                Labels::from_pairs([(METRIC_NAME, "a"), ("x", "1")]),
            )]),
            WalRecord::Samples(vec![
                (0, Sample::new(5, 1.5)),
                (0, Sample::new(-7, f64::NAN)),
            ]),
        ]
    }

    fn replay_all(dir: &Path) -> (Vec<WalRecord>, ReplayReport) {
        let mut got = Vec::new();
        let (rep, _) = Wal::replay(dir, |r| {
            got.push(r);
            Ok(())
        })
        .unwrap();
        (got, rep)
    }

    #[test]
    fn records_round_trip_through_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Wal::create_with_checkpoint(
            dir.path(),
            0,
            4096,
            FsyncPolicy::PerBatch,
            [WalRecord::Checkpoint { min_valid_t: 3 }],
        )
        .unwrap();
        for _ in 0..100 {
            w.append(&recs()).unwrap();
        }
        assert!(list_segments(dir.path()).unwrap().len() > 1, "rotated");
        let (got, rep) = replay_all(dir.path());
        assert_eq!(got.len(), 201);
        assert_eq!(got[0], WalRecord::Checkpoint { min_valid_t: 3 });
        assert_eq!(got[1], recs()[0]);
        assert_eq!(rep.truncated_bytes, 0);
        // A new checkpoint supersedes and deletes everything before it.
        w.checkpoint([WalRecord::Checkpoint { min_valid_t: 9 }])
            .unwrap();
        assert_eq!(list_segments(dir.path()).unwrap().len(), 1);
        assert_eq!(
            replay_all(dir.path()).0,
            vec![WalRecord::Checkpoint { min_valid_t: 9 }]
        );
    }

    #[test]
    fn torn_and_garbage_tails_are_cut() {
        for garbage in [vec![0x13u8; 3], vec![0xffu8; 100], {
            let mut v = Vec::new();
            frame(&recs()[1], &mut v);
            v.truncate(v.len() - 2);
            v
        }] {
            let dir = tempfile::tempdir().unwrap();
            let mut w = Wal::create_with_checkpoint(
                dir.path(),
                0,
                1 << 20,
                FsyncPolicy::PerBatch,
                [WalRecord::Checkpoint { min_valid_t: 0 }],
            )
            .unwrap();
            w.append(&recs()).unwrap();
            drop(w);
            let seg = segment_path(dir.path(), 1);
            let good_len = fs::metadata(&seg).unwrap().len();
            OpenOptions::new()
                .append(true)
                .open(&seg)
                .unwrap()
                .write_all(&garbage)
                .unwrap();
            let (got, rep) = replay_all(dir.path());
            assert_eq!(got.len(), 3);
            assert_eq!(rep.truncated_bytes, garbage.len() as u64);
            assert_eq!(
                fs::metadata(&seg).unwrap().len(),
                good_len,
                "tail cut on disk"
            );
            // Idempotent: a second replay finds nothing to cut.
            assert_eq!(replay_all(dir.path()).1.truncated_bytes, 0);
        }
    }

    #[test]
    fn flipped_bit_fails_the_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Wal::create_with_checkpoint(
            dir.path(),
            0,
            1 << 20,
            FsyncPolicy::PerBatch,
            [WalRecord::Checkpoint { min_valid_t: 0 }],
        )
        .unwrap();
        w.append(&recs()).unwrap();
        drop(w);
        let seg = segment_path(dir.path(), 1);
        let mut data = fs::read(&seg).unwrap();
        let n = data.len();
        data[n - 3] ^= 0x10;
        fs::write(&seg, &data).unwrap();
        let (got, rep) = replay_all(dir.path());
        assert_eq!(
            got.len(),
            2,
            "checkpoint and series survive, damaged samples record is cut"
        );
        assert!(rep.truncated_bytes > 0);
    }
}
