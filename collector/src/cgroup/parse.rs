//! Parsers for the text formats of cgroup interface files.
//!
//! The kernel documents a handful of formats
//! (`Documentation/admin-guide/cgroup-v2.rst`, "Interface Files"); every
//! statistics file is one of them:
//!
//! - single value: `memory.current`, `pids.max` (`max` means unlimited);
//! - flat keyed: `key value` per line (`memory.stat`, `cpu.stat`,
//!   `memory.events`, v1 `cpuacct.stat`, `memory.oom_control`);
//! - nested keyed: `key sub=value sub=value …` per line (`io.stat`, the PSI
//!   files `cpu.pressure`, `memory.pressure`, `io.pressure`);
//! - v1 blkio: `major:minor Op value` per line and a final `Total value`;
//! - `cpu.max`: `<quota|max> <period>`.
//!
//! The parsers borrow from the input and allocate only to build an error.
//! They never panic: a line they cannot understand is a [`ParseError`].
//! Keys they do not know are skipped, because every kernel release adds some.

use thiserror::Error;

/// Longest excerpt of a bad line kept in an error message.
const EXCERPT_LEN: usize = 80;

/// A cgroup file's contents did not have the expected format.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// The file was empty where a value was expected (often a truncated
    /// read or a file replaced while being read).
    #[error("the file is empty; expected a value")]
    Empty,
    /// The file is not UTF-8 text (binary garbage or a torn write).
    #[error("the file is not UTF-8 text")]
    NotText,
    /// A token that should be an unsigned integer is not one.
    #[error("`{token}` is not a valid unsigned integer")]
    InvalidNumber {
        /// The offending token (shortened when long).
        token: String,
    },
    /// A line does not have the expected shape.
    #[error("malformed line `{line}`: expected {expected}")]
    MalformedLine {
        /// The offending line (shortened when long).
        line: String,
        /// What the parser expected, e.g. `"key value"`.
        expected: &'static str,
    },
}

impl ParseError {
    fn malformed(line: &str, expected: &'static str) -> Self {
        ParseError::MalformedLine {
            line: excerpt(line),
            expected,
        }
    }

    fn number(token: &str) -> Self {
        ParseError::InvalidNumber {
            token: excerpt(token),
        }
    }
}

fn excerpt(s: &str) -> String {
    match s.char_indices().nth(EXCERPT_LEN) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

/// Parses an unsigned decimal integer token.
pub fn parse_u64(token: &str) -> Result<u64, ParseError> {
    // Digits only (no sign, unlike `str::parse`), checked for overflow.
    if token.is_empty() {
        return Err(ParseError::number(token));
    }
    token.bytes().try_fold(0u64, |value, b| {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return Err(ParseError::number(token));
        }
        value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(digit)))
            .ok_or_else(|| ParseError::number(token))
    })
}

/// Parses a file holding one unsigned integer (`memory.current`,
/// `cpuacct.usage`, `pids.current`).
pub fn single_u64(text: &str) -> Result<u64, ParseError> {
    let value = text.trim_ascii();
    if value.is_empty() {
        return Err(ParseError::Empty);
    }
    parse_u64(value)
}

/// Parses a file holding one unsigned integer or the word `max`
/// (`memory.max`, `pids.max`); `max` is `None`.
pub fn single_u64_or_max(text: &str) -> Result<Option<u64>, ParseError> {
    match text.trim_ascii() {
        "max" => Ok(None),
        _ => single_u64(text).map(Some),
    }
}

/// Parses a file holding one signed integer (v1 `cpu.cfs_quota_us`, where
/// `-1` means unlimited).
pub fn single_i64(text: &str) -> Result<i64, ParseError> {
    let value = text.trim_ascii();
    if value.is_empty() {
        return Err(ParseError::Empty);
    }
    value.parse().map_err(|_| ParseError::number(value))
}

/// Iterates over the non-blank lines of `text` with surrounding whitespace
/// removed.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    // ASCII trimming: the kernel writes ASCII, and Unicode-aware `trim`
    // costs several times more on the per-tick path.
    text.split('\n')
        .map(str::trim_ascii)
        .filter(|l| !l.is_empty())
}

/// Splits `line` at its first run of ASCII whitespace: `("key", "rest")`.
fn split_key(line: &str) -> Option<(&str, &str)> {
    // Byte search: ASCII whitespace never occurs inside a UTF-8 sequence,
    // so the split point is a char boundary.
    let at = line.bytes().position(|b| b.is_ascii_whitespace())?;
    Some((&line[..at], line[at..].trim_ascii_start()))
}

/// Iterates over a flat keyed file (`key value` per line), yielding each
/// pair in file order. A line that is not two fields with a numeric second
/// field yields an error; the iteration continues after it.
pub fn flat_keyed(text: &str) -> impl Iterator<Item = Result<(&str, u64), ParseError>> {
    lines(text).map(|line| match split_key(line) {
        Some((key, value)) if !value.bytes().any(|b| b.is_ascii_whitespace()) => {
            Ok((key, parse_u64(value)?))
        }
        _ => Err(ParseError::malformed(line, "`key value`")),
    })
}

/// Calls `visit(key, value)` for each `key value` line of a flat keyed
/// file, in file order: what [`flat_keyed`] yields, with the same rules
/// and errors (the first bad line ends the visit), in one pass over the
/// bytes. Lines as the kernel writes them (`key`, one space, digits) take
/// a fast path; anything else (blank lines, other whitespace, errors) the
/// general one.
pub fn visit_flat_keyed<'a>(
    text: &'a str,
    mut visit: impl FnMut(&'a str, u64),
) -> Result<(), ParseError> {
    let bytes = text.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        match kernel_line(&bytes[start..]) {
            Some((key_len, value, line_len)) => {
                // The key ends at an ASCII space: a char boundary.
                visit(&text[start..start + key_len], value);
                start += line_len;
            }
            None => {
                let end = bytes[start..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(bytes.len(), |i| start + i + 1);
                // Newlines are ASCII, so both ends are char boundaries.
                for pair in flat_keyed(&text[start..end]) {
                    let (key, value) = pair?;
                    visit(key, value);
                }
                start = end;
            }
        }
    }
    Ok(())
}

/// `key value\n` (or at the end of the text): a key of bytes above ASCII
/// space, one space, 1–19 digits (which cannot overflow a u64). Returns the
/// key's length, the value and the line's length with its newline; `None`
/// for anything else, left to the general parser.
fn kernel_line(line: &[u8]) -> Option<(usize, u64, usize)> {
    let key_len = first_space_or_control(line)?;
    if key_len == 0 || line[key_len] != b' ' {
        return None;
    }
    let mut value = 0u64;
    let mut i = key_len + 1;
    while i < line.len() {
        let digit = line[i].wrapping_sub(b'0');
        if digit > 9 {
            break;
        }
        // Wrapping: past 19 digits the value is thrown away below.
        value = value.wrapping_mul(10).wrapping_add(u64::from(digit));
        i += 1;
    }
    let digits = i - key_len - 1;
    if digits == 0 || digits > 19 {
        return None;
    }
    match line.get(i) {
        None => Some((key_len, value, i)),
        Some(b'\n') => Some((key_len, value, i + 1)),
        Some(_) => None,
    }
}

/// The index of the first byte at or below ASCII space in `bytes`.
///
/// Eight bytes at a time: v1 `memory.stat` has ~40–80 keys of up to 27
/// bytes per read, and a byte-at-a-time scan for each key's end was most
/// of the agent's own time parsing it.
fn first_space_or_control(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for word in &mut words {
        let w = u64::from_le_bytes(word.try_into().expect("eight bytes"));
        // The high bit of each byte below 0x21 (the "has less" trick):
        // a borrow only runs towards higher bytes, so the lowest flagged
        // byte is exact, and that is the one taken.
        let below = w.wrapping_sub(ONES * 0x21) & !w & HIGHS;
        if below != 0 {
            return Some(at + below.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    let rest = words.remainder();
    rest.iter().position(|&b| b <= b' ').map(|i| at + i)
}

/// Iterates over the `sub=value` fields after the key of a nested keyed
/// line.
fn nested_fields(rest: &str) -> impl Iterator<Item = Result<(&str, &str), ParseError>> {
    rest.split_ascii_whitespace().map(move |field| {
        field
            .split_once('=')
            .ok_or_else(|| ParseError::malformed(field, "`name=value`"))
    })
}

/// One device line of v2 `io.stat`. Fields the kernel did not print are 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoStatLine {
    /// Device major number.
    pub major: u64,
    /// Device minor number.
    pub minor: u64,
    /// Bytes read (`rbytes`).
    pub rbytes: u64,
    /// Bytes written (`wbytes`).
    pub wbytes: u64,
    /// Read operations (`rios`).
    pub rios: u64,
    /// Write operations (`wios`).
    pub wios: u64,
    /// Bytes discarded (`dbytes`).
    pub dbytes: u64,
    /// Discard operations (`dios`).
    pub dios: u64,
}

/// Parses a `major:minor` device number.
pub fn device_number(token: &str) -> Result<(u64, u64), ParseError> {
    let (major, minor) = token
        .split_once(':')
        .ok_or_else(|| ParseError::malformed(token, "`major:minor`"))?;
    Ok((parse_u64(major)?, parse_u64(minor)?))
}

/// Iterates over the device lines of v2 `io.stat`
/// (`maj:min rbytes=… wbytes=… rios=… wios=… dbytes=… dios=…`). Other
/// fields (`cost.usage`, …) are skipped.
pub fn io_stat(text: &str) -> impl Iterator<Item = Result<IoStatLine, ParseError>> {
    lines(text).map(|line| {
        let (device, rest) = line
            .split_once(|c: char| c.is_ascii_whitespace())
            .unwrap_or((line, ""));
        let (major, minor) = device_number(device)?;
        let mut out = IoStatLine {
            major,
            minor,
            ..IoStatLine::default()
        };
        for field in nested_fields(rest) {
            let (name, value) = field?;
            let slot = match name {
                "rbytes" => &mut out.rbytes,
                "wbytes" => &mut out.wbytes,
                "rios" => &mut out.rios,
                "wios" => &mut out.wios,
                "dbytes" => &mut out.dbytes,
                "dios" => &mut out.dios,
                _ => continue,
            };
            *slot = parse_u64(value)?;
        }
        Ok(out)
    })
}

/// One line (`some` or `full`) of a PSI file.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PsiLine {
    /// Share of wall time stalled over the last 10 s, percent.
    pub avg10: f64,
    /// … over the last 60 s, percent.
    pub avg60: f64,
    /// … over the last 300 s, percent.
    pub avg300: f64,
    /// Cumulative stall time, microseconds.
    pub total_us: u64,
}

/// A whole PSI file (`cpu.pressure`, `memory.pressure`, `io.pressure`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Pressure {
    /// The `some` line: at least one task stalled.
    pub some: Option<PsiLine>,
    /// The `full` line: all non-idle tasks stalled (absent for `cpu.pressure`
    /// on kernels before 5.13).
    pub full: Option<PsiLine>,
}

/// Parses a PSI file: `some avg10=… avg60=… avg300=… total=…` and
/// optionally the same for `full`. Lines with other keys are skipped.
pub fn pressure(text: &str) -> Result<Pressure, ParseError> {
    parse_pressure::<true>(text)
}

/// [`pressure`] without converting the averages (left at 0), only checking
/// that each is a decimal number (`12.34`, as the kernel writes them): the
/// per-tick path uses only the totals, and three float conversions per
/// line were most of the cost of reading a PSI file.
pub fn pressure_totals(text: &str) -> Result<Pressure, ParseError> {
    // Three PSI files per v2 cgroup per tick: lines exactly as the kernel
    // prints them (`kernel/sched/psi.c`) are read byte by byte; anything
    // else goes to the general parser, which gives the same result or
    // error.
    kernel_pressure_totals(text.as_bytes()).map_or_else(|| parse_pressure::<false>(text), Ok)
}

/// [`pressure_totals`] of a file of `some`/`full` lines in the kernel's
/// exact format (`some avg10=D.DD avg60=D.DD avg300=D.DD total=N`); `None`
/// for anything else.
fn kernel_pressure_totals(mut rest: &[u8]) -> Option<Pressure> {
    let mut out = Pressure::default();
    while !rest.is_empty() {
        let (slot, mut line) = if let Some(line) = rest.strip_prefix(b"some ") {
            (&mut out.some, line)
        } else {
            (&mut out.full, rest.strip_prefix(b"full ")?)
        };
        for name in [&b"avg10="[..], b"avg60=", b"avg300="] {
            line = line.strip_prefix(name)?;
            let int = line.iter().take_while(|b| b.is_ascii_digit()).count();
            line = &line[int..];
            let frac = match line.strip_prefix(b".") {
                Some(after) => {
                    let frac = after.iter().take_while(|b| b.is_ascii_digit()).count();
                    line = &after[frac..];
                    frac
                }
                None => 0,
            };
            if int + frac == 0 {
                return None;
            }
            line = line.strip_prefix(b" ")?;
        }
        line = line.strip_prefix(b"total=")?;
        let digits = line.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 19 {
            return None; // 20 digits may overflow: the general parser says so
        }
        let total = line[..digits]
            .iter()
            .fold(0u64, |v, b| v * 10 + u64::from(b - b'0'));
        rest = match &line[digits..] {
            [] => &[],
            [b'\n', after @ ..] => after,
            _ => return None,
        };
        *slot = Some(PsiLine {
            total_us: total,
            ..PsiLine::default()
        });
    }
    Some(out)
}

fn parse_pressure<const AVERAGES: bool>(text: &str) -> Result<Pressure, ParseError> {
    let mut out = Pressure::default();
    for line in lines(text) {
        let (kind, rest) = line
            .split_once(|c: char| c.is_ascii_whitespace())
            .ok_or_else(|| ParseError::malformed(line, "`some|full avg10=… total=…`"))?;
        let slot = match kind {
            "some" => &mut out.some,
            "full" => &mut out.full,
            _ => continue,
        };
        let mut psi = PsiLine::default();
        let mut saw_total = false;
        for field in nested_fields(rest) {
            let (name, value) = field?;
            let avg = match name {
                "avg10" => &mut psi.avg10,
                "avg60" => &mut psi.avg60,
                "avg300" => &mut psi.avg300,
                "total" => {
                    psi.total_us = parse_u64(value)?;
                    saw_total = true;
                    continue;
                }
                _ => continue,
            };
            if AVERAGES {
                *avg = value
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| ParseError::number(value))?;
            } else if !is_decimal(value) {
                return Err(ParseError::number(value));
            }
        }
        if !saw_total {
            return Err(ParseError::malformed(line, "a `total=` field"));
        }
        *slot = Some(psi);
    }
    Ok(out)
}

/// Digits with at most one decimal point among them (`0.00`, `12.5`, `3`).
fn is_decimal(s: &str) -> bool {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    !(int.is_empty() && frac.is_empty())
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

/// The operation column of a v1 blkio file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlkioOp {
    /// `Read`.
    Read,
    /// `Write`.
    Write,
    /// `Sync`.
    Sync,
    /// `Async`.
    Async,
    /// `Discard`.
    Discard,
    /// `Total` (per device).
    Total,
    /// An operation name this parser does not know.
    Other,
}

/// One `major:minor Op value` line of a v1 blkio file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlkioEntry {
    /// Device major number.
    pub major: u64,
    /// Device minor number.
    pub minor: u64,
    /// The operation counted.
    pub op: BlkioOp,
    /// The count (operations or bytes, depending on the file).
    pub value: u64,
}

/// Iterates over the per-device entries of a v1 blkio file
/// (`blkio.throttle.io_serviced`, `…io_service_bytes_recursive`, …). The
/// trailing all-device `Total value` line is skipped, so a cgroup that did
/// no I/O yields nothing.
pub fn blkio_v1(text: &str) -> impl Iterator<Item = Result<BlkioEntry, ParseError>> {
    lines(text).filter_map(|line| {
        let mut fields = line.split_ascii_whitespace();
        let parsed = match (fields.next(), fields.next(), fields.next(), fields.next()) {
            (Some("Total"), Some(_), None, None) => return None,
            (Some(device), Some(op), Some(value), None) => {
                device_number(device).and_then(|(major, minor)| {
                    Ok(BlkioEntry {
                        major,
                        minor,
                        op: match op {
                            "Read" => BlkioOp::Read,
                            "Write" => BlkioOp::Write,
                            "Sync" => BlkioOp::Sync,
                            "Async" => BlkioOp::Async,
                            "Discard" => BlkioOp::Discard,
                            "Total" => BlkioOp::Total,
                            _ => BlkioOp::Other,
                        },
                        value: parse_u64(value)?,
                    })
                })
            }
            _ => Err(ParseError::malformed(line, "`major:minor Op value`")),
        };
        Some(parsed)
    })
}

/// Calls `visit` for each entry of a v1 blkio file, in file order: what
/// [`blkio_v1`] yields, with the same rules and errors (the first bad
/// line ends the visit). Lines as the kernel prints them
/// (`major:minor Op value`) are read byte by byte; anything else goes to
/// the general parser.
pub fn visit_blkio_v1(text: &str, mut visit: impl FnMut(BlkioEntry)) -> Result<(), ParseError> {
    let bytes = text.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        if let Some((entry, len)) = kernel_blkio_line(&bytes[start..]) {
            visit(entry);
            start += len;
            continue;
        }
        let end = bytes[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |i| start + i + 1);
        for entry in blkio_v1(&text[start..end]) {
            visit(entry?);
        }
        start = end;
    }
    Ok(())
}

/// Leading decimal digits of `b` (1–19 of them, so no overflow) and their
/// count.
fn leading_u64(b: &[u8]) -> Option<(u64, usize)> {
    let n = b.iter().take_while(|b| b.is_ascii_digit()).count();
    (1..=19).contains(&n).then(|| {
        let value = b[..n]
            .iter()
            .fold(0u64, |v, d| v * 10 + u64::from(d - b'0'));
        (value, n)
    })
}

/// `major:minor Op value\n` (or at the end of the text) → the entry and
/// the line's length with its newline; `None` for anything else.
fn kernel_blkio_line(line: &[u8]) -> Option<(BlkioEntry, usize)> {
    let (major, n) = leading_u64(line)?;
    let rest = line[n..].strip_prefix(b":")?;
    let (minor, n) = leading_u64(rest)?;
    let rest = rest[n..].strip_prefix(b" ")?;
    let op_len = rest.iter().position(|&b| b <= b' ')?;
    let op = match &rest[..op_len] {
        b"Read" => BlkioOp::Read,
        b"Write" => BlkioOp::Write,
        b"Sync" => BlkioOp::Sync,
        b"Async" => BlkioOp::Async,
        b"Discard" => BlkioOp::Discard,
        b"Total" => BlkioOp::Total,
        _ => return None,
    };
    let rest = rest[op_len..].strip_prefix(b" ")?;
    let (value, n) = leading_u64(rest)?;
    let after = match rest.get(n) {
        None => 0,
        Some(b'\n') => 1,
        Some(_) => return None,
    };
    let entry = BlkioEntry {
        major,
        minor,
        op,
        value,
    };
    Some((entry, line.len() - rest.len() + n + after))
}

/// The v2 `cpu.max` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuMax {
    /// Quota per period, µs; `None` when `max` (unlimited).
    pub quota_us: Option<u64>,
    /// Period, µs.
    pub period_us: u64,
}

/// Parses v2 `cpu.max`: `<quota|max> <period>`.
pub fn cpu_max(text: &str) -> Result<CpuMax, ParseError> {
    let line = text.trim_ascii();
    if line.is_empty() {
        return Err(ParseError::Empty);
    }
    let mut fields = line.split_ascii_whitespace();
    match (fields.next(), fields.next(), fields.next()) {
        (Some(quota), Some(period), None) => Ok(CpuMax {
            quota_us: match quota {
                "max" => None,
                q => Some(parse_u64(q)?),
            },
            period_us: parse_u64(period)?,
        }),
        _ => Err(ParseError::malformed(line, "`<quota|max> <period>`")),
    }
}

/// The v2 `memory.events` counters. Keys the kernel does not print are 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryEvents {
    /// Reclaims while under `memory.low`.
    pub low: u64,
    /// Times usage went over `memory.high`.
    pub high: u64,
    /// Times usage was about to go over `memory.max`.
    pub max: u64,
    /// Times the OOM killer was invoked for the cgroup.
    pub oom: u64,
    /// Processes killed by the OOM killer.
    pub oom_kill: u64,
    /// Times the whole cgroup was OOM-killed (`memory.oom.group`).
    pub oom_group_kill: u64,
}

/// Parses v2 `memory.events` (a flat keyed file).
pub fn memory_events(text: &str) -> Result<MemoryEvents, ParseError> {
    let mut out = MemoryEvents::default();
    for pair in flat_keyed(text) {
        let (key, value) = pair?;
        match key {
            "low" => out.low = value,
            "high" => out.high = value,
            "max" => out.max = value,
            "oom" => out.oom = value,
            "oom_kill" => out.oom_kill = value,
            "oom_group_kill" => out.oom_group_kill = value,
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic stream of pseudo-random numbers (xorshift64) for
    /// the randomised tests.
    fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    #[test]
    fn the_word_scan_finds_the_first_space_or_control_byte_as_a_byte_scan_does() {
        // Bytes on both sides of the boundary (0x20/0x21), and high bytes
        // whose borrow could flag a neighbour, at every offset and length
        // around the word size.
        let alphabet = [
            0x00, 0x09, b'\n', b' ', b'!', b'a', b'_', 0x7f, 0x80, 0xa0, 0xff,
        ];
        let mut next = xorshift(0x2545_f491_4f6c_dd1d);
        for _ in 0..50_000 {
            let len = (next() % 26) as usize;
            let mut bytes: Vec<u8> = (0..len)
                .map(|_| {
                    // Mostly key bytes, so the first hit lands anywhere.
                    if next().is_multiple_of(6) {
                        alphabet[(next() % alphabet.len() as u64) as usize]
                    } else {
                        b'a' + (next() % 26) as u8
                    }
                })
                .collect();
            if len > 0 && next().is_multiple_of(4) {
                bytes[len - 1] = 0xff;
            }
            let expected = bytes.iter().position(|&b| b <= b' ');
            assert_eq!(first_space_or_control(&bytes), expected, "{bytes:?}");
        }
    }

    #[test]
    fn single_values() {
        assert_eq!(single_u64("123\n"), Ok(123));
        assert_eq!(single_u64("18446744073709551615"), Ok(u64::MAX));
        assert!(single_u64("18446744073709551616").is_err());
        assert!(single_u64("+1").is_err());
        assert_eq!(single_u64(""), Err(ParseError::Empty));
        assert!(matches!(
            single_u64("12a"),
            Err(ParseError::InvalidNumber { .. })
        ));
        assert!(matches!(
            single_u64("-1"),
            Err(ParseError::InvalidNumber { .. })
        ));
        assert_eq!(single_u64_or_max("max\n"), Ok(None));
        assert_eq!(single_u64_or_max("4096\n"), Ok(Some(4096)));
        assert_eq!(single_i64("-1\n"), Ok(-1));
        assert_eq!(single_i64(" \n"), Err(ParseError::Empty));
    }

    #[test]
    fn flat_keyed_pairs_and_errors() {
        let pairs: Vec<_> = flat_keyed("user 10\n\nsystem 20\n").collect();
        assert_eq!(pairs, vec![Ok(("user", 10)), Ok(("system", 20))]);
        let bad: Vec<_> = flat_keyed("user\nsystem 2 3\nnice x\n").collect();
        assert!(matches!(bad[0], Err(ParseError::MalformedLine { .. })));
        assert!(matches!(bad[1], Err(ParseError::MalformedLine { .. })));
        assert!(matches!(bad[2], Err(ParseError::InvalidNumber { .. })));
    }

    /// The items an iterating parser yields up to its first error, and
    /// that error: what the visiting parsers return.
    fn until_error<T, E>(items: impl IntoIterator<Item = Result<T, E>>) -> (Vec<T>, Result<(), E>) {
        let mut out = Vec::new();
        for item in items {
            match item {
                Ok(v) => out.push(v),
                Err(e) => return (out, Err(e)),
            }
        }
        (out, Ok(()))
    }

    #[test]
    fn visit_flat_keyed_agrees_with_flat_keyed() {
        let visit = |text: &str| {
            let mut out = Vec::new();
            let end = visit_flat_keyed(text, |k, v| out.push((k.to_string(), v)));
            (out, end)
        };
        let iterate =
            |text: &str| until_error(flat_keyed(text).map(|p| p.map(|(k, v)| (k.to_string(), v))));
        for text in [
            "",
            "\n",
            "user 10\nsystem 20\n",
            "user 10\nsystem 20",
            "user 10\n\n  system\t20  \n\n",
            "a\t1\nb 2\r\nc 3\n",
            "max 18446744073709551615\n",
            "max 18446744073709551616\n",
            "big 9999999999999999999\nlead 007\n",
            "cache 123\nrss",
            "cache 1\nrss\n",
            "cache 1\nrss 12abc\n",
            "cache 1\nrss 1 2\nswap 3\n",
            "cache -1\n",
            " rss 5\n",
            "clé 5\nrss 6\n",
        ] {
            assert_eq!(visit(text), iterate(text), "{text:?}");
        }
    }

    #[test]
    fn visit_blkio_v1_agrees_with_blkio_v1() {
        let visit = |text: &str| {
            let mut out = Vec::new();
            let end = visit_blkio_v1(text, |e| out.push(e));
            (out, end)
        };
        let iterate = |text: &str| until_error(blkio_v1(text));
        for text in [
            "",
            "Total 0\n",
            "8:0 Read 1\n8:0 Write 2\n8:0 Sync 3\n8:0 Async 4\n8:0 Discard 5\n8:0 Total 15\n253:1 Read 7\nTotal 22\n",
            "8:0 Read 1",
            "8:0 Read 18446744073709551615\n8:0 Write 18446744073709551616\n",
            "8:0 Frob 1\n8:0  Read 2\n8:0\tWrite 3\n",
            "8:0 Read\n",
            "8:0 Read -1\n",
            "8:0 Read 1 2\n",
            "8 Read 1\n",
            "8:x Read 1\n",
            "8:0 Read 1x\n",
            "\n8:0 Read 1\r\nTotal 1\n",
        ] {
            assert_eq!(visit(text), iterate(text), "{text:?}");
        }
    }

    #[test]
    fn io_stat_lines() {
        let text =
            "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=5 dios=6 cost.usage=7\n253:1 rbytes=9\n";
        let parsed: Vec<_> = io_stat(text).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            parsed[0],
            IoStatLine {
                major: 8,
                minor: 0,
                rbytes: 1,
                wbytes: 2,
                rios: 3,
                wios: 4,
                dbytes: 5,
                dios: 6
            }
        );
        assert_eq!(parsed[1].major, 253);
        assert_eq!(parsed[1].rbytes, 9);
        assert_eq!(parsed[1].wbytes, 0);
        assert!(io_stat("8 rbytes=1\n").next().unwrap().is_err());
        assert!(io_stat("8:0 rbytes\n").next().unwrap().is_err());
        assert!(io_stat("8:0 rbytes=x\n").next().unwrap().is_err());
    }

    #[test]
    fn pressure_file() {
        let text = "some avg10=1.50 avg60=0.25 avg300=0.00 total=1234\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=56\n";
        let p = pressure(text).unwrap();
        let some = p.some.unwrap();
        assert_eq!(some.total_us, 1234);
        assert_eq!(some.avg10, 1.5);
        assert_eq!(some.avg60, 0.25);
        assert_eq!(p.full.unwrap().total_us, 56);
        assert_eq!(
            pressure("some avg10=0.00\n").unwrap_err().to_string(),
            "malformed line `some avg10=0.00`: expected a `total=` field"
        );
        assert!(pressure("some avg10=nan total=1\n").is_err());
        assert!(pressure("some\n").is_err());
        assert_eq!(pressure("").unwrap(), Pressure::default());
    }

    #[test]
    fn pressure_totals_checks_averages_without_converting_them() {
        let text = "some avg10=1.50 avg60=0.25 avg300=0.00 total=1234\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=56\n";
        let p = pressure_totals(text).unwrap();
        assert_eq!(p.some.unwrap().total_us, 1234);
        assert_eq!(p.full.unwrap().total_us, 56);
        assert_eq!(p.some.unwrap().avg10, 0.0, "averages are not converted");
        for bad in [
            "some avg10=nan total=1\n",
            "some avg10=x total=1\n",
            "some avg10=. total=1\n",
            "some avg10=1.2.3 total=1\n",
            "some avg10=0.00\n",
            "some\n",
        ] {
            assert!(pressure_totals(bad).is_err(), "{bad:?}");
            assert!(pressure(bad).is_err(), "{bad:?}");
        }
        assert_eq!(pressure_totals("").unwrap(), Pressure::default());
        // The kernel's exact lines take a byte-level path; whatever else
        // the general parser accepts or refuses must come out the same.
        for text in [
            "some avg10=1.50 avg60=0.25 avg300=0.00 total=1234\n",
            "some avg10=1.50 avg60=0.25 avg300=0.00 total=1234",
            "full avg10=0.00 avg60=0.00 avg300=0.00 total=18446744073709551615\n",
            "full avg10=0.00 avg60=0.00 avg300=0.00 total=18446744073709551616\n",
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=5\nsome avg10=0.00 avg60=0.00 avg300=0.00 total=6\n",
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=5\n\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=6\n",
            "some  avg10=0.00 avg60=0.00 avg300=0.00 total=5\n",
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=5 \n",
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=5x\n",
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=\n",
            "some avg300=0.00 avg10=0.00 avg60=0.00 total=5\n",
            "some total=5\n",
            "other avg10=0.00 avg60=0.00 avg300=0.00 total=5\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=6\n",
            "some avg10=1. avg60=.5 avg300=7 total=1\n",
            "some avg10=. avg60=0.00 avg300=0.00 total=1\n",
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=1\r\n",
        ] {
            assert_eq!(
                pressure_totals(text),
                parse_pressure::<false>(text),
                "{text:?}"
            );
        }
        assert_eq!(
            pressure_totals("full avg10=12 avg60=0.5 avg300=.5 total=7\n")
                .unwrap()
                .full
                .unwrap()
                .total_us,
            7
        );
    }

    #[test]
    fn blkio_v1_entries() {
        let text = "8:0 Read 10\n8:0 Write 20\n8:0 Sync 5\n8:0 Async 25\n8:0 Discard 0\n8:0 Total 30\nTotal 30\n";
        let entries: Vec<_> = blkio_v1(text).collect::<Result<_, _>>().unwrap();
        assert_eq!(entries.len(), 6);
        assert_eq!(entries[1].op, BlkioOp::Write);
        assert_eq!(entries[1].value, 20);
        assert_eq!(blkio_v1("Total 0\n").count(), 0);
        assert!(blkio_v1("8:0 Read\n").next().unwrap().is_err());
        assert!(blkio_v1("8:0 Read -1\n").next().unwrap().is_err());
    }

    #[test]
    fn cpu_max_forms() {
        assert_eq!(
            cpu_max("max 100000\n"),
            Ok(CpuMax {
                quota_us: None,
                period_us: 100000
            })
        );
        assert_eq!(
            cpu_max("50000 100000\n"),
            Ok(CpuMax {
                quota_us: Some(50000),
                period_us: 100000
            })
        );
        assert!(cpu_max("50000\n").is_err());
        assert_eq!(cpu_max(""), Err(ParseError::Empty));
    }

    #[test]
    fn memory_events_keys() {
        let e =
            memory_events("low 1\nhigh 2\nmax 3\noom 4\noom_kill 5\noom_group_kill 6\nnew_key 7\n")
                .unwrap();
        assert_eq!(
            e,
            MemoryEvents {
                low: 1,
                high: 2,
                max: 3,
                oom: 4,
                oom_kill: 5,
                oom_group_kill: 6
            }
        );
        assert!(memory_events("oom one\n").is_err());
    }

    /// Random text built from the characters these formats use never makes
    /// a parser panic (a cheap fuzz; the seeds make failures reproducible).
    #[test]
    fn random_text_never_panics() {
        const ALPHABET: &[&str] = &[
            "0",
            "1",
            "9",
            "max",
            "-",
            " ",
            "\t",
            "\n",
            "=",
            ":",
            ".",
            "total",
            "some",
            "full",
            "avg10",
            "rbytes",
            "Read",
            "Total",
            "é",
            "18446744073709551616",
            "\u{0}",
        ];
        let mut next = xorshift(0x2545_f491_4f6c_dd1d);
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            let text: String = (0..len)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect();
            let _ = single_u64(&text);
            let _ = single_u64_or_max(&text);
            let _ = single_i64(&text);
            let _ = flat_keyed(&text).count();
            let _ = io_stat(&text).count();
            let _ = pressure(&text);
            let _ = blkio_v1(&text).count();
            let _ = cpu_max(&text);
            let _ = memory_events(&text);
        }
    }

    #[test]
    fn long_bad_lines_are_shortened() {
        let line = "x".repeat(500);
        let ParseError::MalformedLine { line: kept, .. } =
            flat_keyed(&line).next().unwrap().unwrap_err()
        else {
            panic!("expected a malformed-line error");
        };
        assert!(kept.chars().count() <= EXCERPT_LEN + 1);
    }
}
