//! Bit- and byte-level primitives shared by the codecs and the file formats: a big-endian
//! bit stream and LEB128 varints.

/// Appends bits, most significant first, to a byte vector.
#[derive(Debug, Clone, Default)]
pub struct BitWriter {
    buf: Vec<u8>,
    /// Free bits left in the last byte of `buf` (0 means a new byte is needed).
    free: u32,
}

impl BitWriter {
    /// Starts a stream after `prefix` bytes (used for a chunk's fixed header).
    pub fn with_prefix(prefix: &[u8]) -> Self {
        BitWriter {
            buf: prefix.to_vec(),
            free: 0,
        }
    }

    /// Like [`BitWriter::with_prefix`], reserving `capacity` bytes up front.
    pub fn with_prefix_and_capacity(prefix: &[u8], capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity.max(prefix.len()));
        buf.extend_from_slice(prefix);
        BitWriter { buf, free: 0 }
    }

    /// Writes the low `n` bits of `value` (n ≤ 64).
    #[inline]
    pub fn write_bits(&mut self, value: u64, mut n: u32) {
        debug_assert!(n <= 64);
        while n > 0 {
            if self.free == 0 {
                self.buf.push(0);
                self.free = 8;
            }
            let take = n.min(self.free);
            let shift = n - take;
            let bits = ((value >> shift) & ((1u64 << take) - 1)) as u8;
            let last = self.buf.last_mut().expect("pushed above");
            *last |= bits << (self.free - take);
            self.free -= take;
            n -= take;
        }
    }

    /// Writes one bit.
    #[inline]
    pub fn write_bit(&mut self, bit: bool) {
        self.write_bits(bit as u64, 1);
    }

    /// Writes a byte-sized unsigned LEB128 varint through the bit stream.
    pub fn write_uvarint(&mut self, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.write_bits(byte as u64, 8);
                return;
            }
            self.write_bits((byte | 0x80) as u64, 8);
        }
    }

    /// Writes a zig-zag signed varint through the bit stream.
    pub fn write_varint(&mut self, v: i64) {
        self.write_uvarint(zigzag(v));
    }

    /// The bytes written so far (the last byte may be partly used).
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Mutable access to the bytes, for patching a fixed header.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// Releases spare capacity (used when a chunk is sealed).
    pub fn shrink_to_fit(&mut self) {
        self.buf.shrink_to_fit();
    }

    /// Consumes the writer and returns the bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads bits, most significant first, from a byte slice.
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    data: &'a [u8],
    /// Position in bits from the start of `data`.
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// Reads `data` starting at byte `start`.
    pub fn new(data: &'a [u8], start: usize) -> Self {
        BitReader {
            data,
            pos: start * 8,
        }
    }

    /// Reads `n` bits (n ≤ 64); `None` when the stream is exhausted.
    #[inline]
    pub fn read_bits(&mut self, mut n: u32) -> Option<u64> {
        if self.pos + n as usize > self.data.len() * 8 {
            return None;
        }
        // Fast path: the bits lie in the 8 bytes from the current one; one
        // big-endian load and two shifts instead of a loop per byte (this
        // is most of the time of decoding a chunk).
        let byte = self.pos / 8;
        let used = (self.pos % 8) as u32;
        if n > 0
            && n + used <= 64
            && let Some(word) = self.data.get(byte..byte + 8)
        {
            let word = u64::from_be_bytes(word.try_into().expect("8 bytes"));
            self.pos += n as usize;
            return Some((word << used) >> (64 - n));
        }
        let mut out: u64 = 0;
        while n > 0 {
            let byte = self.data[self.pos / 8];
            let used = (self.pos % 8) as u32;
            let avail = 8 - used;
            let take = n.min(avail);
            let bits = (byte >> (avail - take)) & (((1u16 << take) - 1) as u8);
            out = (out << take) | bits as u64;
            self.pos += take as usize;
            n -= take;
        }
        Some(out)
    }

    /// Reads one bit.
    #[inline]
    pub fn read_bit(&mut self) -> Option<bool> {
        let byte = *self.data.get(self.pos / 8)?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(bit == 1)
    }

    /// Reads a varint written by [`BitWriter::write_uvarint`].
    pub fn read_uvarint(&mut self) -> Option<u64> {
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.read_bits(8)? as u8;
            out |= ((byte & 0x7f) as u64) << shift;
            if byte & 0x80 == 0 {
                return Some(out);
            }
        }
        None
    }

    /// Reads a varint written by [`BitWriter::write_varint`].
    pub fn read_varint(&mut self) -> Option<i64> {
        self.read_uvarint().map(unzigzag)
    }
}

/// Maps signed to unsigned so that small magnitudes get short varints.
#[inline]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
#[inline]
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Appends an unsigned LEB128 varint to a byte buffer.
pub fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Appends a zig-zag signed varint to a byte buffer.
pub fn put_varint(buf: &mut Vec<u8>, v: i64) {
    put_uvarint(buf, zigzag(v));
}

/// Appends a length-prefixed UTF-8 string.
pub fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_uvarint(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

/// A cursor over a byte slice for decoding the formats written with the `put_*` helpers.
/// Every read returns `None` instead of panicking on truncated or malformed input.
#[derive(Debug, Clone)]
pub struct ByteReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> ByteReader<'a> {
    /// Starts reading at the beginning of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        ByteReader { data, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// True when everything was consumed.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// Reads an unsigned varint.
    pub fn uvarint(&mut self) -> Option<u64> {
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.data.get(self.pos)?;
            self.pos += 1;
            out |= ((byte & 0x7f) as u64) << shift;
            if byte & 0x80 == 0 {
                return Some(out);
            }
        }
        None
    }

    /// Reads a zig-zag signed varint.
    pub fn varint(&mut self) -> Option<i64> {
        self.uvarint().map(unzigzag)
    }

    /// Reads `n` raw bytes.
    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    /// Reads a little-endian u64.
    pub fn u64_le(&mut self) -> Option<u64> {
        self.bytes(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    /// Reads a length-prefixed UTF-8 string.
    pub fn str(&mut self) -> Option<&'a str> {
        let n = usize::try_from(self.uvarint()?).ok()?;
        std::str::from_utf8(self.bytes(n)?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn bits_round_trip(items in proptest::collection::vec((any::<u64>(), 1u32..=64), 0..200)) {
            let mut w = BitWriter::default();
            for &(v, n) in &items {
                w.write_bits(v, n);
            }
            let bytes = w.into_bytes();
            let mut r = BitReader::new(&bytes, 0);
            for &(v, n) in &items {
                let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
                prop_assert_eq!(r.read_bits(n), Some(v & mask));
            }
        }

        #[test]
        fn varints_round_trip(vals in proptest::collection::vec(any::<i64>(), 0..100)) {
            let mut buf = Vec::new();
            let mut w = BitWriter::default();
            for &v in &vals {
                put_varint(&mut buf, v);
                w.write_varint(v);
            }
            let mut r = ByteReader::new(&buf);
            let bits = w.into_bytes();
            let mut br = BitReader::new(&bits, 0);
            for &v in &vals {
                prop_assert_eq!(r.varint(), Some(v));
                prop_assert_eq!(br.read_varint(), Some(v));
            }
            prop_assert!(r.is_empty());
        }
    }

    #[test]
    fn reader_reports_truncation_instead_of_panicking() {
        let mut r = ByteReader::new(&[0x80, 0x80]);
        assert_eq!(r.uvarint(), None);
        let mut b = BitReader::new(&[0xff], 0);
        assert_eq!(b.read_bits(9), None);
        assert_eq!(b.read_bits(8), Some(0xff));
    }
}
