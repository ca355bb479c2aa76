//! `POST /loki/api/v1/push` with `Content-Type: application/x-protobuf`:
//! a snappy-compressed `logproto.PushRequest`. The first byte chooses
//! whether the rest is the body as received (exploring snappy's framing)
//! or the protobuf message, compressed here (exploring the decoder and the
//! label-string parser).
#![no_main]

use libfuzzer_sys::fuzz_target;
use osprey::logs::push::{BodyFormat, PushLimits, decode};

const LIMITS: PushLimits = PushLimits {
    max_decoded_bytes: 1 << 20,
    max_line_bytes: 4096,
    oldest_ns: 0,
    newest_ns: 4_000_000_000_000_000_000,
};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let body = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        match snap::raw::Encoder::new().compress_vec(rest) {
            Ok(b) => b,
            Err(_) => return,
        }
    };
    let _ = decode(&body, BodyFormat::Protobuf, &LIMITS);
});
