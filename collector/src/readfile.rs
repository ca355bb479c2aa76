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

/// Reads a small file whole in as few system calls as a file can be read
/// in: open, one `pread` and close for a cgroup interface file shorter
/// than 256 bytes (the kernel renders them whole, so a short read is the
/// end); a longer file is read on with [`pread_whole`].
pub(crate) fn read_small(path: &std::path::Path) -> io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let mut first = [0u8; 256];
    let n = loop {
        match file.read_at(&mut first, 0) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            read => break read?,
        }
    };
    if n < first.len() {
        return Ok(first[..n].to_vec());
    }
    let mut buf = Vec::new();
    let len = pread_whole(&file, &mut buf, true)?;
    buf.truncate(len);
    Ok(buf)
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

    #[test]
    fn small_reads_give_the_whole_file_at_every_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        for len in [0, 1, 255, 256, 257, 5000] {
            let text: Vec<u8> = (0..len).map(|i| b'0' + (i % 10) as u8).collect();
            std::fs::write(&path, &text).unwrap();
            assert_eq!(read_small(&path).unwrap(), text, "{len} bytes");
        }
        let gone = dir.path().join("gone");
        assert_eq!(
            read_small(&gone).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
