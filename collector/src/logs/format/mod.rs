//! Decoding one physical line of a log file into its timestamp, stream and
//! text: Docker's `json-file` ([`docker_json`]), the CRI format
//! ([`cri`]) and plain text ([`plain`]). A file's format is told from its
//! first line ([`detect`]); a line that does not decode in the file's
//! format is passed on as plain text, never dropped.

pub mod cri;
pub mod docker_json;
pub mod plain;

use std::borrow::Cow;

/// The output stream a container line was written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// Not a container stream (plain files).
    Unknown,
}

impl Stream {
    /// The `stream` label value, if any.
    pub fn label(self) -> Option<&'static str> {
        match self {
            Stream::Stdout => Some("stdout"),
            Stream::Stderr => Some("stderr"),
            Stream::Unknown => None,
        }
    }

    /// Index for per-stream state (0 stdout, 1 stderr, 2 other).
    pub fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
            Stream::Unknown => 2,
        }
    }

    fn from_bytes(s: &[u8]) -> Option<Self> {
        match s {
            b"stdout" => Some(Stream::Stdout),
            b"stderr" => Some(Stream::Stderr),
            _ => None,
        }
    }
}

/// The format of a log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Docker `json-file`: `{"log":"…\n","stream":"stdout","time":"…"}`.
    DockerJson,
    /// CRI: `<RFC 3339 time> <stdout|stderr> <P|F> <message>`.
    Cri,
    /// Any other text, one line per entry.
    Plain,
}

/// One decoded physical line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<'a> {
    /// The runtime's timestamp, ns since the epoch; `None` for plain text
    /// (the reader stamps the time it read the line).
    pub ts_ns: Option<i64>,
    /// Which stream.
    pub stream: Stream,
    /// Whether more fragments of this line follow (Docker's 16 KiB split,
    /// CRI `P`).
    pub partial: bool,
    /// The text, without the line's newline.
    pub text: Cow<'a, [u8]>,
}

/// Tells a file's format from its first complete line.
pub fn detect(line: &[u8]) -> LogFormat {
    if line.first() == Some(&b'{') && docker_json::parse(line).is_some() {
        LogFormat::DockerJson
    } else if cri::parse(line).is_some() {
        LogFormat::Cri
    } else {
        LogFormat::Plain
    }
}

/// Decodes `line` in `format`, falling back to plain text when it does not
/// decode (a damaged or truncated line is still delivered).
pub fn parse(format: LogFormat, line: &[u8]) -> (Parsed<'_>, bool) {
    let decoded = match format {
        LogFormat::DockerJson => docker_json::parse(line),
        LogFormat::Cri => cri::parse(line),
        LogFormat::Plain => return (plain::parse(line), true),
    };
    match decoded {
        Some(p) => (p, true),
        None => (plain::parse(line), false),
    }
}

/// Parses an RFC 3339 timestamp to ns since the epoch. The common form
/// written by runtimes (`2026-11-26T23:00:00.123456789Z`) takes a fast
/// path; offsets go through chrono.
pub fn parse_rfc3339_ns(s: &[u8]) -> Option<i64> {
    if let Some(ns) = parse_utc_fast(s) {
        return Some(ns);
    }
    let s = std::str::from_utf8(s).ok()?;
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()?
        .timestamp_nanos_opt()
}

fn parse_utc_fast(s: &[u8]) -> Option<i64> {
    if s.len() < 20 || s[s.len() - 1] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &c in &s[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    if s[4] != b'-'
        || s[7] != b'-'
        || (s[10] != b'T' && s[10] != b't')
        || s[13] != b':'
        || s[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut nanos = 0i64;
    let rest = &s[19..s.len() - 1];
    if !rest.is_empty() {
        if rest[0] != b'.' || rest.len() < 2 || rest.len() > 10 {
            return None;
        }
        let digits = num(20..20 + rest.len() - 1)?;
        nanos = digits * 10i64.pow(9 - (rest.len() as u32 - 1));
    }
    let days = days_from_civil(year, month, day);
    // Checked: i64 nanoseconds end in 2262 (chrono's
    // `timestamp_nanos_opt` answers `None` past it too).
    (days * 86_400 + hour * 3600 + min * 60 + sec)
        .checked_mul(1_000_000_000)?
        .checked_add(nanos)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_past_2262_are_not_parsed_rather_than_overflowing() {
        // Found by the container_log_line fuzz target (a Docker json-file
        // line with "time":"2513-11-26T23:00:00Z" panicked on overflow).
        assert_eq!(parse_rfc3339_ns(b"2513-11-26T23:00:00Z"), None);
        assert_eq!(parse_rfc3339_ns(b"9999-12-31T23:59:59.999999999Z"), None);
        assert_eq!(
            parse_rfc3339_ns(b"2262-04-11T23:47:16.854775807Z"),
            Some(i64::MAX)
        );
        assert_eq!(parse_rfc3339_ns(b"2262-04-11T23:47:16.854775808Z"), None);
        let line = br#"{"log":"x
","stream":"stderr","time":"2513-11-26T23:00:00Z"}"#;
        assert!(docker_json::parse(line).is_none_or(|p| p.ts_ns.is_none()));
    }

    #[test]
    fn timestamps_parse_like_chrono() {
        for s in [
            "2016-10-06T00:17:09.669794202Z",
            "2016-02-17T00:04:05.931087621Z",
            "2024-02-29T23:59:59Z",
            "1970-01-01T00:00:00.5Z",
            "2026-11-26T23:00:00.123+02:00",
        ] {
            let want = chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .timestamp_nanos_opt()
                .unwrap();
            assert_eq!(parse_rfc3339_ns(s.as_bytes()), Some(want), "{s}");
        }
        assert_eq!(parse_rfc3339_ns(b"yesterday"), None);
        assert_eq!(parse_rfc3339_ns(b"2016-13-06T00:17:09Z"), None);
    }

    #[test]
    fn detects_formats() {
        assert_eq!(
            detect(br#"{"log":"hi\n","stream":"stdout","time":"2016-02-17T00:04:05.931087621Z"}"#),
            LogFormat::DockerJson
        );
        assert_eq!(
            detect(b"2016-10-06T00:17:09.669794202Z stdout F hello"),
            LogFormat::Cri
        );
        assert_eq!(
            detect(b"Nov 26 23:00:01 host sshd[1]: hi"),
            LogFormat::Plain
        );
        assert_eq!(detect(b"{not json"), LogFormat::Plain);
    }

    #[test]
    fn undecodable_lines_fall_back_to_plain() {
        let (p, ok) = parse(LogFormat::Cri, b"garbage");
        assert!(!ok);
        assert_eq!(&*p.text, b"garbage");
        assert_eq!(p.stream, Stream::Unknown);
    }
}
