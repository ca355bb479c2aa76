//! gzip for `/metrics` when the scraper accepts it, as Prometheus does by
//! default (`Accept-Encoding: gzip`; `enable_compression: false` in its
//! scrape config turns it off). The text of a dense node is tens of
//! megabytes a scrape; compressed it is a small fraction of that, which is
//! what crosses the network from every node at every scrape.
//!
//! The text is compressed as it is streamed, a chunk at a time, so a scrape
//! never holds the whole text or the whole compressed body.

use std::io::{self, Write as _};

use axum::http::HeaderMap;
use axum::http::header::ACCEPT_ENCODING;
use flate2::Compression;
use flate2::write::GzEncoder;

/// Compressed bytes gathered before a chunk is handed on: fewer, larger
/// writes to the socket than one per text chunk.
const MIN_CHUNK: usize = 64 * 1024;

/// Whether a request's `Accept-Encoding` admits gzip (RFC 9110 §12.5.3):
/// `gzip` or `x-gzip`, or `*` when gzip is not named, with a weight above
/// zero.
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut named = None;
    let mut any = None;
    for value in headers.get_all(ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for coding in value.split(',') {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let weight = parts
                .filter_map(|p| {
                    let (key, value) = p.split_once('=')?;
                    key.trim()
                        .eq_ignore_ascii_case("q")
                        .then(|| value.trim().parse::<f32>().ok())?
                })
                .next()
                .unwrap_or(1.0);
            if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
                named = Some(weight > 0.0);
            } else if name == "*" {
                any = Some(weight > 0.0);
            }
        }
    }
    named.or(any).unwrap_or(false)
}

/// Gzips a stream of text chunks into a stream of compressed chunks, the
/// last of which ends the gzip member.
pub struct GzipChunks<I> {
    text: I,
    /// `None` once the member is finished.
    encoder: Option<GzEncoder<Vec<u8>>>,
}

impl<I> GzipChunks<I> {
    /// Compresses `text` at the fastest level: the text repeats its metric
    /// names and labels on every line, so the fastest level already takes
    /// most of what gzip can, at a fraction of the CPU of the default.
    pub fn new(text: I) -> Self {
        GzipChunks {
            text,
            encoder: Some(GzEncoder::new(Vec::new(), Compression::fast())),
        }
    }
}

impl<I, E> Iterator for GzipChunks<I>
where
    I: Iterator<Item = Result<Vec<u8>, E>>,
    E: From<io::Error>,
{
    type Item = Result<Vec<u8>, E>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let encoder = self.encoder.as_mut()?;
            match self.text.next() {
                Some(Ok(chunk)) => {
                    if let Err(e) = encoder.write_all(&chunk) {
                        self.encoder = None;
                        return Some(Err(e.into()));
                    }
                    // The encoder only appends to its output: what it has
                    // written so far can be handed on.
                    if encoder.get_ref().len() >= MIN_CHUNK {
                        return Some(Ok(std::mem::take(encoder.get_mut())));
                    }
                }
                Some(Err(e)) => {
                    self.encoder = None;
                    return Some(Err(e));
                }
                None => {
                    let encoder = self.encoder.take()?;
                    return Some(encoder.finish().map_err(E::from));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use axum::http::HeaderValue;

    use super::*;

    fn accepts(values: &[&str]) -> bool {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
        }
        accepts_gzip(&headers)
    }

    #[test]
    fn gzip_is_used_only_when_the_client_accepts_it() {
        assert!(accepts(&["gzip"]));
        assert!(accepts(&["GZIP"]));
        assert!(accepts(&["x-gzip"]));
        assert!(accepts(&["deflate, gzip;q=1.0, *;q=0.5"]));
        assert!(accepts(&["br", "gzip"]), "over two header lines");
        assert!(accepts(&["*"]));
        assert!(accepts(&["gzip ; q=0.001"]));
        assert!(!accepts(&[]));
        assert!(!accepts(&["identity"]));
        assert!(!accepts(&["deflate, br"]));
        assert!(!accepts(&["gzip;q=0"]));
        assert!(!accepts(&["gzip;q=0.0, *"]), "named gzip refused beats *");
        assert!(!accepts(&["*;q=0"]));
        assert!(accepts(&["*;q=0, gzip"]));
    }

    #[test]
    fn the_chunks_decompress_to_the_text() {
        // Enough text for several compressed chunks, in uneven pieces.
        let text: Vec<u8> = (0..200_000u32)
            .flat_map(|i| {
                format!("container_cpu_usage_seconds_total{{id=\"/c{i}\"}} {i}\n").into_bytes()
            })
            .collect();
        let pieces: Vec<Result<Vec<u8>, io::Error>> =
            text.chunks(70_001).map(|c| Ok(c.to_vec())).collect();
        let chunks: Vec<Vec<u8>> = GzipChunks::new(pieces.into_iter())
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(chunks.len() > 2, "streamed in several chunks");
        let body = chunks.concat();
        assert!(
            body.len() < text.len() / 5,
            "{} of {}",
            body.len(),
            text.len()
        );
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(body.as_slice())
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, text);

        // No text at all: still one whole gzip member.
        let empty: Vec<Vec<u8>> = GzipChunks::new(std::iter::empty::<Result<Vec<u8>, io::Error>>())
            .collect::<Result<_, _>>()
            .unwrap();
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(empty.concat().as_slice())
            .read_to_end(&mut out)
            .unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn an_error_in_the_text_ends_the_stream() {
        let pieces: Vec<Result<Vec<u8>, io::Error>> = vec![
            Ok(b"a 1\n".to_vec()),
            Err(io::Error::other("encoding failed")),
            Ok(b"b 2\n".to_vec()),
        ];
        let mut chunks = GzipChunks::new(pieces.into_iter());
        assert!(chunks.next().unwrap().is_err());
        assert!(chunks.next().is_none(), "no gzip trailer after an error");
    }
}
