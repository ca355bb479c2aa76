//! The protobuf `WriteRequest` inside a remote-write body: the input is
//! compressed first so that the fuzzer explores the message decoder and
//! the per-series validation rather than snappy's framing.
#![no_main]

use http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use osprey::server::ingest;

fuzz_target!(|protobuf: &[u8]| {
    let Ok(body) = snap::raw::Encoder::new().compress_vec(protobuf) else {
        return;
    };
    match ingest::decode(&HeaderMap::new(), &body, 1 << 20) {
        Ok(request) => {
            if let Ok(batch) = ingest::to_batch(request) {
                // What validation lets through is what the storage gets:
                // named, with label names unique.
                for series in &batch {
                    assert!(series.labels.get("__name__").is_some_and(|n| !n.is_empty()));
                }
            }
        }
        Err(e) => assert!(!e.message.is_empty()),
    }
});
