//! What survives a restart: the committed checkpoint (per-file read
//! positions as of the last batch the receiver acknowledged) and the spool
//! (each batch not yet acknowledged: its id, its encoded body and the file
//! positions just after it).
//!
//! # Exactly once
//!
//! The tailer seals a batch, writes it to the spool with the state of every
//! file it touched (offset after the last consumed line, plus fragments and
//! multiline events still being assembled) and only then reads on. The
//! sender posts spooled batches oldest first with `X-Osprey-Batch:
//! <source>/<seq>`; after a 2xx it folds the batch's file states into the
//! checkpoint, writes the checkpoint, and deletes the spool file. After a
//! crash anywhere in that sequence, the restart:
//! - resumes reading at checkpoint ⊕ every spooled batch's states (so no
//!   line is read into a second batch), and
//! - resends the spooled batches with their original ids, which a receiver
//!   that already committed them answers 2xx without storing them again.
//!
//! Files are written to a temporary name and renamed, so a kill -9 leaves
//! either the old or the new file. They are not fsynced: after a power
//! loss a recent spool file may be missing or torn; a torn one is detected
//! by its CRC and skipped (its lines are lost, nothing is duplicated).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::file_id::{FileKey, Fingerprint};
use super::multiline::Group;

/// A fragment (Docker 16 KiB split, CRI `P`) waiting for the rest of its
/// line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partial {
    /// The first fragment's time.
    pub ts_ns: i64,
    /// The fragments so far (raw bytes: a UTF-8 character may straddle two
    /// fragments).
    pub bytes: Vec<u8>,
    /// Whether bytes past the line limit were dropped.
    pub truncated: bool,
}

/// Per-stream state of a file still being assembled (index: stdout,
/// stderr, other).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// Fragments waiting for their final piece.
    pub partials: [Option<Partial>; 3],
    /// Multiline events waiting for their end.
    pub groups: [Option<Group>; 3],
}

impl Pending {
    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.partials.iter().all(Option::is_none) && self.groups.iter().all(Option::is_none)
    }
}

/// Where reading of one file stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileState {
    /// Device and inode.
    pub key: FileKey,
    /// The path it was read under (to find it again after a rotation
    /// while the agent was down).
    pub path: PathBuf,
    /// Its head's fingerprint.
    pub fingerprint: Fingerprint,
    /// Bytes consumed: just after the last newline read.
    pub offset: u64,
    /// Fragments and events read but not yet emitted.
    #[serde(default, skip_serializing_if = "Pending::is_empty")]
    pub pending: Pending,
    /// The file was read to its end and let go (deleted or rotated away):
    /// the entry is dropped from the checkpoint.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub finished: bool,
}

/// File positions as of the last acknowledged batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// The highest sequence the receiver acknowledged (0: none).
    pub acked_seq: u64,
    /// Per file.
    pub files: BTreeMap<FileKey, FileState>,
}

#[derive(Serialize, Deserialize)]
struct CheckpointFile {
    acked_seq: u64,
    files: Vec<FileState>,
}

impl Checkpoint {
    /// Reads `path`; a missing file is an empty checkpoint.
    pub fn load(path: &Path) -> io::Result<Self> {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(e),
        };
        let file: CheckpointFile = serde_json::from_slice(&bytes).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is damaged: {e}", path.display()),
            )
        })?;
        Ok(Self {
            acked_seq: file.acked_seq,
            files: file.files.into_iter().map(|f| (f.key, f)).collect(),
        })
    }

    /// Writes to `path` atomically (temporary file, rename).
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let file = CheckpointFile {
            acked_seq: self.acked_seq,
            files: self.files.values().cloned().collect(),
        };
        let bytes = serde_json::to_vec(&file).map_err(io::Error::other)?;
        write_atomic(path, &bytes)
    }

    /// Folds one batch's file states in.
    pub fn apply(&mut self, delta: &[FileState]) {
        for state in delta {
            if state.finished {
                self.files.remove(&state.key);
            } else {
                self.files.insert(state.key, state.clone());
            }
        }
    }
}

/// One spooled batch (its body stays on disk until sent).
#[derive(Debug, Clone)]
pub struct SpoolEntry {
    /// Its sequence number.
    pub seq: u64,
    /// Entries in it.
    pub lines: u64,
    /// Size of its file.
    pub size: u64,
    /// File states just after it.
    pub delta: Vec<FileState>,
    path: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct SpoolHeader {
    seq: u64,
    lines: u64,
    delta: Vec<FileState>,
}

const MAGIC: &[u8; 8] = b"OSPLOGB1";

/// The directory of batches waiting for acknowledgement.
#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
}

impl Spool {
    /// Opens (creating) `dir`.
    pub fn open(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// Writes a batch; returns its entry.
    pub fn write(
        &self,
        seq: u64,
        lines: u64,
        delta: Vec<FileState>,
        body: &[u8],
    ) -> io::Result<SpoolEntry> {
        let header = serde_json::to_vec(&SpoolHeader {
            seq,
            lines,
            delta: delta.clone(),
        })
        .map_err(io::Error::other)?;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&header);
        crc.update(body);
        let mut bytes = Vec::with_capacity(24 + header.len() + body.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&seq.to_le_bytes());
        bytes.extend_from_slice(&(header.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&crc.finalize().to_le_bytes());
        bytes.extend_from_slice(&header);
        bytes.extend_from_slice(body);
        let path = self.dir.join(format!("{seq:020}.batch"));
        write_atomic(&path, &bytes)?;
        Ok(SpoolEntry {
            seq,
            lines,
            size: bytes.len() as u64,
            delta,
            path,
        })
    }

    /// Every intact spooled batch, oldest first, and the number of damaged
    /// files skipped (and removed).
    pub fn load(&self) -> io::Result<(Vec<SpoolEntry>, u64)> {
        let mut entries = Vec::new();
        let mut damaged = 0;
        for dirent in fs::read_dir(&self.dir)? {
            let path = dirent?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".tmp") {
                let _ = fs::remove_file(&path);
                continue;
            }
            if !name.ends_with(".batch") {
                continue;
            }
            match read_spool_file(&path) {
                Ok((header, _, size)) => entries.push(SpoolEntry {
                    seq: header.seq,
                    lines: header.lines,
                    size,
                    delta: header.delta,
                    path,
                }),
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "skipping a damaged log spool file");
                    damaged += 1;
                    let _ = fs::remove_file(&path);
                }
            }
        }
        entries.sort_by_key(|e| e.seq);
        Ok((entries, damaged))
    }

    /// The body of a spooled batch.
    pub fn body(&self, entry: &SpoolEntry) -> io::Result<Vec<u8>> {
        read_spool_file(&entry.path).map(|(_, body, _)| body)
    }

    /// Deletes a delivered batch.
    pub fn remove(&self, entry: &SpoolEntry) -> io::Result<()> {
        match fs::remove_file(&entry.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

fn read_spool_file(path: &Path) -> io::Result<(SpoolHeader, Vec<u8>, u64)> {
    let bytes = fs::read(path)?;
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
    if bytes.len() < 24 || &bytes[..8] != MAGIC {
        return Err(bad("not a spool file"));
    }
    let header_len = u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(bytes[20..24].try_into().expect("4 bytes"));
    if bytes.len() < 24 + header_len {
        return Err(bad("truncated"));
    }
    if crc32fast::hash(&bytes[24..]) != crc {
        return Err(bad("checksum mismatch"));
    }
    let header: SpoolHeader =
        serde_json::from_slice(&bytes[24..24 + header_len]).map_err(|e| bad(&e.to_string()))?;
    let size = bytes.len() as u64;
    let body = bytes[24 + header_len..].to_vec();
    Ok((header, body, size))
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(inode: u64, offset: u64) -> FileState {
        FileState {
            key: FileKey { dev: 1, inode },
            path: format!("/var/log/{inode}.log").into(),
            fingerprint: Fingerprint { len: 3, crc: 7 },
            offset,
            pending: Pending::default(),
            finished: false,
        }
    }

    #[test]
    fn spool_round_trips_and_skips_damage() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let a = spool.write(2, 10, vec![state(1, 100)], b"body-2").unwrap();
        spool.write(1, 5, vec![state(1, 50)], b"body-1").unwrap();
        let c = spool.write(3, 1, vec![], b"body-3").unwrap();
        // Damage the third.
        let mut bytes = fs::read(&c.path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&c.path, bytes).unwrap();
        let (entries, damaged) = spool.load().unwrap();
        assert_eq!(damaged, 1);
        assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(spool.body(&entries[1]).unwrap(), b"body-2");
        assert_eq!(entries[1].delta, vec![state(1, 100)]);
        spool.remove(&a).unwrap();
        assert_eq!(spool.load().unwrap().0.len(), 1);
    }

    #[test]
    fn checkpoint_applies_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint.json");
        let mut cp = Checkpoint::load(&path).unwrap();
        assert_eq!(cp, Checkpoint::default());
        cp.apply(&[state(1, 10), state(2, 20)]);
        let mut gone = state(2, 25);
        gone.finished = true;
        cp.apply(&[gone, state(1, 15)]);
        cp.acked_seq = 4;
        cp.save(&path).unwrap();
        let back = Checkpoint::load(&path).unwrap();
        assert_eq!(back, cp);
        assert_eq!(back.files.len(), 1);
        assert_eq!(back.files[&FileKey { dev: 1, inode: 1 }].offset, 15);
    }
}
