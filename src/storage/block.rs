//! Immutable blocks on disk: one directory per time range holding `chunks`, `index` and
//! `meta.json`.
//!
//! * `chunks`: magic `OSPCHK1\n`, then per chunk `[u8 encoding][uvarint length][u32 LE
//!   CRC32][bytes]`.
//! * `index`: chunk lists, symbols, series and postings tables (format 2, see
//!   [`super::block_index`]), read through a memory map.
//! * `meta.json`: [`BlockMeta`], written last; a directory without it is an unfinished
//!   write and is deleted on open.
//!
//! An open block keeps its metadata, the mapped index and the open `chunks` file: no
//! per-series state is on the heap. Chunks are read with positioned reads.
//! The `column` of a chunk is 0 for raw samples; rollup blocks store one column per
//! aggregate (see `rollup.rs`).

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::block_index::{self, BlockIndex, INDEX_MAGIC};
use super::codec;
use super::encode::{ByteReader, put_uvarint, put_varint};
use super::error::{Result, StorageError};
use super::index::SeriesRef;
use super::labels::Labels;
use super::matcher::Matcher;
use super::sample::Sample;

const CHUNKS_MAGIC: &[u8; 8] = b"OSPCHK1\n";

/// Contents of `meta.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockMeta {
    /// Format version: 2 (format 1 had the index tables loaded into memory; such blocks
    /// are migrated when opened).
    pub version: u32,
    /// Start of the block's range (inclusive, aligned).
    pub min_t: i64,
    /// End of the block's range (exclusive).
    pub max_t: i64,
    /// 0 for raw samples, else the rollup bucket width in milliseconds.
    pub resolution_ms: i64,
    /// Series in the block.
    pub num_series: u64,
    /// Samples (raw) or buckets (rollup) in the block.
    pub num_samples: u64,
    /// Chunks in the block.
    pub num_chunks: u64,
    /// How many times the data was compacted (0 = cut from the head).
    pub level: u32,
    /// Directory names of the blocks this one replaced (compaction); deleted on open if
    /// still present.
    pub sources: Vec<String>,
}

impl BlockMeta {
    /// The directory name of a block with this range.
    pub fn dir_name(&self) -> String {
        format!("{}_{}", self.min_t, self.max_t)
    }
}

/// Where a chunk lives in a block's `chunks` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRef {
    /// 0 for raw samples; the aggregate for rollups.
    pub column: u8,
    /// First timestamp in the chunk.
    pub min_t: i64,
    /// Last timestamp in the chunk.
    pub max_t: i64,
    /// Byte offset of the chunk frame.
    pub offset: u64,
    /// Length of the frame.
    pub len: u32,
}

/// A chunk to write: encoding, column, time range and encoded bytes.
#[derive(Debug, Clone)]
pub struct ChunkData {
    /// Chunk encoding id (see [`super::codec`]).
    pub encoding: u8,
    /// 0 for raw samples; the aggregate for rollups.
    pub column: u8,
    /// First timestamp.
    pub min_t: i64,
    /// Last timestamp.
    pub max_t: i64,
    /// Encoded bytes.
    pub bytes: Vec<u8>,
}

impl ChunkData {
    /// Encodes sorted samples of one column into sealed chunks (smaller of XOR and pco).
    pub fn seal(column: u8, samples: &[Sample]) -> Vec<ChunkData> {
        codec::encode_sealed(samples, SEALED_CHUNK_SAMPLES)
            .into_iter()
            .map(|(encoding, min_t, max_t, bytes)| ChunkData {
                encoding,
                column,
                min_t,
                max_t,
                bytes,
            })
            .collect()
    }
}

/// Samples per sealed chunk at most (about 3 h at a 10 s interval). Chunks are decoded
/// whole, so this bounds the work of a short query on a long compacted block; measured on the
/// benchmark data, 8192 was 10% smaller on disk but 1.6x slower for 1 h queries.
pub const SEALED_CHUNK_SAMPLES: usize = 1024;

/// Writes a block directory under `parent` and returns its final path. `series` should be
/// sorted by labels (the index's series table is sorted either way; sorted input keeps the
/// chunks file in the same order); chunks of a series sorted by column then time.
pub fn write_block(
    parent: &Path,
    mut meta: BlockMeta,
    series: impl IntoIterator<Item = (Labels, Vec<ChunkData>)>,
) -> Result<PathBuf> {
    fs::create_dir_all(parent).map_err(|e| StorageError::io(parent, e))?;
    let final_dir = parent.join(meta.dir_name());
    let tmp_dir = parent.join(format!("{}.tmp", meta.dir_name()));
    if tmp_dir.exists() {
        fs::remove_dir_all(&tmp_dir).map_err(|e| StorageError::io(&tmp_dir, e))?;
    }
    fs::create_dir_all(&tmp_dir).map_err(|e| StorageError::io(&tmp_dir, e))?;
    let chunks_path = tmp_dir.join("chunks");
    let cf = File::create(&chunks_path).map_err(|e| StorageError::io(&chunks_path, e))?;
    let mut cw = BufWriter::with_capacity(1 << 20, cf);
    let io_c = |e| StorageError::io(&chunks_path, e);
    cw.write_all(CHUNKS_MAGIC).map_err(io_c)?;
    let mut coff = CHUNKS_MAGIC.len() as u64;

    // Per series: labels, chunk-list offset and length.
    let mut table: Vec<(Labels, u64, u64)> = Vec::new();
    let mut index = INDEX_MAGIC.to_vec();
    let (mut nsamples, mut nchunks) = (0u64, 0u64);
    let mut frame = Vec::new();
    for (labels, chunks) in series {
        if chunks.is_empty() {
            continue;
        }
        let list_start = index.len();
        put_uvarint(&mut index, chunks.len() as u64);
        for c in &chunks {
            frame.clear();
            frame.push(c.encoding);
            put_uvarint(&mut frame, c.bytes.len() as u64);
            frame.extend_from_slice(&crc32fast::hash(&c.bytes).to_le_bytes());
            frame.extend_from_slice(&c.bytes);
            cw.write_all(&frame).map_err(io_c)?;
            index.push(c.column);
            put_varint(&mut index, c.min_t);
            put_uvarint(&mut index, (c.max_t - c.min_t) as u64);
            put_uvarint(&mut index, coff);
            put_uvarint(&mut index, frame.len() as u64);
            coff += frame.len() as u64;
            if c.column == 0 {
                nsamples += codec::sample_count(c.encoding, &c.bytes);
            }
            nchunks += 1;
        }
        let crc = crc32fast::hash(&index[list_start..]);
        index.extend_from_slice(&crc.to_le_bytes());
        table.push((labels, list_start as u64, (index.len() - list_start) as u64));
    }
    // The index's series table must be sorted by labels (lookups binary-search it); the
    // entries carry their chunk lists' offsets, so sorting here is safe whatever the order
    // the caller wrote them in (callers pass sorted series: this is then a linear check).
    table.sort_by(|a, b| a.0.cmp(&b.0));
    block_index::append_tables(&mut index, &table)?;

    let cf = cw
        .into_inner()
        .map_err(|e| StorageError::io(&chunks_path, e.into_error()))?;
    cf.sync_all().map_err(io_c)?;
    let index_path = tmp_dir.join("index");
    write_synced(&index_path, &index)?;
    meta.version = 2;
    meta.num_series = table.len() as u64;
    if meta.resolution_ms == 0 {
        meta.num_samples = nsamples;
    }
    meta.num_chunks = nchunks;
    let meta_path = tmp_dir.join("meta.json");
    let json = serde_json::to_vec_pretty(&meta).expect("meta serializes");
    write_synced(&meta_path, &json)?;
    sync_dir(&tmp_dir)?;
    if final_dir.exists() {
        // A rewrite of the same range (e.g. rollups rebuilt after an interrupted compaction).
        fs::remove_dir_all(&final_dir).map_err(|e| StorageError::io(&final_dir, e))?;
    }
    fs::rename(&tmp_dir, &final_dir).map_err(|e| StorageError::io(&final_dir, e))?;
    sync_dir(parent)?;
    Ok(final_dir)
}

fn write_synced(path: &Path, data: &[u8]) -> Result<()> {
    let mut f = File::create(path).map_err(|e| StorageError::io(path, e))?;
    f.write_all(data)
        .and_then(|_| f.sync_all())
        .map_err(|e| StorageError::io(path, e))
}

/// fsyncs a directory so that renames inside it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io(dir, e))
}

/// An open, immutable block.
#[derive(Debug)]
pub struct Block {
    dir: PathBuf,
    meta: BlockMeta,
    index: BlockIndex,
    chunks_file: File,
    size_bytes: u64,
}

impl Block {
    /// Opens a block directory, verifying the index checksum. A format-1 index is
    /// rewritten as format 2 first (atomically; see [`block_index::migrate_v1`]).
    pub fn open(dir: &Path) -> Result<Block> {
        let meta_path = dir.join("meta.json");
        let mut meta: BlockMeta = serde_json::from_slice(
            &fs::read(&meta_path).map_err(|e| StorageError::io(&meta_path, e))?,
        )
        .map_err(|e| StorageError::corrupt(&meta_path, e.to_string()))?;
        let index_path = dir.join("index");
        if meta.version < 2 && block_index::migrate_v1(&index_path)? {
            tracing::info!(block = %dir.display(), "block index migrated to format 2");
        }
        let index = BlockIndex::open(&index_path)?;
        if meta.version < 2 {
            // Also after a crash between the index's rename and this one.
            meta.version = 2;
            let json = serde_json::to_vec_pretty(&meta).expect("meta serializes");
            let tmp = dir.join("meta.json.tmp");
            write_synced(&tmp, &json)?;
            fs::rename(&tmp, &meta_path).map_err(|e| StorageError::io(&meta_path, e))?;
            sync_dir(dir)?;
        }
        let chunks_path = dir.join("chunks");
        let chunks_file =
            File::open(&chunks_path).map_err(|e| StorageError::io(&chunks_path, e))?;
        let chunks_len = chunks_file
            .metadata()
            .map_err(|e| StorageError::io(&chunks_path, e))?
            .len();
        Ok(Block {
            dir: dir.to_path_buf(),
            meta,
            size_bytes: index.file_len() as u64 + chunks_len,
            index,
            chunks_file,
        })
    }

    /// The block's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The block's metadata.
    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    /// Bytes of `index` + `chunks` on disk.
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// Approximate heap bytes this open block holds: its fixed-size state and paths only
    /// (the index is memory-mapped; its pages belong to the page cache).
    pub fn heap_size(&self) -> usize {
        std::mem::size_of::<Block>()
            + self.dir.as_os_str().len()
            + self
                .meta
                .sources
                .iter()
                .map(|s| s.len() + 24)
                .sum::<usize>()
            + 64
    }

    /// The block's index.
    pub fn index(&self) -> &BlockIndex {
        &self.index
    }

    /// True when the block's range intersects `[start, end]`.
    pub fn overlaps(&self, start: i64, end: i64) -> bool {
        self.meta.min_t <= end && self.meta.max_t > start
    }

    /// The chunk list of a series.
    pub fn chunk_refs(&self, r: SeriesRef) -> Result<Vec<ChunkRef>> {
        let buf = self.index.chunk_list(r)?;
        let path = self.dir.join("index");
        let corrupt = || StorageError::corrupt(&path, format!("chunk list of series {r}"));
        if buf.len() < 4 {
            return Err(corrupt());
        }
        let (body, crc) = buf.split_at(buf.len() - 4);
        if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().expect("4")) {
            return Err(corrupt());
        }
        let mut r = ByteReader::new(body);
        let n = r.uvarint().ok_or_else(corrupt)? as usize;
        let mut out = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            let column = r.bytes(1).ok_or_else(corrupt)?[0];
            let min_t = r.varint().ok_or_else(corrupt)?;
            let max_t = min_t + r.uvarint().ok_or_else(corrupt)? as i64;
            let offset = r.uvarint().ok_or_else(corrupt)?;
            let len = r.uvarint().ok_or_else(corrupt)? as u32;
            out.push(ChunkRef {
                column,
                min_t,
                max_t,
                offset,
                len,
            });
        }
        Ok(out)
    }

    /// Reads, verifies and decodes one chunk.
    pub fn read_samples(&self, c: &ChunkRef) -> Result<Vec<Sample>> {
        let (encoding, bytes) = self.read_chunk(c)?;
        codec::decode(encoding, &bytes).map_err(|e| {
            StorageError::corrupt(
                self.dir.join("chunks"),
                format!("chunk at {}: {e}", c.offset),
            )
        })
    }

    /// Reads and verifies one chunk, returning its encoding and bytes.
    pub fn read_chunk(&self, c: &ChunkRef) -> Result<(u8, Vec<u8>)> {
        let path = self.dir.join("chunks");
        let mut buf = vec![0u8; c.len as usize];
        self.chunks_file
            .read_exact_at(&mut buf, c.offset)
            .map_err(|e| StorageError::io(&path, e))?;
        let corrupt = || StorageError::corrupt(&path, format!("chunk at {}", c.offset));
        let mut r = ByteReader::new(&buf);
        let enc = r.bytes(1).ok_or_else(corrupt)?[0];
        let len = r.uvarint().ok_or_else(corrupt)? as usize;
        let crc = r.bytes(4).ok_or_else(corrupt)?;
        let body = r.bytes(len).ok_or_else(corrupt)?;
        if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().expect("4")) {
            return Err(corrupt());
        }
        Ok((enc, body.to_vec()))
    }

    /// Series matching `matchers`, with their labels.
    pub fn select(&self, matchers: &[Matcher]) -> Result<Vec<(SeriesRef, Labels)>> {
        self.index
            .select(matchers)?
            .into_iter()
            .map(|r| Ok((r, self.index.labels(r)?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::chunk::{decode_xor, encode_xor};
    use crate::storage::labels::METRIC_NAME;

    fn meta() -> BlockMeta {
        BlockMeta {
            version: 2,
            min_t: 0,
            max_t: 7_200_000,
            resolution_ms: 0,
            num_series: 0,
            num_samples: 0,
            num_chunks: 0,
            level: 0,
            sources: vec![],
        }
    }

    #[test]
    fn block_round_trips_and_detects_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let series: Vec<(Labels, Vec<ChunkData>)> = (0..50)
            .map(|i| {
                let samples: Vec<Sample> = (0..100)
                    .map(|j| Sample::new(j * 1000, (i * j) as f64))
                    .collect();
                let labels = Labels::from_pairs([
                    (METRIC_NAME.to_string(), "m".to_string()),
                    ("i".to_string(), format!("{i:03}")),
                ]);
                (
                    labels,
                    vec![ChunkData {
                        encoding: crate::storage::chunk::ENCODING_XOR,
                        column: 0,
                        min_t: 0,
                        max_t: 99_000,
                        bytes: encode_xor(&samples),
                    }],
                )
            })
            .collect();
        let path = write_block(dir.path(), meta(), series.clone()).unwrap();
        let b = Block::open(&path).unwrap();
        assert_eq!(b.meta().num_series, 50);
        assert_eq!(b.meta().num_samples, 5000);
        let sel = b.select(&[Matcher::eq("i", "007")]).unwrap();
        assert_eq!(sel.len(), 1);
        let refs = b.chunk_refs(sel[0].0).unwrap();
        let samples = decode_xor(&b.read_chunk(&refs[0]).unwrap().1).unwrap();
        assert_eq!(b.read_samples(&refs[0]).unwrap(), samples);
        assert_eq!(samples[3], Sample::new(3000, 21.0));
        // Flip a byte inside a chunk: reading that chunk fails with a clear error.
        let chunks = path.join("chunks");
        let mut data = fs::read(&chunks).unwrap();
        let off = refs[0].offset as usize + 10;
        data[off] ^= 0xff;
        fs::write(&chunks, &data).unwrap();
        let b = Block::open(&path).unwrap();
        let err = b.read_chunk(&refs[0]).unwrap_err();
        assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
        // A damaged index is refused at open.
        let idx = path.join("index");
        let mut data = fs::read(&idx).unwrap();
        let n = data.len();
        data[n - 20] ^= 1;
        fs::write(&idx, &data).unwrap();
        assert!(Block::open(&path).is_err());
    }

    #[test]
    fn format_1_index_is_migrated_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let series: Vec<(Labels, Vec<ChunkData>)> = (0..20)
            .map(|i| {
                let samples: Vec<Sample> = (0..10)
                    .map(|j| Sample::new(j * 1000, (i + j) as f64))
                    .collect();
                let labels = Labels::from_pairs([
                    (METRIC_NAME.to_string(), format!("m{}", i % 3)),
                    ("i".to_string(), format!("{i:03}")),
                ]);
                (labels, ChunkData::seal(0, &samples))
            })
            .collect();
        let path = write_block(dir.path(), meta(), series.clone()).unwrap();
        let before: Vec<(Labels, Vec<Sample>)> = {
            let b = Block::open(&path).unwrap();
            b.select(&[])
                .unwrap()
                .into_iter()
                .map(|(r, l)| {
                    let refs = b.chunk_refs(r).unwrap();
                    (
                        l,
                        refs.iter()
                            .flat_map(|c| b.read_samples(c).unwrap())
                            .collect(),
                    )
                })
                .collect()
        };
        assert_eq!(before.len(), 20);
        crate::storage::block_index::downgrade_to_v1(&path.join("index"));
        let mut m: BlockMeta =
            serde_json::from_slice(&fs::read(path.join("meta.json")).unwrap()).unwrap();
        m.version = 1;
        fs::write(path.join("meta.json"), serde_json::to_vec(&m).unwrap()).unwrap();
        assert_eq!(&fs::read(path.join("index")).unwrap()[..8], b"OSPIDX1\n");

        let b = Block::open(&path).unwrap();
        assert_eq!(b.meta().version, 2);
        assert_eq!(&fs::read(path.join("index")).unwrap()[..8], INDEX_MAGIC);
        let after: Vec<(Labels, Vec<Sample>)> = b
            .select(&[])
            .unwrap()
            .into_iter()
            .map(|(r, l)| {
                let refs = b.chunk_refs(r).unwrap();
                (
                    l,
                    refs.iter()
                        .flat_map(|c| b.read_samples(c).unwrap())
                        .collect(),
                )
            })
            .collect();
        assert_eq!(after, before);
        let sel = b.select(&[Matcher::eq(METRIC_NAME, "m1")]).unwrap();
        assert_eq!(sel.len(), 7);
        // Reopening the migrated block needs no second migration.
        let on_disk: BlockMeta =
            serde_json::from_slice(&fs::read(path.join("meta.json")).unwrap()).unwrap();
        assert_eq!(on_disk.version, 2);
        assert!(Block::open(&path).is_ok());
    }
}
