//! Re-reading a held-open file from offset 0.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Reads the whole of `file` from offset 0 into `buf` (cleared first) with
/// `pread`, so a handle kept open between ticks can be re-read without
/// `open`/`close` or seeking. cgroupfs and procfs regenerate the content
/// when read from offset 0.
pub fn pread_all(file: &File, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    let mut offset = 0u64;
    loop {
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(4096);
        }
        let start = buf.len();
        let spare = buf.capacity() - start;
        buf.resize(start + spare, 0);
        let n = match file.read_at(&mut buf[start..], offset) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                buf.truncate(start);
                continue;
            }
            Err(e) => {
                buf.truncate(start);
                return Err(e);
            }
        };
        buf.truncate(start + n);
        if n == 0 {
            return Ok(());
        }
        offset += n as u64;
    }
}
