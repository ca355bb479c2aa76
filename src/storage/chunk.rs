//! Gorilla/XOR chunks in Prometheus's layout: delta-of-delta timestamps and XOR'd values.
//!
//! Layout of a chunk (`encoding = XOR`):
//!
//! ```text
//! u16 BE  sample count
//! varint  first timestamp (zig-zag, byte-sized through the bit stream)
//! 64 bits first value
//! varint  second timestamp − first timestamp (zig-zag)
//! XOR     second value
//! then per sample: delta-of-delta timestamp + XOR value
//! ```
//!
//! Timestamp delta-of-delta buckets (milliseconds, as Prometheus widens Gorilla's):
//! `0` → 1 bit; `10` + 14 bits; `110` + 17 bits; `1110` + 20 bits; `1111` + 64 bits.
//! Regular series whose timestamps were snapped to their grid therefore cost one bit per
//! timestamp. Values: XOR with the previous value; `0` when equal, else `1` and either `0`
//! followed by the meaningful bits inside the previous leading/trailing-zero window, or `1`
//! followed by 5 bits of leading zeros, 6 bits of length and the bits.

use super::encode::{BitReader, BitWriter};
use super::error::{Result, StorageError};
use super::sample::Sample;

/// Encoding id of XOR chunks, written in front of every chunk on disk.
pub const ENCODING_XOR: u8 = 1;

/// Delta-of-delta buckets: (prefix bits, prefix length, payload bits).
const DOD_BUCKETS: [(u64, u32, u32); 3] = [(0b10, 2, 14), (0b110, 3, 17), (0b1110, 4, 20)];

/// An appendable XOR chunk.
#[derive(Debug, Clone)]
pub struct XorAppender {
    bits: BitWriter,
    count: u16,
    t: i64,
    t_delta: i64,
    v: u64,
    leading: u8,
    trailing: u8,
}

impl Default for XorAppender {
    fn default() -> Self {
        Self::new()
    }
}

impl XorAppender {
    /// An empty chunk.
    pub fn new() -> Self {
        XorAppender {
            bits: BitWriter::with_prefix(&[0, 0]),
            count: 0,
            t: 0,
            t_delta: 0,
            v: 0,
            leading: 0xff,
            trailing: 0,
        }
    }

    /// An empty chunk reserving `capacity` bytes (the head sizes a series' next chunk after
    /// its previous one, which avoids most growth slack).
    pub fn with_capacity(capacity: usize) -> Self {
        XorAppender {
            bits: BitWriter::with_prefix_and_capacity(&[0, 0], capacity),
            ..Self::new()
        }
    }

    /// Number of samples in the chunk.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// True when the chunk holds no sample.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Timestamp of the last appended sample (meaningless when empty).
    pub fn last_t(&self) -> i64 {
        self.t
    }

    /// Value of the last appended sample (meaningless when empty).
    pub fn last_v(&self) -> f64 {
        f64::from_bits(self.v)
    }

    /// Interval between the last two samples (0 with fewer than two).
    pub fn last_delta(&self) -> i64 {
        self.t_delta
    }

    /// True when another sample would overflow the 16-bit count.
    pub fn is_full(&self) -> bool {
        self.count == u16::MAX
    }

    /// Appends a sample. The caller keeps timestamps non-decreasing; the codec itself
    /// round-trips any sequence.
    pub fn append(&mut self, t: i64, v: f64) {
        assert!(!self.is_full(), "chunk full");
        let vb = v.to_bits();
        match self.count {
            0 => {
                self.bits.write_varint(t);
                self.bits.write_bits(vb, 64);
            }
            1 => {
                let delta = t.wrapping_sub(self.t);
                self.bits.write_varint(delta);
                self.write_value(vb);
                self.t_delta = delta;
            }
            _ => {
                let delta = t.wrapping_sub(self.t);
                let dod = delta.wrapping_sub(self.t_delta);
                self.write_dod(dod);
                self.write_value(vb);
                self.t_delta = delta;
            }
        }
        self.t = t;
        self.v = vb;
        self.count += 1;
        self.bits.bytes_mut()[..2].copy_from_slice(&self.count.to_be_bytes());
    }

    fn write_dod(&mut self, dod: i64) {
        if dod == 0 {
            self.bits.write_bit(false);
            return;
        }
        for &(prefix, plen, nbits) in &DOD_BUCKETS {
            if fits(dod, nbits) {
                self.bits.write_bits(prefix, plen);
                self.bits.write_bits(dod as u64, nbits);
                return;
            }
        }
        self.bits.write_bits(0b1111, 4);
        self.bits.write_bits(dod as u64, 64);
    }

    fn write_value(&mut self, vb: u64) {
        let x = vb ^ self.v;
        if x == 0 {
            self.bits.write_bit(false);
            return;
        }
        self.bits.write_bit(true);
        let leading = (x.leading_zeros() as u8).min(31);
        let trailing = x.trailing_zeros() as u8;
        if self.leading != 0xff && leading >= self.leading && trailing >= self.trailing {
            self.bits.write_bit(false);
            let sig = 64 - self.leading as u32 - self.trailing as u32;
            self.bits.write_bits(x >> self.trailing, sig);
        } else {
            self.leading = leading;
            self.trailing = trailing;
            self.bits.write_bit(true);
            self.bits.write_bits(leading as u64, 5);
            let sig = 64 - leading as u32 - trailing as u32;
            // 64 meaningful bits do not fit in 6 bits; 0 stands for 64 (never a real length).
            self.bits.write_bits((sig & 63) as u64, 6);
            self.bits.write_bits(x >> trailing, sig);
        }
    }

    /// The encoded bytes (without the encoding id).
    pub fn bytes(&self) -> &[u8] {
        self.bits.bytes()
    }

    /// Seals the chunk, returning its bytes with no spare capacity.
    pub fn into_bytes(mut self) -> Vec<u8> {
        self.bits.shrink_to_fit();
        self.bits.into_bytes()
    }

    /// Approximate heap bytes held by this appender.
    pub fn heap_size(&self) -> usize {
        self.bits.bytes().len()
    }
}

/// True when `v` is representable in the `nbits` bucket (Prometheus's `bitRange`).
#[inline]
fn fits(v: i64, nbits: u32) -> bool {
    -((1i64 << (nbits - 1)) - 1) <= v && v <= 1i64 << (nbits - 1)
}

/// Streams the samples of an XOR chunk.
#[derive(Debug, Clone)]
pub struct XorIter<'a> {
    r: BitReader<'a>,
    total: u16,
    read: u16,
    t: i64,
    t_delta: i64,
    v: u64,
    leading: u32,
    trailing: u32,
    failed: bool,
}

impl<'a> XorIter<'a> {
    /// Starts decoding `bytes` (as produced by [`XorAppender::bytes`]).
    pub fn new(bytes: &'a [u8]) -> Self {
        let (total, failed) = match bytes {
            [a, b, ..] => (u16::from_be_bytes([*a, *b]), false),
            _ => (0, true),
        };
        XorIter {
            r: BitReader::new(bytes, 2),
            total,
            read: 0,
            t: 0,
            t_delta: 0,
            v: 0,
            leading: 0,
            trailing: 0,
            failed,
        }
    }

    /// Number of samples the header announces.
    pub fn total(&self) -> usize {
        self.total as usize
    }

    /// True when decoding stopped because the bytes were malformed.
    pub fn failed(&self) -> bool {
        self.failed
    }

    fn next_inner(&mut self) -> Option<Sample> {
        match self.read {
            0 => {
                self.t = self.r.read_varint()?;
                self.v = self.r.read_bits(64)?;
            }
            1 => {
                self.t_delta = self.r.read_varint()?;
                self.t = self.t.wrapping_add(self.t_delta);
                self.read_value()?;
            }
            _ => {
                let dod = self.read_dod()?;
                self.t_delta = self.t_delta.wrapping_add(dod);
                self.t = self.t.wrapping_add(self.t_delta);
                self.read_value()?;
            }
        }
        Some(Sample::new(self.t, f64::from_bits(self.v)))
    }

    fn read_dod(&mut self) -> Option<i64> {
        let mut prefix_len = 0;
        while prefix_len < 4 && self.r.read_bit()? {
            prefix_len += 1;
        }
        let nbits = match prefix_len {
            0 => return Some(0),
            1 => 14,
            2 => 17,
            3 => 20,
            _ => return self.r.read_bits(64).map(|b| b as i64),
        };
        let raw = self.r.read_bits(nbits)?;
        // Values above 2^(n-1) are negative in n-bit two's complement.
        let v = if raw > 1 << (nbits - 1) {
            raw as i64 - (1i64 << nbits)
        } else {
            raw as i64
        };
        Some(v)
    }

    fn read_value(&mut self) -> Option<()> {
        if !self.r.read_bit()? {
            return Some(());
        }
        if self.r.read_bit()? {
            self.leading = self.r.read_bits(5)? as u32;
            let mut sig = self.r.read_bits(6)? as u32;
            if sig == 0 {
                sig = 64;
            }
            if self.leading + sig > 64 {
                return None;
            }
            self.trailing = 64 - self.leading - sig;
        }
        let sig = 64 - self.leading - self.trailing;
        if sig == 0 {
            return None;
        }
        let bits = self.r.read_bits(sig)?;
        self.v ^= bits << self.trailing;
        Some(())
    }
}

impl Iterator for XorIter<'_> {
    type Item = Sample;

    fn next(&mut self) -> Option<Sample> {
        if self.failed || self.read >= self.total {
            return None;
        }
        match self.next_inner() {
            Some(s) => {
                self.read += 1;
                Some(s)
            }
            None => {
                self.failed = true;
                None
            }
        }
    }
}

/// Decodes a whole XOR chunk, failing on malformed bytes.
pub fn decode_xor(bytes: &[u8]) -> Result<Vec<Sample>> {
    let mut it = XorIter::new(bytes);
    let mut out = Vec::with_capacity(it.total());
    for s in it.by_ref() {
        out.push(s);
    }
    if it.failed() || out.len() != it.total() {
        return Err(StorageError::CorruptChunk(format!(
            "decoded {} of {} samples",
            out.len(),
            it.total()
        )));
    }
    Ok(out)
}

/// Encodes samples into one XOR chunk (at most 65535 samples).
pub fn encode_xor(samples: &[Sample]) -> Vec<u8> {
    let mut a = XorAppender::new();
    for s in samples {
        a.append(s.t, s.v);
    }
    a.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(samples: &[Sample]) {
        let bytes = encode_xor(samples);
        let got = decode_xor(&bytes).expect("decodes");
        assert_eq!(got.len(), samples.len());
        for (a, b) in got.iter().zip(samples) {
            assert!(a.bit_eq(b), "{a:?} != {b:?}");
        }
    }

    fn special_value() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>(),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(0.0),
            Just(-0.0),
            Just(f64::MAX),
            Just(f64::MIN_POSITIVE),
            Just(f64::from_bits(0x7ff0000000000002)), // Prometheus staleness marker
            (0u32..1000).prop_map(|x| x as f64),
        ]
    }

    proptest! {
        #[test]
        fn random_series_round_trip(
            start in any::<i64>(),
            steps in proptest::collection::vec(prop_oneof![
                Just(10_000i64), Just(0i64), -5i64..5, 0i64..100_000, any::<i64>()
            ], 0..300),
            values in proptest::collection::vec(special_value(), 300),
        ) {
            let mut t = start;
            let samples: Vec<Sample> = steps.iter().zip(&values).map(|(d, v)| {
                t = t.wrapping_add(*d);
                Sample::new(t, *v)
            }).collect();
            round_trip(&samples);
        }

        #[test]
        fn counter_with_resets_round_trips(incs in proptest::collection::vec(0.0f64..1e6, 1..500), reset_every in 1usize..100) {
            let mut v = 0.0;
            let samples: Vec<Sample> = incs.iter().enumerate().map(|(i, inc)| {
                v = if i % reset_every == 0 { *inc } else { v + inc };
                Sample::new(1_700_000_000_000 + i as i64 * 10_000, v)
            }).collect();
            round_trip(&samples);
        }

        #[test]
        fn truncated_chunks_error_not_panic(cut in 0usize..200, seed in any::<u64>()) {
            let samples: Vec<Sample> = (0..100).map(|i| Sample::new(i * 15_000 + (seed % 7) as i64 * i, (seed ^ i as u64) as f64)).collect();
            let bytes = encode_xor(&samples);
            let cut = cut.min(bytes.len());
            let _ = decode_xor(&bytes[..cut]);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_xor(&bytes);
        }
    }

    #[test]
    fn adversarial_edges_round_trip() {
        round_trip(&[]);
        round_trip(&[Sample::new(i64::MIN, f64::NAN)]);
        round_trip(&[
            Sample::new(i64::MIN, 1.0),
            Sample::new(i64::MAX, -1.0),
            Sample::new(0, f64::INFINITY),
            Sample::new(0, f64::NEG_INFINITY),
            Sample::new(0, f64::NAN),
            Sample::new(1 << 13, 1e308),
            Sample::new(-(1 << 13), -1e-308),
        ]);
        // Every bucket boundary of the delta-of-delta encoding.
        let mut t = 0i64;
        let mut samples = vec![Sample::new(0, 0.0), Sample::new(0, 0.0)];
        for b in [14u32, 17, 20] {
            for dod in [
                (1i64 << (b - 1)) - 1,
                1 << (b - 1),
                -((1i64 << (b - 1)) - 1),
                (1 << (b - 1)) + 1,
                -(1i64 << (b - 1)),
            ] {
                t += dod;
                samples.push(Sample::new(t, dod as f64));
            }
        }
        round_trip(&samples);
    }

    #[test]
    fn regular_constant_series_costs_about_two_bits_per_sample() {
        let samples: Vec<Sample> = (0..120)
            .map(|i| Sample::new(1_700_000_000_000 + i * 10_000, 42.0))
            .collect();
        let bytes = encode_xor(&samples);
        // 118 samples × (1 bit timestamp + 1 bit value) + header ≈ 30 + 20 bytes.
        assert!(bytes.len() < 60, "{} bytes", bytes.len());
    }

    #[test]
    fn malformed_chunk_is_an_error() {
        let bytes = encode_xor(&[
            Sample::new(1, 1.0),
            Sample::new(2, 3.0),
            Sample::new(3, 9.5),
        ]);
        assert!(decode_xor(&bytes[..bytes.len() - 1]).is_err());
        let mut lying = bytes.clone();
        lying[1] = 200; // header claims more samples than encoded
        assert!(decode_xor(&lying).is_err());
    }
}
