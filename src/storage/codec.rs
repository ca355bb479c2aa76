//! Chunk encodings and the choice between them.
//!
//! * [`ENCODING_XOR`]: Gorilla/XOR (see [`super::chunk`]); appendable, used by the head.
//! * [`ENCODING_PCO`]: a sealed-only encoding with `pco` (delta + binning + ANS): timestamps
//!   as i64 and values as f64 in two pco streams. pco detects integer and decimal structure
//!   in floats (page-sized gauges, nanosecond counters), which XOR cannot exploit.
//!
//! When a block is written, each series' samples are encoded both ways and the smaller
//! result is kept, so a sealed chunk is never larger than its XOR form.
//!
//! PCO chunk layout: `[uvarint count][uvarint timestamp-stream length][pco i64
//! timestamps][pco f64 values]`.

use super::chunk::{ENCODING_XOR, decode_xor, encode_xor};
use super::encode::{ByteReader, put_uvarint};
use super::error::{Result, StorageError};
use super::sample::Sample;

/// Encoding id of pco chunks.
pub const ENCODING_PCO: u8 = 2;

/// Samples per XOR chunk at most (its count is 16 bits).
const XOR_MAX: usize = u16::MAX as usize;

/// Encodes samples with pco.
pub fn encode_pco(samples: &[Sample]) -> Result<Vec<u8>> {
    let ts: Vec<i64> = samples.iter().map(|s| s.t).collect();
    let vs: Vec<f64> = samples.iter().map(|s| s.v).collect();
    let cfg = pco::ChunkConfig::default();
    let err = |e: pco::errors::PcoError| StorageError::CorruptChunk(format!("pco encode: {e}"));
    let tb = pco::standalone::simple_compress(&ts, &cfg).map_err(err)?;
    let vb = pco::standalone::simple_compress(&vs, &cfg).map_err(err)?;
    let mut out = Vec::with_capacity(tb.len() + vb.len() + 10);
    put_uvarint(&mut out, samples.len() as u64);
    put_uvarint(&mut out, tb.len() as u64);
    out.extend_from_slice(&tb);
    out.extend_from_slice(&vb);
    Ok(out)
}

/// Decodes a pco chunk.
pub fn decode_pco(bytes: &[u8]) -> Result<Vec<Sample>> {
    let bad = |why: String| StorageError::CorruptChunk(format!("pco chunk: {why}"));
    let mut r = ByteReader::new(bytes);
    let n = r.uvarint().ok_or_else(|| bad("count".into()))? as usize;
    let tlen = r.uvarint().ok_or_else(|| bad("length".into()))? as usize;
    let tb = r.bytes(tlen).ok_or_else(|| bad("truncated".into()))?;
    let vb = &bytes[r.position()..];
    let ts: Vec<i64> = pco::standalone::simple_decompress(tb).map_err(|e| bad(e.to_string()))?;
    let vs: Vec<f64> = pco::standalone::simple_decompress(vb).map_err(|e| bad(e.to_string()))?;
    if ts.len() != n || vs.len() != n {
        return Err(bad(format!(
            "expected {n} samples, got {} / {}",
            ts.len(),
            vs.len()
        )));
    }
    Ok(ts
        .into_iter()
        .zip(vs)
        .map(|(t, v)| Sample::new(t, v))
        .collect())
}

/// Decodes a chunk of any encoding.
pub fn decode(encoding: u8, bytes: &[u8]) -> Result<Vec<Sample>> {
    match encoding {
        ENCODING_XOR => decode_xor(bytes),
        ENCODING_PCO => decode_pco(bytes),
        other => Err(StorageError::CorruptChunk(format!(
            "unknown encoding {other}"
        ))),
    }
}

/// Number of samples in a chunk, read from its header.
pub fn sample_count(encoding: u8, bytes: &[u8]) -> u64 {
    match encoding {
        ENCODING_XOR => bytes
            .get(..2)
            .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]) as u64),
        ENCODING_PCO => ByteReader::new(bytes).uvarint().unwrap_or(0),
        _ => 0,
    }
}

/// Splits sorted samples into sealed chunks of at most `max_per_chunk` samples, each in
/// whichever encoding is smaller. Returns `(encoding, min_t, max_t, bytes)` per chunk.
pub fn encode_sealed(samples: &[Sample], max_per_chunk: usize) -> Vec<(u8, i64, i64, Vec<u8>)> {
    samples
        .chunks(max_per_chunk.max(1))
        .map(|part| {
            let (min_t, max_t) = (part[0].t, part[part.len() - 1].t);
            let pco = encode_pco(part).ok();
            let xor = (part.len() <= XOR_MAX).then(|| encode_xor(part));
            let (enc, bytes) = match (xor, pco) {
                (Some(x), Some(p)) if p.len() < x.len() => (ENCODING_PCO, p),
                (Some(x), _) => (ENCODING_XOR, x),
                (None, Some(p)) => (ENCODING_PCO, p),
                (None, None) => unreachable!("parts above the XOR limit always pco-encode"),
            };
            (enc, min_t, max_t, bytes)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn pco_round_trips_bit_exactly(
            steps in proptest::collection::vec(prop_oneof![Just(10_000i64), Just(0i64), -3i64..3, 0i64..1_000_000], 1..400),
            vals in proptest::collection::vec(prop_oneof![
                any::<f64>(), Just(f64::NAN), Just(f64::INFINITY), Just(f64::NEG_INFINITY), Just(-0.0),
                Just(f64::from_bits(0x7ff0000000000002)), (0u32..5000).prop_map(|x| x as f64 * 4096.0),
                (0u64..1u64 << 40).prop_map(|x| x as f64 / 1e9),
            ], 400),
        ) {
            let mut t = 1_700_000_000_000i64;
            let samples: Vec<Sample> = steps.iter().zip(&vals).map(|(d, v)| { t += d; Sample::new(t, *v) }).collect();
            for (enc, _, _, bytes) in encode_sealed(&samples, 128) {
                let got = decode(enc, &bytes).unwrap();
                prop_assert!(!got.is_empty());
                prop_assert_eq!(sample_count(enc, &bytes), got.len() as u64);
            }
            let all: Vec<Sample> = encode_sealed(&samples, 128).into_iter().flat_map(|(e, _, _, b)| decode(e, &b).unwrap()).collect();
            prop_assert_eq!(all.len(), samples.len());
            for (a, b) in all.iter().zip(&samples) {
                prop_assert!(a.bit_eq(b), "{:?} != {:?}", a, b);
            }
            let p = encode_pco(&samples).unwrap();
            let back = decode_pco(&p).unwrap();
            prop_assert!(back.iter().zip(&samples).all(|(a, b)| a.bit_eq(b)));
        }

        #[test]
        fn garbage_pco_is_an_error_not_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_pco(&bytes);
        }
    }

    #[test]
    fn pco_beats_xor_on_page_sized_gauges() {
        let mut v = 1u64 << 30;
        let samples: Vec<Sample> = (0..720)
            .map(|i| {
                v = v
                    .wrapping_add(((i * 7919) % 63) as u64 * 4096)
                    .wrapping_sub(31 * 4096);
                Sample::new(1_700_000_000_000 + i * 10_000, v as f64)
            })
            .collect();
        let xor = encode_xor(&samples).len();
        let pco = encode_pco(&samples).unwrap().len();
        assert!(pco < xor, "pco {pco} xor {xor}");
        assert_eq!(encode_sealed(&samples, 1000)[0].0, ENCODING_PCO);
    }
}
