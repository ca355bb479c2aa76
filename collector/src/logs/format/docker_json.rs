//! Docker's `json-file` log driver: one JSON object per line,
//! `{"log":"<text with its newline>","stream":"stdout","time":"<RFC 3339>"}`.
//! Docker splits lines longer than 16 KiB; a fragment's `log` does not end
//! in a newline, and the reader joins fragments up to the one that does.

use std::borrow::Cow;

use serde::Deserialize;

use super::{Parsed, Stream, parse_rfc3339_ns};

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    log: Cow<'a, str>,
    #[serde(borrow, default)]
    stream: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    time: Option<Cow<'a, str>>,
}

/// Decodes one json-file line; `None` when it is not one.
pub fn parse(line: &[u8]) -> Option<Parsed<'_>> {
    let decoded: Line<'_> = serde_json::from_slice(line).ok()?;
    let stream = match decoded.stream.as_deref() {
        Some(s) => Stream::from_bytes(s.as_bytes())?,
        None => Stream::Unknown,
    };
    let ts_ns = match decoded.time.as_deref() {
        Some(t) => Some(parse_rfc3339_ns(t.as_bytes())?),
        None => None,
    };
    let (text, partial) = match decoded.log {
        Cow::Borrowed(s) => match s.strip_suffix('\n') {
            Some(t) => (Cow::Borrowed(t.as_bytes()), false),
            None => (Cow::Borrowed(s.as_bytes()), true),
        },
        Cow::Owned(mut s) => {
            let partial = !s.ends_with('\n');
            if !partial {
                s.pop();
            }
            (Cow::Owned(s.into_bytes()), partial)
        }
    };
    Some(Parsed {
        ts_ns,
        stream,
        partial,
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_and_fragments() {
        let p = parse(br#"{"log":"[info] started\n","stream":"stdout","time":"2016-02-17T00:04:05.931087621Z"}"#)
            .unwrap();
        assert_eq!(&*p.text, b"[info] started");
        assert!(!p.partial);
        assert_eq!(p.stream, Stream::Stdout);
        assert_eq!(p.ts_ns, Some(1_455_667_445_931_087_621));
        let p = parse(
            br#"{"log":"tab\there \"q\" \u00e9","stream":"stderr","time":"2016-02-17T00:04:05Z"}"#,
        )
        .unwrap();
        assert!(p.partial, "no newline: a fragment");
        assert_eq!(&*p.text, "tab\there \"q\" é".as_bytes());
        assert!(
            parse(br#"{"log":"x\n","stream":"stdin","time":"2016-02-17T00:04:05Z"}"#).is_none()
        );
        assert!(parse(br#"{"stream":"stdout"}"#).is_none());
        assert!(parse(b"plain").is_none());
    }
}
