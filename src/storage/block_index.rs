//! A block's `index` file (format 2), read through a memory map so that an open block
//! keeps no per-series state in memory.
//!
//! Layout (all offsets in the footer are absolute; table entries are little-endian `u32`
//! offsets relative to the start of their section):
//!
//! ```text
//! "OSPIDX2\n"
//! chunk lists     per series: [uvarint n]([u8 column][varint min_t][uvarint max_t−min_t]
//!                 [uvarint offset][uvarint length])*[u32 LE CRC32 of the list]
//! symbols         every distinct label name and value, sorted bytewise: ([uvarint len][bytes])*
//! symbol table    [u32 LE offset]* — symbol ids are positions, so id order is string order
//! series          per series, sorted by labels: [uvarint nlabels]([uvarint name id]
//!                 [uvarint value id])*[uvarint chunk-list offset][uvarint chunk-list length]
//! series table    [u32 LE offset]*
//! postings        per label pair: [uvarint count][uvarint first ref][uvarint ref delta]*
//! postings table  ([u32 LE name id][u32 LE value id][u32 LE offset])*, sorted by name, value
//! footer          [u64 symbols][u64 symbol table][u32 count][u64 series][u64 series table]
//!                 [u32 count][u64 postings][u64 postings table][u32 count]
//!                 [u32 LE CRC32 of everything from the symbols to here]
//! ```
//!
//! Opening checks the magic, the footer and its checksum (read with positioned reads, so
//! verifying does not map the file's pages into the process) and maps the file. Lookups
//! binary-search the symbol, series and postings tables in place; only a few dozen bytes per
//! block stay on the heap. Every read is bounds-checked: a damaged file gives
//! [`StorageError::Corrupt`], never a panic. Format 1 (`OSPIDX1`, whose tables were loaded
//! into memory) is rewritten to format 2 in place when a block is opened ([`migrate_v1`]).

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::encode::{ByteReader, put_str, put_uvarint};
use super::error::{Result, StorageError};
use super::index::{FxHashMap, PostingsSource, SeriesRef, select_postings};
use super::labels::{Label, Labels};
use super::matcher::Matcher;

/// Magic of the current index format.
pub const INDEX_MAGIC: &[u8; 8] = b"OSPIDX2\n";
/// Magic of format 1 (tables loaded into memory at open), migrated on open.
pub const INDEX_MAGIC_V1: &[u8; 8] = b"OSPIDX1\n";
const FOOTER_LEN: usize = 6 * 8 + 3 * 4 + 4;
const POSTING_ENTRY: usize = 12;

/// Section positions read from the footer.
#[derive(Debug, Clone, Copy)]
struct Footer {
    symbols: usize,
    symbol_table: usize,
    num_symbols: usize,
    series: usize,
    series_table: usize,
    num_series: usize,
    postings: usize,
    postings_table: usize,
    num_postings: usize,
}

/// Appends the symbol, series and postings sections and the footer to `buf`, which holds
/// the magic and the chunk lists. `series` must be sorted by labels; each entry carries the
/// offset and length of its chunk list in `buf`.
pub fn append_tables(buf: &mut Vec<u8>, series: &[(Labels, u64, u64)]) -> Result<()> {
    let too_big = || StorageError::Io {
        path: PathBuf::from("index"),
        source: std::io::Error::other("block index section over 4 GiB"),
    };
    let rel = |pos: usize, start: usize| u32::try_from(pos - start).map_err(|_| too_big());
    let strings: BTreeSet<&str> = series
        .iter()
        .flat_map(|(l, _, _)| l.iter().flat_map(|(n, v)| [n, v]))
        .collect();
    let mut ids: FxHashMap<&str, u32> = FxHashMap::default();
    let symbols = buf.len();
    let mut table = Vec::with_capacity(strings.len() * 4);
    for (i, s) in strings.iter().enumerate() {
        ids.insert(s, i as u32);
        table.extend_from_slice(&rel(buf.len(), symbols)?.to_le_bytes());
        put_str(buf, s);
    }
    let symbol_table = buf.len();
    buf.extend_from_slice(&table);

    let series_start = buf.len();
    table.clear();
    let mut pairs: Vec<(u32, u32, SeriesRef)> = Vec::new();
    for (r, (labels, off, len)) in series.iter().enumerate() {
        table.extend_from_slice(&rel(buf.len(), series_start)?.to_le_bytes());
        put_uvarint(buf, labels.len() as u64);
        for (n, v) in labels.iter() {
            let (n, v) = (ids[n], ids[v]);
            put_uvarint(buf, n as u64);
            put_uvarint(buf, v as u64);
            pairs.push((n, v, r as SeriesRef));
        }
        put_uvarint(buf, *off);
        put_uvarint(buf, *len);
    }
    let series_table = buf.len();
    buf.extend_from_slice(&table);

    // Sorting the (name, value, ref) triples groups each pair's refs in ascending order.
    pairs.sort_unstable();
    let postings = buf.len();
    table.clear();
    let mut num_postings = 0usize;
    let mut i = 0;
    while i < pairs.len() {
        let (n, v, _) = pairs[i];
        let j = i + pairs[i..]
            .iter()
            .take_while(|p| p.0 == n && p.1 == v)
            .count();
        table.extend_from_slice(&n.to_le_bytes());
        table.extend_from_slice(&v.to_le_bytes());
        table.extend_from_slice(&rel(buf.len(), postings)?.to_le_bytes());
        put_uvarint(buf, (j - i) as u64);
        let mut prev = 0;
        for &(_, _, r) in &pairs[i..j] {
            put_uvarint(buf, (r - prev) as u64);
            prev = r;
        }
        num_postings += 1;
        i = j;
    }
    let postings_table = buf.len();
    buf.extend_from_slice(&table);

    for v in [symbols, symbol_table] {
        buf.extend_from_slice(&(v as u64).to_le_bytes());
    }
    buf.extend_from_slice(&(strings.len() as u32).to_le_bytes());
    for v in [series_start, series_table] {
        buf.extend_from_slice(&(v as u64).to_le_bytes());
    }
    buf.extend_from_slice(&(series.len() as u32).to_le_bytes());
    for v in [postings, postings_table] {
        buf.extend_from_slice(&(v as u64).to_le_bytes());
    }
    buf.extend_from_slice(&(num_postings as u32).to_le_bytes());
    let crc = crc32fast::hash(&buf[symbols..]);
    buf.extend_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// A block's index, memory-mapped.
#[derive(Debug)]
pub struct BlockIndex {
    path: PathBuf,
    map: Mmap,
    footer: Footer,
}

impl BlockIndex {
    /// Opens and verifies an index file (format 2).
    pub fn open(path: &Path) -> Result<BlockIndex> {
        let corrupt = |why: &str| StorageError::corrupt(path, why.to_string());
        let file = File::open(path).map_err(|e| StorageError::io(path, e))?;
        let len = file
            .metadata()
            .map_err(|e| StorageError::io(path, e))?
            .len() as usize;
        if len < INDEX_MAGIC.len() + FOOTER_LEN {
            return Err(corrupt("index too short"));
        }
        let mut magic = [0u8; 8];
        file.read_exact_at(&mut magic, 0)
            .map_err(|e| StorageError::io(path, e))?;
        if &magic == INDEX_MAGIC_V1 {
            return Err(corrupt(
                "index format 1 (migrate it with block_index::migrate_v1)",
            ));
        }
        if &magic != INDEX_MAGIC {
            return Err(corrupt("bad magic (not an Osprey block index, format 2)"));
        }
        let mut foot = [0u8; FOOTER_LEN];
        file.read_exact_at(&mut foot, (len - FOOTER_LEN) as u64)
            .map_err(|e| StorageError::io(path, e))?;
        let parse = || -> Option<(Footer, u32)> {
            let mut r = ByteReader::new(&foot);
            let u64_at = |r: &mut ByteReader<'_>| r.u64_le().map(|v| v as usize);
            let symbols = u64_at(&mut r)?;
            let symbol_table = u64_at(&mut r)?;
            let num_symbols = r.bytes(4).map(le_u32)? as usize;
            let series = u64_at(&mut r)?;
            let series_table = u64_at(&mut r)?;
            let num_series = r.bytes(4).map(le_u32)? as usize;
            let postings = u64_at(&mut r)?;
            let postings_table = u64_at(&mut r)?;
            let num_postings = r.bytes(4).map(le_u32)? as usize;
            let crc = r.bytes(4).map(le_u32)?;
            let footer = Footer {
                symbols,
                symbol_table,
                num_symbols,
                series,
                series_table,
                num_series,
                postings,
                postings_table,
                num_postings,
            };
            Some((footer, crc))
        };
        let (footer, crc) = parse().ok_or_else(|| corrupt("footer"))?;
        let end = len - 4;
        // Checked arithmetic: the footer is not trusted before its checksum is.
        let after = |start: usize, n: usize, width: usize| {
            n.checked_mul(width).and_then(|b| start.checked_add(b))
        };
        let sections_ok = INDEX_MAGIC.len() <= footer.symbols
            && footer.symbols <= footer.symbol_table
            && after(footer.symbol_table, footer.num_symbols, 4) == Some(footer.series)
            && footer.series <= footer.series_table
            && after(footer.series_table, footer.num_series, 4) == Some(footer.postings)
            && footer.postings <= footer.postings_table
            && after(footer.postings_table, footer.num_postings, POSTING_ENTRY)
                == Some(len - FOOTER_LEN);
        if !sections_ok {
            return Err(corrupt("footer sections out of order"));
        }
        if crc_of_range(&file, footer.symbols, end).map_err(|e| StorageError::io(path, e))? != crc {
            return Err(corrupt("index checksum mismatch"));
        }
        // SAFETY: block files are immutable once renamed into place; nothing in this process
        // writes them, and retention deletes (unlinks) whole directories, which leaves
        // existing mappings valid.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| StorageError::io(path, e))?;
        if map.len() != len {
            return Err(corrupt("index changed while opening"));
        }
        Ok(BlockIndex {
            path: path.to_path_buf(),
            map,
            footer,
        })
    }

    fn corrupt(&self, why: impl Into<String>) -> StorageError {
        StorageError::corrupt(&self.path, why)
    }

    /// Number of series; refs are `0..len()`.
    pub fn len(&self) -> usize {
        self.footer.num_series
    }

    /// True when the block holds no series.
    pub fn is_empty(&self) -> bool {
        self.footer.num_series == 0
    }

    /// Size of the index file in bytes.
    pub fn file_len(&self) -> usize {
        self.map.len()
    }

    fn u32_at(&self, pos: usize) -> Option<u32> {
        self.map.get(pos..pos + 4).map(le_u32)
    }

    fn symbol(&self, id: u32) -> Option<&str> {
        if id as usize >= self.footer.num_symbols {
            return None;
        }
        let off = self.u32_at(self.footer.symbol_table + 4 * id as usize)? as usize;
        let mut r = ByteReader::new(self.map.get(self.footer.symbols + off..)?);
        let n = r.uvarint()? as usize;
        std::str::from_utf8(r.bytes(n)?).ok()
    }

    fn symbol_id(&self, s: &str) -> Result<Option<u32>> {
        let (mut lo, mut hi) = (0usize, self.footer.num_symbols);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let sym = self
                .symbol(mid as u32)
                .ok_or_else(|| self.corrupt(format!("symbol {mid}")))?;
            match sym.cmp(s) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(Some(mid as u32)),
            }
        }
        Ok(None)
    }

    fn series_entry(&self, r: SeriesRef) -> Option<ByteReader<'_>> {
        if r as usize >= self.footer.num_series {
            return None;
        }
        let off = self.u32_at(self.footer.series_table + 4 * r as usize)? as usize;
        Some(ByteReader::new(
            self.map
                .get(self.footer.series + off..self.footer.series_table)?,
        ))
    }

    fn read_entry(&self, r: SeriesRef) -> Option<(Labels, u64, u64)> {
        let mut e = self.series_entry(r)?;
        let n = e.uvarint()? as usize;
        let mut labels = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            let name = self.symbol(e.uvarint()?.try_into().ok()?)?;
            let value = self.symbol(e.uvarint()?.try_into().ok()?)?;
            labels.push(Label {
                name: name.to_string(),
                value: value.to_string(),
            });
        }
        Some((Labels::from_sorted(labels), e.uvarint()?, e.uvarint()?))
    }

    /// The labels of a series.
    pub fn labels(&self, r: SeriesRef) -> Result<Labels> {
        self.read_entry(r)
            .map(|(l, _, _)| l)
            .ok_or_else(|| self.corrupt(format!("series {r}")))
    }

    /// The bytes of a series' chunk list (CRC included), borrowed from the map.
    pub fn chunk_list(&self, r: SeriesRef) -> Result<&[u8]> {
        let bad = || self.corrupt(format!("chunk list of series {r}"));
        let (_, off, len) = self.read_entry(r).ok_or_else(bad)?;
        let (off, len) = (off as usize, len as usize);
        if off < INDEX_MAGIC.len() || off.saturating_add(len) > self.footer.symbols {
            return Err(bad());
        }
        Ok(&self.map[off..off + len])
    }

    /// The series with exactly these labels (binary search: the series are sorted).
    pub fn find(&self, labels: &Labels) -> Result<Option<SeriesRef>> {
        let (mut lo, mut hi) = (0usize, self.footer.num_series);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.labels(mid as SeriesRef)?.cmp(labels) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(Some(mid as SeriesRef)),
            }
        }
        Ok(None)
    }

    /// Series matching all matchers, sorted by ref.
    pub fn select(&self, matchers: &[Matcher]) -> Result<Vec<SeriesRef>> {
        select_postings(self, matchers)
    }

    fn posting_entry(&self, i: usize) -> Option<(u32, u32, u32)> {
        let p = self.footer.postings_table + POSTING_ENTRY * i;
        Some((self.u32_at(p)?, self.u32_at(p + 4)?, self.u32_at(p + 8)?))
    }

    fn posting_entry_or_err(&self, i: usize) -> Result<(u32, u32, u32)> {
        self.posting_entry(i)
            .ok_or_else(|| self.corrupt(format!("postings entry {i}")))
    }

    /// Postings-table positions of every value of the label with id `name`.
    fn name_range(&self, name: u32) -> Result<Range<usize>> {
        let first_at_least = |target: u32| -> Result<usize> {
            let (mut lo, mut hi) = (0usize, self.footer.num_postings);
            while lo < hi {
                let mid = (lo + hi) / 2;
                if self.posting_entry_or_err(mid)?.0 < target {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            Ok(lo)
        };
        Ok(first_at_least(name)?..first_at_least(name.saturating_add(1))?)
    }

    fn decode_postings(&self, off: u32) -> Result<Vec<SeriesRef>> {
        let bad = || self.corrupt(format!("postings at {off}"));
        let start = self.footer.postings + off as usize;
        let mut r = ByteReader::new(
            self.map
                .get(start..self.footer.postings_table)
                .ok_or_else(bad)?,
        );
        let n = r.uvarint().ok_or_else(bad)? as usize;
        if n > self.footer.num_series {
            return Err(bad());
        }
        let mut out = Vec::with_capacity(n);
        let mut prev: u64 = 0;
        for _ in 0..n {
            prev += r.uvarint().ok_or_else(bad)?;
            if prev >= self.footer.num_series as u64 {
                return Err(bad());
            }
            out.push(prev as SeriesRef);
        }
        Ok(out)
    }

    /// All label names, sorted.
    pub fn label_names(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.footer.num_postings {
            let (n, _, _) = self.posting_entry_or_err(i)?;
            let name = self
                .symbol(n)
                .ok_or_else(|| self.corrupt(format!("symbol {n}")))?;
            out.push(name.to_string());
            i = self.name_range(n)?.end.max(i + 1);
        }
        Ok(out)
    }

    /// All values of a label, sorted.
    pub fn label_values(&self, name: &str) -> Result<Vec<String>> {
        let Some(n) = self.symbol_id(name)? else {
            return Ok(Vec::new());
        };
        self.name_range(n)?
            .map(|i| {
                let (_, v, _) = self.posting_entry_or_err(i)?;
                self.symbol(v)
                    .map(str::to_string)
                    .ok_or_else(|| self.corrupt(format!("symbol {v}")))
            })
            .collect()
    }
}

impl PostingsSource for BlockIndex {
    type Error = StorageError;

    fn num_series(&self) -> usize {
        self.footer.num_series
    }

    fn postings_for(&self, name: &str, value: &str) -> Result<Option<Cow<'_, [SeriesRef]>>> {
        let (Some(n), Some(v)) = (self.symbol_id(name)?, self.symbol_id(value)?) else {
            return Ok(None);
        };
        let range = self.name_range(n)?;
        let (mut lo, mut hi) = (range.start, range.end);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let (_, mv, off) = self.posting_entry_or_err(mid)?;
            match mv.cmp(&v) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => {
                    return Ok(Some(Cow::Owned(self.decode_postings(off)?)));
                }
            }
        }
        Ok(None)
    }

    fn union_postings(&self, name: &str, pred: &dyn Fn(&str) -> bool) -> Result<Vec<SeriesRef>> {
        let Some(n) = self.symbol_id(name)? else {
            return Ok(Vec::new());
        };
        let mut lists = Vec::new();
        for i in self.name_range(n)? {
            let (_, v, off) = self.posting_entry_or_err(i)?;
            let value = self
                .symbol(v)
                .ok_or_else(|| self.corrupt(format!("symbol {v}")))?;
            if pred(value) {
                lists.push(self.decode_postings(off)?);
            }
        }
        Ok(match lists.len() {
            0 => Vec::new(),
            1 => lists.pop().expect("one"),
            _ => {
                let mut out: Vec<SeriesRef> = lists.into_iter().flatten().collect();
                out.sort_unstable();
                out.dedup();
                out
            }
        })
    }
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes(b.try_into().expect("4 bytes"))
}

/// CRC32 of `file[start..end]`, read in pieces (no mapping, bounded buffer).
fn crc_of_range(file: &File, start: usize, end: usize) -> std::io::Result<u32> {
    let mut h = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut pos = start;
    while pos < end {
        let n = (end - pos).min(buf.len());
        file.read_exact_at(&mut buf[..n], pos as u64)?;
        h.update(&buf[..n]);
        pos += n;
    }
    Ok(h.finalize())
}

/// Rewrites a format-1 index file (`OSPIDX1`) as format 2, atomically (temporary file,
/// fsync, rename, directory fsync). The chunk lists keep their positions. Returns false when
/// the file is not format 1.
pub fn migrate_v1(path: &Path) -> Result<bool> {
    let data = std::fs::read(path).map_err(|e| StorageError::io(path, e))?;
    if data.len() < 8 || &data[..8] != INDEX_MAGIC_V1 {
        return Ok(false);
    }
    let corrupt = |why: &str| StorageError::corrupt(path, format!("format 1 index: {why}"));
    if data.len() < INDEX_MAGIC_V1.len() + 12 {
        return Err(corrupt("too short"));
    }
    let foot = data.len() - 12;
    let sym_off = u64::from_le_bytes(data[foot..foot + 8].try_into().expect("8")) as usize;
    let crc = u32::from_le_bytes(data[foot + 8..].try_into().expect("4"));
    if sym_off > foot || sym_off < 8 || crc32fast::hash(&data[sym_off..foot]) != crc {
        return Err(corrupt("checksum mismatch"));
    }
    let mut r = ByteReader::new(&data[sym_off..foot]);
    let nsym = r.uvarint().ok_or_else(|| corrupt("symbols"))? as usize;
    let mut syms = Vec::with_capacity(nsym.min(1 << 20));
    for _ in 0..nsym {
        syms.push(r.str().ok_or_else(|| corrupt("symbol"))?);
    }
    let nseries = r.uvarint().ok_or_else(|| corrupt("series count"))? as usize;
    let mut series = Vec::with_capacity(nseries.min(1 << 24));
    for _ in 0..nseries {
        let nl = r.uvarint().ok_or_else(|| corrupt("labels"))? as usize;
        let mut pairs = Vec::with_capacity(nl.min(64));
        for _ in 0..nl {
            let mut sym = || {
                r.uvarint()
                    .and_then(|i| syms.get(i as usize))
                    .ok_or_else(|| corrupt("label symbol"))
            };
            let (n, v) = (sym()?, sym()?);
            pairs.push((*n, *v));
        }
        let off = r.uvarint().ok_or_else(|| corrupt("list offset"))?;
        let len = r.uvarint().ok_or_else(|| corrupt("list length"))?;
        series.push((Labels::from_pairs(pairs), off, len));
    }
    series.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = INDEX_MAGIC.to_vec();
    out.extend_from_slice(&data[8..sym_off]);
    append_tables(&mut out, &series)?;
    let tmp = path.with_extension("v2.tmp");
    {
        use std::io::Write;
        let mut f = File::create(&tmp).map_err(|e| StorageError::io(&tmp, e))?;
        f.write_all(&out)
            .and_then(|_| f.sync_all())
            .map_err(|e| StorageError::io(&tmp, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| StorageError::io(path, e))?;
    if let Some(dir) = path.parent() {
        super::block::sync_dir(dir)?;
    }
    Ok(true)
}

/// Rewrites a format-2 index as format 1 (as the previous version wrote it), to test
/// [`migrate_v1`].
#[cfg(test)]
pub(crate) fn downgrade_to_v1(path: &Path) {
    let idx = BlockIndex::open(path).unwrap();
    let data = std::fs::read(path).unwrap();
    let mut out = INDEX_MAGIC_V1.to_vec();
    out.extend_from_slice(&data[8..idx.footer.symbols]);
    let sym_off = out.len();
    // Format 1 listed symbols in first-use order.
    let mut symbols = crate::storage::index::Symbols::default();
    let entries: Vec<(Labels, u64, u64)> = (0..idx.len() as u32)
        .map(|r| idx.read_entry(r).unwrap())
        .collect();
    let pairs: Vec<Vec<(u32, u32)>> = entries
        .iter()
        .map(|(l, _, _)| {
            l.iter()
                .map(|(n, v)| (symbols.intern(n), symbols.intern(v)))
                .collect()
        })
        .collect();
    put_uvarint(&mut out, symbols.len() as u64);
    for s in symbols.iter() {
        put_str(&mut out, s);
    }
    put_uvarint(&mut out, entries.len() as u64);
    for ((_, off, len), pairs) in entries.iter().zip(&pairs) {
        put_uvarint(&mut out, pairs.len() as u64);
        for &(n, v) in pairs {
            put_uvarint(&mut out, n as u64);
            put_uvarint(&mut out, v as u64);
        }
        put_uvarint(&mut out, *off);
        put_uvarint(&mut out, *len);
    }
    let crc = crc32fast::hash(&out[sym_off..]);
    out.extend_from_slice(&(sym_off as u64).to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    drop(idx);
    std::fs::write(path, &out).unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::labels::METRIC_NAME;
    use crate::storage::matcher::Matcher;

    fn ls(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    fn write(dir: &Path, series: &[Labels]) -> PathBuf {
        let mut sorted = series.to_vec();
        sorted.sort();
        let mut buf = INDEX_MAGIC.to_vec();
        let table: Vec<(Labels, u64, u64)> = sorted
            .into_iter()
            .map(|l| {
                let off = buf.len() as u64;
                buf.extend_from_slice(&[0, 0, 0, 0, 0]);
                (l, off, 5)
            })
            .collect();
        append_tables(&mut buf, &table).unwrap();
        let path = dir.join("index");
        std::fs::write(&path, &buf).unwrap();
        path
    }

    #[test]
    fn mapped_index_answers_like_the_in_memory_one() {
        let dir = tempfile::tempdir().unwrap();
        let all = vec![
            ls(&[(METRIC_NAME, "cpu"), ("pod", "web-1"), ("ns", "prod")]),
            ls(&[(METRIC_NAME, "cpu"), ("pod", "web-2"), ("ns", "dev")]),
            ls(&[(METRIC_NAME, "mem"), ("pod", "web-1"), ("ns", "prod")]),
            ls(&[(METRIC_NAME, "mem"), ("pod", "db-1")]),
        ];
        let path = write(dir.path(), &all);
        let idx = BlockIndex::open(&path).unwrap();
        let mut mem = crate::storage::index::InvertedIndex::new();
        let mut sorted = all.clone();
        sorted.sort();
        for l in &sorted {
            mem.add(l);
        }
        assert_eq!(idx.len(), 4);
        for (i, l) in sorted.iter().enumerate() {
            assert_eq!(&idx.labels(i as u32).unwrap(), l);
            assert_eq!(idx.find(l).unwrap(), Some(i as u32));
            assert_eq!(idx.chunk_list(i as u32).unwrap().len(), 5);
        }
        assert_eq!(idx.find(&ls(&[(METRIC_NAME, "cpu")])).unwrap(), None);
        let cases = vec![
            vec![Matcher::eq(METRIC_NAME, "cpu")],
            vec![Matcher::eq(METRIC_NAME, "cpu"), Matcher::ne("ns", "prod")],
            vec![Matcher::ne("ns", "prod")],
            vec![Matcher::re("pod", "web-.*").unwrap()],
            vec![Matcher::nre("pod", "web-.*").unwrap()],
            vec![Matcher::eq("ns", "")],
            vec![Matcher::eq("nope", "x")],
            vec![Matcher::eq("pod", "zzz")],
            vec![],
        ];
        for m in cases {
            assert_eq!(idx.select(&m).unwrap(), mem.select(&m), "{m:?}");
        }
        assert_eq!(idx.label_names().unwrap(), mem.label_names());
        assert_eq!(idx.label_values("pod").unwrap(), mem.label_values("pod"));
        assert_eq!(idx.label_values("nope").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn damaged_or_old_index_is_refused_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), &[ls(&[(METRIC_NAME, "up"), ("job", "a")])]);
        let good = std::fs::read(&path).unwrap();
        // Every single flipped byte after the chunk lists is caught by the checksum or the
        // footer checks.
        for i in 13..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x40;
            std::fs::write(&path, &bad).unwrap();
            assert!(
                matches!(BlockIndex::open(&path), Err(StorageError::Corrupt { .. })),
                "byte {i}"
            );
        }
        let mut v1 = good.clone();
        v1[..8].copy_from_slice(INDEX_MAGIC_V1);
        std::fs::write(&path, &v1).unwrap();
        let err = BlockIndex::open(&path).unwrap_err().to_string();
        assert!(err.contains("format 1"), "{err}");
    }
}
