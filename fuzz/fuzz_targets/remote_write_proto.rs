//! The protobuf `WriteRequest` inside a remote-write body: the input is
//! compressed first so that the fuzzer explores the in-place message
//! decoder, the per-series sample order check and the label rules the
//! storage applies to a new series, rather than snappy's framing.
#![no_main]

use http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use osprey::server::ingest;

fuzz_target!(|protobuf: &[u8]| {
    let Ok(body) = snap::raw::Encoder::new().compress_vec(protobuf) else {
        return;
    };
    if let Err(e) = ingest::check_request(&HeaderMap::new(), &body) {
        assert!(!e.message.is_empty());
        return;
    }
    let decoded = match ingest::decompress(&body, 1 << 20) {
        Ok(d) => d,
        Err(e) => return assert!(!e.message.is_empty()),
    };
    match ingest::parse(&decoded) {
        Ok(batch) => {
            for series in batch.series() {
                // Samples that pass are strictly increasing per series.
                assert!(series.samples.windows(2).all(|w| w[0].t < w[1].t));
                let _ = series.labels.validate();
            }
        }
        Err(e) => assert!(!e.message.is_empty()),
    }
});
