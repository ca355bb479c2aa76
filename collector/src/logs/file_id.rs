//! How a log file is recognised across renames, restarts and inode reuse:
//! its device and inode number (stable across a rename) plus a CRC of its
//! first bytes (which tells a reused inode, or a file truncated and written
//! again, from the file the checkpoint was taken of).

use std::fmt;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};

use serde::{Deserialize, Serialize};

/// Bytes at the head of a file covered by its fingerprint.
pub const FINGERPRINT_BYTES: usize = 256;

/// Device and inode number of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FileKey {
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub inode: u64,
}

impl FileKey {
    /// The key of an open file or of `stat` output.
    pub fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            inode: meta.ino(),
        }
    }
}

impl fmt::Display for FileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.dev, self.inode)
    }
}

/// CRC-32 of a file's first `len` bytes (`len` ≤ [`FINGERPRINT_BYTES`]:
/// a young file is fingerprinted over what it holds, and the fingerprint
/// grows with it up to the full length).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Bytes covered.
    pub len: u32,
    /// Their CRC-32.
    pub crc: u32,
}

impl Fingerprint {
    /// Fingerprints the first `min(size, FINGERPRINT_BYTES)` bytes of `file`.
    pub fn read(file: &File) -> std::io::Result<Self> {
        let mut buf = [0u8; FINGERPRINT_BYTES];
        let n = read_head(file, &mut buf)?;
        Ok(Self {
            len: n as u32,
            crc: crc32fast::hash(&buf[..n]),
        })
    }

    /// Whether `file` still starts with the bytes this fingerprint covers.
    /// A file now shorter than the fingerprint does not match.
    pub fn matches(&self, file: &File) -> std::io::Result<bool> {
        if self.len == 0 {
            return Ok(true);
        }
        let mut buf = [0u8; FINGERPRINT_BYTES];
        let want = self.len as usize;
        let n = read_head(file, &mut buf[..want])?;
        Ok(n == want && crc32fast::hash(&buf[..n]) == self.crc)
    }

    /// Whether the fingerprint covers all the bytes it ever will.
    pub fn is_complete(&self) -> bool {
        self.len as usize >= FINGERPRINT_BYTES
    }
}

fn read_head(file: &File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn fingerprint_grows_and_detects_rewrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(b"hello\n").unwrap();
        let r = std::fs::File::open(&path).unwrap();
        let fp = Fingerprint::read(&r).unwrap();
        assert_eq!(fp.len, 6);
        assert!(!fp.is_complete());
        f.write_all(&[b'x'; 400]).unwrap();
        assert!(fp.matches(&r).unwrap(), "appending keeps the head");
        let full = Fingerprint::read(&r).unwrap();
        assert!(full.is_complete());
        // Truncated and written again with other bytes: same inode, other head.
        f.set_len(0).unwrap();
        std::fs::write(&path, b"jello\n").unwrap();
        assert!(!fp.matches(&r).unwrap());
        assert!(!full.matches(&r).unwrap(), "shorter than the fingerprint");
        let key = FileKey::of(&r.metadata().unwrap());
        assert_eq!(key, FileKey::of(&std::fs::metadata(&path).unwrap()));
    }
}
