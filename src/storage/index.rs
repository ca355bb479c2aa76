//! The inverted index: interned label strings, label pair → series postings, matcher
//! evaluation, and lookup of a series by its labels. Used by the head and by every block.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use super::labels::{Label, Labels, LabelsRef};
use super::matcher::{MatchOp, Matcher};

/// Position of a series inside one index (the head or one block).
pub type SeriesRef = u32;

/// A fast non-cryptographic hasher (the Fx hash used inside rustc). Label sets come from
/// trusted collectors, and the series lookup is the hottest step of ingestion.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(w));
        }
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// `HashMap` with [`FxHasher`].
pub type FxHashMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Hash of a label set, used to find its series without allocating.
pub fn labels_hash(labels: &Labels) -> u64 {
    pairs_hash(labels.iter())
}

/// [`labels_hash`] of `(name, value)` pairs (the same value for the same pairs).
pub fn pairs_hash<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> u64 {
    let mut h = FxHasher::default();
    for (n, v) in pairs {
        h.write(n.as_bytes());
        h.write_u32(0xff);
        h.write(v.as_bytes());
        h.write_u32(0xfe);
    }
    h.finish()
}

/// Interned strings: each distinct label name or value is stored once.
#[derive(Debug, Default)]
pub struct Symbols {
    ids: FxHashMap<Arc<str>, u32>,
    strs: Vec<Arc<str>>,
}

impl Symbols {
    /// The id of `s`, adding it if new.
    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.strs.len() as u32;
        let a: Arc<str> = Arc::from(s);
        self.strs.push(a.clone());
        self.ids.insert(a, id);
        id
    }

    /// The id of `s`, if interned.
    pub fn get(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }

    /// The string of an id.
    pub fn resolve(&self, id: u32) -> &str {
        &self.strs[id as usize]
    }

    /// Number of distinct strings.
    pub fn len(&self) -> usize {
        self.strs.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.strs.is_empty()
    }

    /// All strings in id order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.strs.iter().map(|s| &**s)
    }
}

/// Label pairs → series, plus each series' labels as symbol ids.
#[derive(Debug)]
pub struct InvertedIndex {
    symbols: Symbols,
    /// name id → value id → sorted series refs.
    postings: FxHashMap<u32, FxHashMap<u32, Vec<SeriesRef>>>,
    /// All series' labels as symbol pairs, back to back (one allocation for all series).
    pairs: Vec<(u32, u32)>,
    /// Start of each series' pairs in `pairs`.
    starts: Vec<u32>,
    /// Whether `by_hash` is maintained (the head needs fast lookups; blocks do not).
    lookup: bool,
    by_hash: FxHashMap<u64, SeriesRef>,
    /// Extra series whose label hash collided with an earlier one.
    collisions: FxHashMap<u64, Vec<SeriesRef>>,
}

impl Default for InvertedIndex {
    fn default() -> Self {
        Self::new()
    }
}

impl InvertedIndex {
    /// An empty index with a hash table for fast [`InvertedIndex::find`].
    pub fn new() -> Self {
        InvertedIndex {
            symbols: Symbols::default(),
            postings: FxHashMap::default(),
            pairs: Vec::new(),
            starts: Vec::new(),
            lookup: true,
            by_hash: FxHashMap::default(),
            collisions: FxHashMap::default(),
        }
    }

    /// An empty index without the lookup hash table (less memory; `find` intersects
    /// postings instead). Used for blocks.
    pub fn without_lookup() -> Self {
        InvertedIndex {
            lookup: false,
            ..Self::new()
        }
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// True when no series is indexed.
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// The interned strings.
    pub fn symbols(&self) -> &Symbols {
        &self.symbols
    }

    /// Adds a series and returns its ref. The caller guarantees it is not present yet
    /// (see [`InvertedIndex::find`]); refs are dense and increasing.
    pub fn add(&mut self, labels: &Labels) -> SeriesRef {
        let r = self.starts.len() as SeriesRef;
        self.starts.push(self.pairs.len() as u32);
        for (n, v) in labels.iter() {
            let (n, v) = (self.symbols.intern(n), self.symbols.intern(v));
            self.pairs.push((n, v));
            self.postings
                .entry(n)
                .or_default()
                .entry(v)
                .or_default()
                .push(r);
        }
        if !self.lookup {
            return r;
        }
        let h = labels_hash(labels);
        if let std::collections::hash_map::Entry::Vacant(e) = self.by_hash.entry(h) {
            e.insert(r);
        } else {
            self.collisions.entry(h).or_default().push(r);
        }
        r
    }

    /// Finds the series with exactly these labels.
    pub fn find(&self, labels: &Labels) -> Option<SeriesRef> {
        let pairs = labels.pairs();
        let pairs = LabelsRef::new(&pairs);
        self.find_pairs(pairs, pairs_hash(pairs.iter()))
    }

    /// [`InvertedIndex::find`] of borrowed labels with their precomputed [`pairs_hash`].
    pub fn find_pairs(&self, labels: LabelsRef<'_>, h: u64) -> Option<SeriesRef> {
        if !self.lookup {
            let matchers: Vec<Matcher> = labels.iter().map(|(n, v)| Matcher::eq(n, v)).collect();
            return self
                .select(&matchers)
                .into_iter()
                .find(|&r| self.same(r, labels));
        }
        let first = *self.by_hash.get(&h)?;
        if self.same(first, labels) {
            return Some(first);
        }
        self.collisions
            .get(&h)?
            .iter()
            .copied()
            .find(|&r| self.same(r, labels))
    }

    fn same(&self, r: SeriesRef, labels: LabelsRef<'_>) -> bool {
        let pairs = self.label_ids(r);
        pairs.len() == labels.len()
            && pairs.iter().zip(labels.iter()).all(|(&(n, v), (ln, lv))| {
                self.symbols.resolve(n) == ln && self.symbols.resolve(v) == lv
            })
    }

    /// The labels of a series.
    pub fn labels(&self, r: SeriesRef) -> Labels {
        Labels::from_sorted(
            self.label_ids(r)
                .iter()
                .map(|&(n, v)| Label {
                    name: self.symbols.resolve(n).to_string(),
                    value: self.symbols.resolve(v).to_string(),
                })
                .collect(),
        )
    }

    /// The labels of a series as symbol ids.
    pub fn label_ids(&self, r: SeriesRef) -> &[(u32, u32)] {
        let start = self.starts[r as usize] as usize;
        let end = self
            .starts
            .get(r as usize + 1)
            .map_or(self.pairs.len(), |&e| e as usize);
        &self.pairs[start..end]
    }

    /// Series matching all matchers, sorted by ref. An empty matcher list selects everything.
    pub fn select(&self, matchers: &[Matcher]) -> Vec<SeriesRef> {
        match select_postings(self, matchers) {
            Ok(refs) => refs,
            Err(never) => match never {},
        }
    }

    /// The postings list of `name="value"`, if any series has it.
    fn postings_of(&self, name: &str, value: &str) -> Option<&[SeriesRef]> {
        let n = self.symbols.get(name)?;
        let v = self.symbols.get(value)?;
        self.postings.get(&n)?.get(&v).map(Vec::as_slice)
    }

    fn union_where(&self, name: &str, pred: &dyn Fn(&str) -> bool) -> Vec<SeriesRef> {
        let Some(values) = self.symbols.get(name).and_then(|n| self.postings.get(&n)) else {
            return Vec::new();
        };
        let mut lists: Vec<&Vec<SeriesRef>> = values
            .iter()
            .filter(|(v, _)| pred(self.symbols.resolve(**v)))
            .map(|(_, list)| list)
            .collect();
        match lists.len() {
            0 => Vec::new(),
            1 => lists.pop().expect("one").clone(),
            _ => {
                let mut out: Vec<SeriesRef> = lists.into_iter().flatten().copied().collect();
                out.sort_unstable();
                out.dedup();
                out
            }
        }
    }

    /// All label names, sorted.
    pub fn label_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .postings
            .keys()
            .map(|&n| self.symbols.resolve(n).to_string())
            .collect();
        v.sort();
        v
    }

    /// All values of a label, sorted.
    pub fn label_values(&self, name: &str) -> Vec<String> {
        let Some(values) = self.symbols.get(name).and_then(|n| self.postings.get(&n)) else {
            return Vec::new();
        };
        let mut v: Vec<String> = values
            .keys()
            .map(|&id| self.symbols.resolve(id).to_string())
            .collect();
        v.sort();
        v
    }

    /// Approximate heap bytes used, for the memory-per-series figure.
    pub fn heap_size(&self) -> usize {
        let strs: usize = self.symbols.iter().map(|s| s.len() + 16 + 40).sum();
        // Pairs, starts, and one posting entry per pair.
        let series = self.pairs.capacity() * 8 + self.starts.capacity() * 4 + self.pairs.len() * 4;
        strs + series + self.by_hash.capacity() * 16
    }
}

/// What matcher evaluation needs from an index: the in-memory [`InvertedIndex`] of the
/// head and the memory-mapped index of a block (`block_index`) both provide it, so both
/// select series with the same algorithm.
pub trait PostingsSource {
    /// Why reading postings can fail (never for the in-memory index).
    type Error;
    /// Number of series; refs are `0..num_series()`.
    fn num_series(&self) -> usize;
    /// The sorted postings list of `name="value"`, if any series has it.
    fn postings_for(
        &self,
        name: &str,
        value: &str,
    ) -> Result<Option<Cow<'_, [SeriesRef]>>, Self::Error>;
    /// The sorted union of the postings of every value of `name` that `pred` accepts.
    fn union_postings(
        &self,
        name: &str,
        pred: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<SeriesRef>, Self::Error>;
}

impl PostingsSource for InvertedIndex {
    type Error = std::convert::Infallible;

    fn num_series(&self) -> usize {
        self.starts.len()
    }

    fn postings_for(
        &self,
        name: &str,
        value: &str,
    ) -> Result<Option<Cow<'_, [SeriesRef]>>, Self::Error> {
        Ok(self.postings_of(name, value).map(Cow::Borrowed))
    }

    fn union_postings(
        &self,
        name: &str,
        pred: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<SeriesRef>, Self::Error> {
        Ok(self.union_where(name, pred))
    }
}

/// Series of `src` matching all matchers, sorted by ref. An empty matcher list selects
/// everything.
pub fn select_postings<S: PostingsSource + ?Sized>(
    src: &S,
    matchers: &[Matcher],
) -> Result<Vec<SeriesRef>, S::Error> {
    // `name="value"` reads its one postings list directly (no pass over
    // every value of the label); the shortest list goes first,
    // so a selective label (`pod="x"`) makes the intersection cheap.
    let is_exact = |m: &Matcher| m.op == MatchOp::Equal && !m.value.is_empty();
    let mut exact: Vec<Cow<'_, [SeriesRef]>> = Vec::new();
    for m in matchers.iter().filter(|m| is_exact(m)) {
        match src.postings_for(&m.name, &m.value)? {
            Some(p) => exact.push(p),
            None => return Ok(Vec::new()),
        }
    }
    exact.sort_by_key(|p| p.len());
    let mut result: Option<Vec<SeriesRef>> = exact.split_first().map(|(first, rest)| {
        rest.iter()
            .fold(first.to_vec(), |acc, p| intersect(&acc, p))
    });
    if result.as_ref().is_some_and(|r| r.is_empty()) {
        return Ok(Vec::new());
    }
    // Other matchers that reject the empty string can only match series carrying the
    // label: intersect their postings next, they are the selective ones.
    for m in matchers
        .iter()
        .filter(|m| !m.matches_empty() && !is_exact(m))
    {
        let set = src.union_postings(&m.name, &|v| m.matches(v))?;
        result = Some(match result {
            None => set,
            Some(prev) => intersect(&prev, &set),
        });
        if result.as_ref().is_some_and(|r| r.is_empty()) {
            return Ok(Vec::new());
        }
    }
    let mut result = result.unwrap_or_else(|| (0..src.num_series() as SeriesRef).collect());
    // Matchers that accept the empty string keep series without the label, so they
    // subtract the series whose value fails them.
    for m in matchers.iter().filter(|m| m.matches_empty()) {
        let excluded = src.union_postings(&m.name, &|v| !m.matches(v))?;
        if !excluded.is_empty() {
            result = subtract(&result, &excluded);
        }
    }
    Ok(result)
}

fn intersect(a: &[SeriesRef], b: &[SeriesRef]) -> Vec<SeriesRef> {
    // A short list against a long one: binary search the long one.
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if short.len() * 16 < long.len() {
        return short
            .iter()
            .copied()
            .filter(|x| long.binary_search(x).is_ok())
            .collect();
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

fn subtract(a: &[SeriesRef], b: &[SeriesRef]) -> Vec<SeriesRef> {
    let mut j = 0;
    a.iter()
        .copied()
        .filter(|&x| {
            while j < b.len() && b[j] < x {
                j += 1;
            }
            !(j < b.len() && b[j] == x)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::labels::METRIC_NAME;
    use proptest::prelude::*;

    fn ls(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    fn sample_index() -> (InvertedIndex, Vec<Labels>) {
        let mut idx = InvertedIndex::new();
        let all = vec![
            ls(&[(METRIC_NAME, "cpu"), ("pod", "web-1"), ("ns", "prod")]),
            ls(&[(METRIC_NAME, "cpu"), ("pod", "web-2"), ("ns", "dev")]),
            ls(&[(METRIC_NAME, "mem"), ("pod", "web-1"), ("ns", "prod")]),
            ls(&[(METRIC_NAME, "mem"), ("pod", "db-1")]),
        ];
        for l in &all {
            assert_eq!(idx.find(l), None);
            idx.add(l);
        }
        (idx, all)
    }

    #[test]
    fn find_and_labels_round_trip() {
        let (idx, all) = sample_index();
        for (i, l) in all.iter().enumerate() {
            assert_eq!(idx.find(l), Some(i as u32));
            assert_eq!(&idx.labels(i as u32), l);
        }
        assert_eq!(idx.find(&ls(&[(METRIC_NAME, "cpu")])), None);
        // Without the hash table, lookups go through the postings and agree.
        let mut lean = InvertedIndex::without_lookup();
        for l in &all {
            lean.add(l);
        }
        for (i, l) in all.iter().enumerate() {
            assert_eq!(lean.find(l), Some(i as u32));
        }
        assert_eq!(lean.find(&ls(&[(METRIC_NAME, "cpu")])), None);
        assert!(lean.heap_size() < idx.heap_size());
    }

    #[test]
    fn matchers_select_like_prometheus() {
        let (idx, _) = sample_index();
        let sel = |m: Vec<Matcher>| idx.select(&m);
        assert_eq!(sel(vec![Matcher::eq(METRIC_NAME, "cpu")]), vec![0, 1]);
        assert_eq!(
            sel(vec![
                Matcher::eq(METRIC_NAME, "cpu"),
                Matcher::ne("ns", "prod")
            ]),
            vec![1]
        );
        // A missing label counts as "": `ns!="prod"` keeps the series without `ns`.
        assert_eq!(sel(vec![Matcher::ne("ns", "prod")]), vec![1, 3]);
        assert_eq!(
            sel(vec![Matcher::re("pod", "web-.*").unwrap()]),
            vec![0, 1, 2]
        );
        assert_eq!(sel(vec![Matcher::nre("pod", "web-.*").unwrap()]), vec![3]);
        assert_eq!(sel(vec![Matcher::eq("ns", "")]), vec![3]);
        assert_eq!(sel(vec![Matcher::re("ns", ".+").unwrap()]), vec![0, 1, 2]);
        assert_eq!(sel(vec![Matcher::eq("nope", "x")]), Vec::<u32>::new());
        assert_eq!(sel(vec![]), vec![0, 1, 2, 3]);
        assert_eq!(idx.label_names(), vec![METRIC_NAME, "ns", "pod"]);
        assert_eq!(idx.label_values("pod"), vec!["db-1", "web-1", "web-2"]);
    }

    proptest! {
        /// The index agrees with brute-force evaluation of the matchers on every series.
        #[test]
        fn select_agrees_with_brute_force(
            series in proptest::collection::vec(proptest::collection::btree_map("[abc]", "[xyz]{0,2}", 0..3), 1..40),
            ms in proptest::collection::vec(("[abc]", "[xyz]{0,2}", 0u8..4), 0..3),
        ) {
            let mut idx = InvertedIndex::new();
            let mut all = Vec::new();
            for s in &series {
                let mut pairs: Vec<(String, String)> = s.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (k.clone(), v.clone())).collect();
                pairs.push((METRIC_NAME.into(), "m".into()));
                let l = Labels::from_pairs(pairs);
                if idx.find(&l).is_none() {
                    idx.add(&l);
                    all.push(l);
                }
            }
            let matchers: Vec<Matcher> = ms.iter().map(|(n, v, op)| match op {
                0 => Matcher::eq(n.clone(), v.clone()),
                1 => Matcher::ne(n.clone(), v.clone()),
                2 => Matcher::re(n.clone(), format!("{v}.*")).unwrap(),
                _ => Matcher::nre(n.clone(), format!("{v}.*")).unwrap(),
            }).collect();
            let expected: Vec<u32> = all.iter().enumerate()
                .filter(|(_, l)| matchers.iter().all(|m| m.matches(l.get(&m.name).unwrap_or(""))))
                .map(|(i, _)| i as u32).collect();
            prop_assert_eq!(idx.select(&matchers), expected);
        }
    }
}
