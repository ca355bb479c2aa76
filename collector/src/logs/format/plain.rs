//! Plain text: the whole line is the message; no timestamp or stream.

use std::borrow::Cow;

use super::{Parsed, Stream};

/// Wraps a plain line (a trailing `\r` of CRLF files is dropped).
pub fn parse(line: &[u8]) -> Parsed<'_> {
    let text = line.strip_suffix(b"\r").unwrap_or(line);
    Parsed {
        ts_ns: None,
        stream: Stream::Unknown,
        partial: false,
        text: Cow::Borrowed(text),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_the_line() {
        let p = super::parse(b"kernel: hello\r");
        assert_eq!(&*p.text, b"kernel: hello");
        assert!(!p.partial);
        assert_eq!(p.ts_ns, None);
    }
}
