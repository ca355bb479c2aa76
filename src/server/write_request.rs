//! Decoding remote-write 1.0 request bodies without copying the labels.
//!
//! prost's derived decoder ([`remote_write::decode_snappy`]) allocates a `String` for every
//! label name and value and a `Vec` per series: about 90 000 allocations for one agent's
//! request of 4 500 series. This decoder reads the same wire format into `&str`s pointing
//! into the decompressed body, with all series' labels and samples back to back in two
//! vectors, so a request costs a handful of allocations. It accepts and refuses exactly the
//! inputs prost's decoder of [`remote_write::WriteRequest`] does (a property test holds it to
//! that), except that it does not keep the metadata, which the storage has no use for.
//!
//! [`remote_write::decode_snappy`]: osprey_collector::ship::remote_write::decode_snappy
//! [`remote_write::WriteRequest`]: osprey_collector::ship::remote_write::WriteRequest

use crate::storage::{LabelsRef, Sample, SeriesSamplesRef};

/// A decoded request: every series' labels and samples, borrowed from the body.
#[derive(Debug, Default)]
pub struct WriteBatch<'a> {
    /// All series' label pairs, back to back, as sent.
    pairs: Vec<(&'a str, &'a str)>,
    /// All series' samples, back to back, as sent.
    samples: Vec<Sample>,
    /// Per series: the end of its labels in `pairs` and of its samples in `samples`.
    ends: Vec<(u32, u32)>,
}

impl<'a> WriteBatch<'a> {
    /// Number of series.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when the request holds no series.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Number of samples of all series.
    pub fn num_samples(&self) -> usize {
        self.samples.len()
    }

    /// The series in request order.
    pub fn series(&self) -> impl Iterator<Item = SeriesSamplesRef<'_>> + '_ {
        let mut start = (0, 0);
        self.ends.iter().map(move |&(l, s)| {
            let (l0, s0) = std::mem::replace(&mut start, (l, s));
            SeriesSamplesRef {
                labels: LabelsRef::new(&self.pairs[l0 as usize..l as usize]),
                samples: &self.samples[s0 as usize..s as usize],
            }
        })
    }

    /// The series as a vector, for [`crate::storage::Storage::append_refs`].
    pub fn to_refs(&self) -> Vec<SeriesSamplesRef<'_>> {
        self.series().collect()
    }
}

/// A body that is not a well-formed protobuf `WriteRequest`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("body is not a protobuf WriteRequest: {0}")]
pub struct DecodeError(String);

fn err(what: impl Into<String>) -> DecodeError {
    DecodeError(what.into())
}

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
const FIXED32: u8 = 5;
/// prost's limit on nested messages and groups.
const RECURSION_LIMIT: u32 = 100;

/// A cursor over protobuf bytes.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for (i, &b) in self.buf.iter().take(10).enumerate() {
            // The tenth byte may only hold the top bit of a u64.
            if i == 9 && b > 1 {
                break;
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                self.buf = &self.buf[i + 1..];
                return Ok(value);
            }
        }
        Err(err(
            if self.buf.len() < 10 && self.buf.iter().all(|&b| b >= 0x80) {
                "buffer underflow"
            } else {
                "invalid varint"
            },
        ))
    }

    /// A field key: (field number, wire type).
    fn key(&mut self) -> Result<(u32, u8), DecodeError> {
        let key = self.varint()?;
        let key = u32::try_from(key).map_err(|_| err(format!("invalid key value: {key}")))?;
        let wire = (key & 7) as u8;
        if wire > FIXED32 {
            return Err(err(format!("invalid wire type value: {wire}")));
        }
        let tag = key >> 3;
        if tag == 0 {
            return Err(err("invalid tag value: 0"));
        }
        Ok((tag, wire))
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.buf.len() {
            return Err(err("buffer underflow"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn length_delimited(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.varint()?;
        self.bytes(usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn fixed64(&mut self) -> Result<u64, DecodeError> {
        let b = self.bytes(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    /// Skips a field of an unknown number (groups included, as prost does, with prost's
    /// nesting limit: `depth` is what is left of it).
    fn skip(&mut self, tag: u32, wire: u8, depth: u32) -> Result<(), DecodeError> {
        if depth == 0 {
            return Err(err("recursion limit reached"));
        }
        match wire {
            VARINT => {
                self.varint()?;
            }
            FIXED64 => {
                self.bytes(8)?;
            }
            FIXED32 => {
                self.bytes(4)?;
            }
            LEN => {
                self.length_delimited()?;
            }
            START_GROUP => loop {
                if self.buf.is_empty() {
                    return Err(err("buffer underflow"));
                }
                let (inner, inner_wire) = self.key()?;
                if inner_wire == END_GROUP {
                    if inner != tag {
                        return Err(err("unexpected end group tag"));
                    }
                    break;
                }
                self.skip(inner, inner_wire, depth - 1)?;
            },
            _ => return Err(err("unexpected end group tag")),
        }
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

fn expect_wire(wire: u8, expected: u8) -> Result<(), DecodeError> {
    if wire == expected {
        Ok(())
    } else {
        Err(err(format!(
            "invalid wire type: {wire} (expected {expected})"
        )))
    }
}

fn utf8(bytes: &[u8]) -> Result<&str, DecodeError> {
    std::str::from_utf8(bytes).map_err(|_| err("invalid string value: data is not UTF-8 encoded"))
}

/// Decodes the protobuf encoding of a `WriteRequest` (already decompressed).
pub fn decode(protobuf: &[u8]) -> Result<WriteBatch<'_>, DecodeError> {
    // A label takes ~40 bytes on the wire in agents' requests, a series ~10 labels: sized
    // so that the vectors rarely grow while decoding.
    let mut batch = WriteBatch {
        pairs: Vec::with_capacity((protobuf.len() / 40).min(1 << 20)),
        samples: Vec::with_capacity((protobuf.len() / 400).min(1 << 17)),
        ends: Vec::with_capacity((protobuf.len() / 400).min(1 << 17)),
    };
    let mut r = Reader { buf: protobuf };
    while !r.is_empty() {
        let (tag, wire) = r.key()?;
        match tag {
            1 => {
                expect_wire(wire, LEN)?;
                let series = r.length_delimited()?;
                decode_series(series, &mut batch)
                    .map_err(|e| err(format!("WriteRequest.timeseries: {}", e.0)))?;
            }
            3 => {
                expect_wire(wire, LEN)?;
                let metadata = r.length_delimited()?;
                <osprey_collector::ship::remote_write::MetricMetadata as prost::Message>::decode(
                    metadata,
                )
                .map_err(|e| err(format!("WriteRequest.metadata: {e}")))?;
            }
            _ => r.skip(tag, wire, RECURSION_LIMIT)?,
        }
    }
    Ok(batch)
}

fn decode_series<'a>(bytes: &'a [u8], batch: &mut WriteBatch<'a>) -> Result<(), DecodeError> {
    let mut r = Reader { buf: bytes };
    while !r.is_empty() {
        let (tag, wire) = r.key()?;
        match tag {
            1 => {
                expect_wire(wire, LEN)?;
                let label = r.length_delimited()?;
                let pair =
                    decode_label(label).map_err(|e| err(format!("TimeSeries.labels: {}", e.0)))?;
                batch.pairs.push(pair);
            }
            2 => {
                expect_wire(wire, LEN)?;
                let sample = r.length_delimited()?;
                let s = decode_sample(sample)
                    .map_err(|e| err(format!("TimeSeries.samples: {}", e.0)))?;
                batch.samples.push(s);
            }
            _ => r.skip(tag, wire, RECURSION_LIMIT - 1)?,
        }
    }
    let end = |n: usize| u32::try_from(n).map_err(|_| err("too many labels or samples"));
    batch
        .ends
        .push((end(batch.pairs.len())?, end(batch.samples.len())?));
    Ok(())
}

fn decode_label(bytes: &[u8]) -> Result<(&str, &str), DecodeError> {
    let mut r = Reader { buf: bytes };
    let (mut name, mut value) = ("", "");
    while !r.is_empty() {
        let (tag, wire) = r.key()?;
        match tag {
            1 => {
                expect_wire(wire, LEN)?;
                name =
                    utf8(r.length_delimited()?).map_err(|e| err(format!("Label.name: {}", e.0)))?;
            }
            2 => {
                expect_wire(wire, LEN)?;
                value = utf8(r.length_delimited()?)
                    .map_err(|e| err(format!("Label.value: {}", e.0)))?;
            }
            _ => r.skip(tag, wire, RECURSION_LIMIT - 2)?,
        }
    }
    Ok((name, value))
}

fn decode_sample(bytes: &[u8]) -> Result<Sample, DecodeError> {
    let mut r = Reader { buf: bytes };
    let (mut t, mut v) = (0i64, 0f64);
    while !r.is_empty() {
        let (tag, wire) = r.key()?;
        match tag {
            1 => {
                expect_wire(wire, FIXED64)?;
                v = f64::from_bits(r.fixed64()?);
            }
            2 => {
                expect_wire(wire, VARINT)?;
                t = r.varint()? as i64;
            }
            _ => r.skip(tag, wire, RECURSION_LIMIT - 2)?,
        }
    }
    Ok(Sample::new(t, v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use osprey_collector::ship::remote_write::{
        self, Label, MetricMetadata, Sample as WireSample, TimeSeries, WriteRequest,
    };
    use proptest::prelude::*;
    use prost::Message;

    fn request() -> WriteRequest {
        WriteRequest {
            timeseries: vec![
                TimeSeries::new(
                    "container_cpu_usage_seconds_total",
                    [
                        ("id", "/docker/abc"),
                        ("cpu", "total"),
                        ("ünïcode", "välue"),
                    ],
                    vec![
                        WireSample::new(1_700_000_000_000, 1.5),
                        WireSample::new(-5, f64::from_bits(remote_write::STALE_NAN_BITS)),
                    ],
                ),
                TimeSeries::default(),
                TimeSeries::new("up", [("a", "")], vec![WireSample::new(i64::MAX, -0.0)]),
            ],
            metadata: vec![MetricMetadata {
                r#type: 1,
                metric_family_name: "x".into(),
                help: "h".into(),
                unit: "u".into(),
            }],
        }
    }

    /// Series as (label pairs, (timestamp, value bits)), to compare decoders.
    type Decoded = Result<Vec<(Vec<(String, String)>, Vec<(i64, u64)>)>, ()>;

    /// What prost's decoder reads, in the decoder's shape.
    fn via_prost(bytes: &[u8]) -> Decoded {
        let req = WriteRequest::decode(bytes).map_err(|_| ())?;
        Ok(req
            .timeseries
            .into_iter()
            .map(|s| {
                (
                    s.labels.into_iter().map(|l| (l.name, l.value)).collect(),
                    s.samples
                        .into_iter()
                        .map(|x| (x.timestamp, x.value.to_bits()))
                        .collect(),
                )
            })
            .collect())
    }

    fn via_decoder(bytes: &[u8]) -> Decoded {
        let batch = decode(bytes).map_err(|_| ())?;
        Ok(batch
            .series()
            .map(|s| {
                (
                    s.labels
                        .iter()
                        .map(|(n, v)| (n.to_string(), v.to_string()))
                        .collect(),
                    s.samples.iter().map(|x| (x.t, x.v.to_bits())).collect(),
                )
            })
            .collect())
    }

    #[test]
    fn reads_what_prost_writes() {
        let bytes = request().encode_to_vec();
        let got = via_decoder(&bytes).unwrap();
        assert_eq!(got, via_prost(&bytes).unwrap());
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].0[3], ("ünïcode".to_string(), "välue".to_string()));
        assert_eq!(got[0].1[1], (-5, remote_write::STALE_NAN_BITS));
        assert!(got[1].0.is_empty() && got[1].1.is_empty());
        let batch = decode(&bytes).unwrap();
        assert_eq!((batch.len(), batch.num_samples()), (3, 3));
    }

    #[test]
    fn unknown_fields_and_groups_are_skipped_and_bad_ones_refused() {
        let mut bytes = request().encode_to_vec();
        // Field 15 varint, field 14 fixed32, field 13 group holding a varint.
        bytes.extend_from_slice(&[0x78, 0x96, 0x01, 0x75, 1, 2, 3, 4, 0x6b, 0x08, 0x01, 0x6c]);
        assert_eq!(via_decoder(&bytes), via_prost(&bytes));
        assert!(via_decoder(&bytes).is_ok());
        // Field 1 with the wrong wire type; a truncated label; invalid UTF-8.
        for bad in [
            &[0x08, 0x01][..],
            &[0x0a, 0x05, 0x0a, 0x03, 0x0a, 0x09, b'a'],
            &[0x0a, 0x04, 0x0a, 0x02, 0x0a, 0x00, 0x0a, 0x00][..0],
            &[0x0a, 0x06, 0x0a, 0x04, 0x0a, 0x02, 0xff, 0xfe],
        ] {
            assert_eq!(via_decoder(bad).is_ok(), via_prost(bad).is_ok(), "{bad:?}");
        }
        let e = decode(&[0x0a, 0x06, 0x0a, 0x04, 0x0a, 0x02, 0xff, 0xfe]).unwrap_err();
        assert!(e.to_string().contains("UTF-8"), "{e}");
        // Nested groups up to prost's recursion limit and past it.
        for depth in [99, 100, 101, 5000] {
            let mut nested = vec![0x6b; depth];
            nested.extend(std::iter::repeat_n(0x6c, depth));
            assert_eq!(
                via_decoder(&nested).is_ok(),
                via_prost(&nested).is_ok(),
                "depth {depth}"
            );
        }
    }

    #[test]
    fn snappy_limits_apply_before_decoding() {
        use remote_write::{DecodeError, decompress};
        let body = remote_write::encode_snappy(&request()).unwrap();
        assert!(matches!(
            decompress(&body, 8),
            Err(DecodeError::TooLarge { limit: 8, .. })
        ));
        let protobuf = decompress(&body, 1 << 20).unwrap();
        assert_eq!(decode(&protobuf).unwrap().len(), 3);
        assert!(decompress(b"definitely not snappy", 1 << 20).is_err());
    }

    fn arb_request() -> impl Strategy<Value = WriteRequest> {
        let label = ("[a-z_]{0,4}", "[a-zé]{0,3}").prop_map(|(n, v)| Label::new(n, v));
        let sample = (any::<i64>(), any::<u64>())
            .prop_map(|(t, bits)| WireSample::new(t, f64::from_bits(bits)));
        let series = (
            proptest::collection::vec(label, 0..4),
            proptest::collection::vec(sample, 0..3),
        )
            .prop_map(|(labels, samples)| TimeSeries { labels, samples });
        proptest::collection::vec(series, 0..4).prop_map(|timeseries| WriteRequest {
            timeseries,
            metadata: vec![],
        })
    }

    proptest! {
        #[test]
        fn agrees_with_prost_on_valid_requests(req in arb_request()) {
            let bytes = req.encode_to_vec();
            prop_assert_eq!(via_decoder(&bytes), via_prost(&bytes));
        }

        #[test]
        fn agrees_with_prost_on_damaged_requests(
            req in arb_request(),
            cut in any::<prop::sample::Index>(),
            flip in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut bytes = req.encode_to_vec();
            if !bytes.is_empty() {
                let i = flip.index(bytes.len());
                bytes[i] = byte;
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            prop_assert_eq!(via_decoder(&bytes).is_ok(), via_prost(&bytes).is_ok());
            if let (Ok(a), Ok(b)) = (via_decoder(&bytes), via_prost(&bytes)) {
                prop_assert_eq!(a, b);
            }
        }

        #[test]
        fn agrees_with_prost_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(via_decoder(&bytes).is_ok(), via_prost(&bytes).is_ok());
        }
    }
}
