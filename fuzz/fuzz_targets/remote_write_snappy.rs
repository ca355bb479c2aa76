//! `POST /api/v1/write` bodies as received: snappy block framing around a
//! protobuf `WriteRequest`, checked, decompressed and decoded exactly as
//! the server does before storing anything.
#![no_main]

use http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use osprey::server::ingest;

fuzz_target!(|body: &[u8]| {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("snappy"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-protobuf"),
    );
    if ingest::check_request(&headers, body).is_err() {
        return;
    }
    // A small decoded limit keeps every run cheap; the limit check itself
    // is part of what is fuzzed.
    if let Ok(decoded) = ingest::decompress(body, 1 << 20) {
        let _ = ingest::parse(&decoded);
    }
});
