//! The CRI log format written by containerd and CRI-O (kubelet's CRI
//! logging design): `<RFC 3339 nano time> <stdout|stderr> <tag> <message>`
//! where the tag is `F` (full line) or `P` (partial: more fragments follow
//! until an `F`). Split at the first three spaces, as Fluent Bit's `cri`
//! parser does.

use std::borrow::Cow;

use super::{Parsed, Stream, parse_rfc3339_ns};

/// Decodes one CRI line; `None` when it is not one.
pub fn parse(line: &[u8]) -> Option<Parsed<'_>> {
    let mut rest = line;
    let mut field = || -> Option<&[u8]> {
        let i = memchr_space(rest)?;
        let f = &rest[..i];
        rest = &rest[i + 1..];
        Some(f)
    };
    let time = field()?;
    let stream = Stream::from_bytes(field()?)?;
    // The tag may be the last field when the message is empty.
    let (tag, message) = match memchr_space(rest) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &b""[..]),
    };
    let partial = match tag.first() {
        Some(b'P') => true,
        Some(b'F') => false,
        _ => return None,
    };
    let ts_ns = parse_rfc3339_ns(time)?;
    Some(Parsed {
        ts_ns: Some(ts_ns),
        stream,
        partial,
        text: Cow::Borrowed(message),
    })
}

fn memchr_space(s: &[u8]) -> Option<usize> {
    s.iter().position(|&c| c == b' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_and_partial_lines() {
        let p =
            parse(b"2016-10-06T00:17:09.669794202Z stdout F The content of the log entry").unwrap();
        assert_eq!(p.stream, Stream::Stdout);
        assert!(!p.partial);
        assert_eq!(&*p.text, b"The content of the log entry");
        assert_eq!(p.ts_ns, Some(1_475_713_029_669_794_202));
        let p = parse(b"2016-10-06T00:17:09.669794202Z stderr P part one ").unwrap();
        assert!(p.partial);
        assert_eq!(p.stream, Stream::Stderr);
        assert_eq!(&*p.text, b"part one ");
        let p = parse(b"2016-10-06T00:17:09.669794202Z stdout F").unwrap();
        assert_eq!(&*p.text, b"");
        assert!(parse(b"2016-10-06T00:17:09Z stdin F x").is_none());
        assert!(parse(b"2016-10-06T00:17:09Z stdout X x").is_none());
        assert!(parse(b"not a time stdout F x").is_none());
    }
}
