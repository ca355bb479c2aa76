//! `POST /loki/api/v1/push` with `Content-Type: application/json`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osprey::logs::push::{BodyFormat, PushLimits, decode};

const LIMITS: PushLimits = PushLimits {
    max_decoded_bytes: 1 << 20,
    max_line_bytes: 4096,
    oldest_ns: 0,
    newest_ns: 4_000_000_000_000_000_000,
};

fuzz_target!(|body: &[u8]| {
    if let Ok(batch) = decode(body, BodyFormat::Json, &LIMITS) {
        for line in &batch.lines {
            assert!(line.message.len() <= LIMITS.max_line_bytes + 64);
        }
    }
});
