//! Re-reading a held-open file from offset 0: the one `pread` loop that
//! cgroup readers and network counters share.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Smallest working buffer.
const MIN_BUFFER: usize = 4096;

/// Reads `file` from offset 0 into `buf` with `pread` (no open, close or
/// seek between ticks; cgroupfs and procfs regenerate the text when read
/// from offset 0) and returns the number of bytes read, which sit at the
/// front of `buf`. `buf` is used as scratch and grows as needed.
///
/// With `short_read_is_end`, a read shorter than asked is taken as the end
/// of the file, saving the second `pread` that would return 0. That holds
/// for cgroup interface files, which the kernel renders whole in one
/// `seq_show` call; procfs files with many records are rendered a page at
/// a time, so their callers read until 0.
pub(crate) fn pread_whole(
    file: &File,
    buf: &mut Vec<u8>,
    short_read_is_end: bool,
) -> io::Result<usize> {
    if buf.len() < MIN_BUFFER {
        buf.resize(MIN_BUFFER, 0);
    }
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        match file.read_at(&mut buf[len..], len as u64) {
            Ok(0) => return Ok(len),
            Ok(n) => {
                len += n;
                if short_read_is_end && len < buf.len() {
                    return Ok(len);
                }
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_small_and_large_files_whole_and_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let big: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &big).unwrap();
        let file = File::open(&path).unwrap();
        let mut buf = Vec::new();
        for short in [true, false] {
            let n = pread_whole(&file, &mut buf, short).unwrap();
            assert_eq!(&buf[..n], &big[..]);
        }
        std::fs::write(&path, b"tiny").unwrap();
        let n = pread_whole(&file, &mut buf, true).unwrap();
        assert_eq!(
            &buf[..n],
            b"tiny",
            "re-read from offset 0 sees the new text"
        );
    }
}
