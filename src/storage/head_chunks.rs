//! Where the head keeps its sealed (full) chunks: in an append-only file under
//! `chunks_head/`, so that memory holds only the open chunk and a small reference per
//! sealed chunk (Prometheus memory-maps its head chunks for the same reason).
//!
//! The file is never fsynced and is recreated at every open: the WAL is the source of truth
//! for the head. When the file cannot be written, the chunk stays in memory instead.

use std::borrow::Cow;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::error::{Result, StorageError};

/// Location of a sealed head chunk.
#[derive(Debug, Clone)]
pub enum ChunkLoc {
    /// Kept in memory (no spill file, or writing it failed).
    Mem(Box<[u8]>),
    /// In the spill file at `off`, `len` bytes (packed to keep the reference at 12 bytes).
    File {
        /// Byte offset.
        off: u32,
        /// Byte offset, high bits.
        off_hi: u16,
        /// Length in bytes.
        len: u16,
    },
}

/// The spill file of the head's sealed chunks (or none: everything in memory).
#[derive(Debug)]
pub struct ChunkSpill {
    dir: Option<PathBuf>,
    seq: u64,
    file: Option<File>,
    len: u64,
}

impl ChunkSpill {
    /// No file: sealed chunks stay in memory.
    pub fn memory() -> Self {
        ChunkSpill {
            dir: None,
            seq: 0,
            file: None,
            len: 0,
        }
    }

    /// Starts a fresh spill directory, deleting files of earlier runs.
    pub fn create(dir: &Path) -> Result<Self> {
        if dir.exists() {
            fs::remove_dir_all(dir).map_err(|e| StorageError::io(dir, e))?;
        }
        fs::create_dir_all(dir).map_err(|e| StorageError::io(dir, e))?;
        Self::open_seq(dir, 1)
    }

    fn open_seq(dir: &Path, seq: u64) -> Result<Self> {
        let path = dir.join(format!("{seq:08}"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| StorageError::io(&path, e))?;
        Ok(ChunkSpill {
            dir: Some(dir.to_path_buf()),
            seq,
            file: Some(file),
            len: 0,
        })
    }

    /// A new, empty spill file next to this one (used when the head is truncated); the
    /// current file is deleted when `self` is dropped.
    pub fn successor(&self) -> Self {
        match &self.dir {
            Some(dir) => Self::open_seq(dir, self.seq + 1).unwrap_or_else(|err| {
                tracing::warn!(%err, "cannot create head chunk file; keeping chunks in memory");
                Self::memory()
            }),
            None => Self::memory(),
        }
    }

    /// Stores a sealed chunk.
    pub fn store(&mut self, bytes: Vec<u8>) -> ChunkLoc {
        if let Some(f) = &mut self.file
            && bytes.len() <= u16::MAX as usize
            && self.len < 1 << 48
        {
            match f.write_all(&bytes) {
                Ok(()) => {
                    let off = self.len;
                    self.len += bytes.len() as u64;
                    return ChunkLoc::File {
                        off: off as u32,
                        off_hi: (off >> 32) as u16,
                        len: bytes.len() as u16,
                    };
                }
                Err(err) => {
                    tracing::warn!(%err, "head chunk file write failed; keeping chunks in memory");
                    // Writes may have been partial: stop using the file for new chunks.
                    let _ = f.set_len(self.len);
                    self.file = None;
                }
            }
        }
        ChunkLoc::Mem(bytes.into_boxed_slice())
    }

    /// The bytes of a chunk (empty, with an error logged, if the file cannot be read).
    pub fn load<'a>(&self, loc: &'a ChunkLoc) -> Cow<'a, [u8]> {
        match loc {
            ChunkLoc::Mem(b) => Cow::Borrowed(b),
            ChunkLoc::File { .. } => {
                let mut buf = Vec::new();
                self.load_into(loc, &mut buf);
                Cow::Owned(buf)
            }
        }
    }

    /// [`ChunkSpill::load`] reading a chunk from the file into `buf`, so
    /// that a query reading many chunks reuses one buffer.
    pub fn load_into<'a>(&self, loc: &'a ChunkLoc, buf: &'a mut Vec<u8>) -> &'a [u8] {
        match loc {
            ChunkLoc::Mem(b) => b,
            ChunkLoc::File { off, off_hi, len } => {
                let off = (*off as u64) | ((*off_hi as u64) << 32);
                buf.clear();
                buf.resize(*len as usize, 0);
                let res = match (&self.file, &self.dir) {
                    (Some(f), _) => f.read_exact_at(buf, off),
                    (None, Some(dir)) => File::open(dir.join(format!("{:08}", self.seq)))
                        .and_then(|f| f.read_exact_at(buf, off)),
                    (None, None) => Err(std::io::Error::other("no head chunk file")),
                };
                if let Err(err) = res {
                    tracing::error!(%err, "cannot read head chunk");
                    buf.clear();
                }
                buf
            }
        }
    }
}

impl Drop for ChunkSpill {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = fs::remove_file(dir.join(format!("{:08}", self.seq)));
        }
    }
}
