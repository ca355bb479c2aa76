//! [`Storage`]: the engine tying head, WAL and blocks together behind a thread-safe API.
//!
//! Locking: one mutex around the WAL serialises writers (appends and maintenance), so the
//! order of WAL records is the order in which the head applies them. The head and the block
//! list sit behind read/write locks taken in the order head → blocks; queries only take
//! read locks for the time it takes to collect chunk references.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::block::{Block, BlockMeta, ChunkData, write_block};
use super::chunk::XorIter;
use super::compaction;
use super::error::{Result, StorageError};
use super::head::{AppendPlan, AppendReport, Head, HeadOptions, PlannedRef};
use super::head_chunks::ChunkSpill;
use super::labels::Labels;
use super::matcher::Matcher;
use super::metrics::{Metrics, MetricsSnapshot};
use super::options::{FsyncPolicy, StorageOptions};
use super::retention::{self, BlockInfo};
use super::rollup::{self, Bucket, COLUMNS, RESOLUTIONS};
use super::sample::{Sample, SeriesSamples, SeriesSamplesRef, with_refs};
use super::select::{Series, SeriesParts, SeriesSet};
use super::wal::{ReplayReport, Wal, WalRecord};

/// Rollup chunks per series, ready for `write_block`.
type RolledSeries = Vec<(Labels, Vec<ChunkData>)>;

/// What one call of [`Storage::maintain`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MaintainReport {
    /// Blocks cut from the head.
    pub blocks_cut: u64,
    /// Compactions performed (raw and rollup).
    pub compactions: u64,
    /// Blocks deleted by retention.
    pub blocks_deleted: u64,
}

#[derive(Debug, Default)]
struct BlockSet {
    raw: Vec<Arc<Block>>,
    rollups: BTreeMap<i64, Vec<Arc<Block>>>,
}

impl BlockSet {
    fn list(&self, res: i64) -> &[Arc<Block>] {
        if res == 0 {
            &self.raw
        } else {
            self.rollups.get(&res).map_or(&[], |v| v.as_slice())
        }
    }

    fn list_mut(&mut self, res: i64) -> &mut Vec<Arc<Block>> {
        if res == 0 {
            &mut self.raw
        } else {
            self.rollups.entry(res).or_default()
        }
    }
}

/// Directory name under `blocks/` for a resolution (0 = raw).
pub fn resolution_dir(res: i64) -> String {
    match res {
        0 => "raw".to_string(),
        r if r % 3_600_000 == 0 => format!("{}h", r / 3_600_000),
        r => format!("{}m", r / 60_000),
    }
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    opts: StorageOptions,
    wal: Mutex<Wal>,
    group_sync: GroupSync,
    head: RwLock<Head>,
    blocks: RwLock<BlockSet>,
    metrics: Metrics,
    replay: ReplayReport,
    _lock: File,
}

/// Group commit for the per-batch fsync policy: a writer waits until its append is
/// synced, and one fsync covers every append written before it started, so concurrent
/// writers share fsyncs instead of queueing one each behind the log's lock.
#[derive(Debug, Default)]
struct GroupSync {
    state: Mutex<SyncState>,
    done: std::sync::Condvar,
}

#[derive(Debug, Default)]
struct SyncState {
    /// Appends up to this position are durable.
    synced: u64,
    /// A writer is syncing right now.
    syncing: bool,
    /// The newest failed fsync: what it covered and why. Linux may drop dirty pages after a
    /// failed fsync, so a later successful one proves nothing for these appends: each of
    /// them fails.
    failed: Option<(u64, String)>,
}

/// The embedded time-series store. Cheap to share: clone it or put it in an `Arc`; every
/// method takes `&self`.
#[derive(Debug, Clone)]
pub struct Storage {
    inner: Arc<Inner>,
    _syncer: Option<Arc<Syncer>>,
}

/// Background thread that fsyncs the WAL once a second (policy `every_second`).
#[derive(Debug)]
struct Syncer {
    stop: Mutex<Option<mpsc::Sender<()>>>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Syncer {
    fn drop(&mut self) {
        if let Some(tx) = lock(&self.stop).take() {
            let _ = tx.send(());
        }
        if let Some(h) = lock(&self.handle).take() {
            let _ = h.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
fn read<T>(m: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}
fn write<T>(m: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}

fn head_options(o: &StorageOptions) -> HeadOptions {
    HeadOptions {
        samples_per_chunk: o.samples_per_chunk,
        block_ms: o.block_duration_ms,
        ooo_window_ms: o.out_of_order_window_ms,
        grid_tolerance_ms: o.grid_tolerance_ms,
    }
}

/// The records that restate the whole head (a WAL checkpoint).
fn checkpoint_records(head: &Head) -> impl Iterator<Item = WalRecord> + '_ {
    std::iter::once(WalRecord::Checkpoint {
        min_valid_t: head.min_valid_t(),
    })
    .chain(head.all_series().flat_map(|(r, labels, samples)| {
        let series = WalRecord::Series(vec![(r, labels)]);
        let samples = (!samples.is_empty())
            .then(|| WalRecord::Samples(samples.into_iter().map(|s| (r, s)).collect()));
        std::iter::once(series).chain(samples)
    }))
}

/// Opens all blocks of one resolution, deleting unfinished writes and compaction sources.
fn load_blocks(dir: &Path) -> Result<Vec<Arc<Block>>> {
    fs::create_dir_all(dir).map_err(|e| StorageError::io(dir, e))?;
    let mut blocks = Vec::new();
    for e in fs::read_dir(dir).map_err(|e| StorageError::io(dir, e))? {
        let e = e.map_err(|e| StorageError::io(dir, e))?;
        let path = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        if name.ends_with(".tmp") {
            tracing::info!(block = %path.display(), "removing unfinished block write");
            fs::remove_dir_all(&path).map_err(|e| StorageError::io(&path, e))?;
            continue;
        }
        if name.ends_with(".corrupt") || !path.is_dir() {
            continue;
        }
        match Block::open(&path) {
            Ok(b) => blocks.push(Arc::new(b)),
            Err(err) => {
                let aside = dir.join(format!("{name}.corrupt"));
                tracing::error!(block = %path.display(), %err, "block unreadable; moved aside");
                fs::rename(&path, &aside).map_err(|e| StorageError::io(&aside, e))?;
            }
        }
    }
    let superseded: HashSet<String> = blocks
        .iter()
        .flat_map(|b| b.meta().sources.iter().cloned())
        .collect();
    let mut kept = Vec::new();
    for b in blocks {
        if superseded.contains(&b.meta().dir_name()) {
            tracing::info!(block = %b.dir().display(), "removing block superseded by compaction");
            fs::remove_dir_all(b.dir()).map_err(|e| StorageError::io(b.dir(), e))?;
        } else {
            kept.push(b);
        }
    }
    kept.sort_by_key(|b| b.meta().min_t);
    Ok(kept)
}

impl Storage {
    /// Opens (creating if needed) the store in `dir`: loads blocks, replays the WAL (cutting
    /// a torn tail) and writes a fresh WAL checkpoint.
    pub fn open(dir: &Path, options: StorageOptions) -> Result<Storage> {
        options.validate()?;
        if options.rollups && options.block_duration_ms % rollup::RES_1H != 0 {
            return Err(StorageError::InvalidOptions(
                "with rollups on, block_duration_ms must be a multiple of one hour".into(),
            ));
        }
        fs::create_dir_all(dir).map_err(|e| StorageError::io(dir, e))?;
        let lock_path = dir.join("lock");
        let lock_file = File::create(&lock_path).map_err(|e| StorageError::io(&lock_path, e))?;
        // SAFETY: flock on a file descriptor we own; no memory is shared with the call.
        if unsafe { libc::flock(lock_file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(StorageError::Locked(dir.to_path_buf()));
        }
        let mut blocks = BlockSet {
            raw: load_blocks(&dir.join("blocks").join(resolution_dir(0)))?,
            rollups: BTreeMap::new(),
        };
        for res in RESOLUTIONS {
            blocks.rollups.insert(
                res,
                load_blocks(&dir.join("blocks").join(resolution_dir(res)))?,
            );
        }
        let min_valid_t = blocks.raw.last().map_or(i64::MIN, |b| b.meta().max_t);
        let spill = ChunkSpill::create(&dir.join("chunks_head"))?;
        let mut head = Head::with_spill(head_options(&options), min_valid_t, spill);
        let mut map: Vec<u32> = Vec::new();
        let mut unknown = 0u64;
        let wal_dir = dir.join("wal");
        let (replay, last_seq) = Wal::replay(&wal_dir, |rec| {
            match rec {
                WalRecord::Checkpoint { min_valid_t } => {
                    head.raise_min_valid_t(min_valid_t);
                    map.clear();
                }
                WalRecord::Series(v) => {
                    for (r, labels) in v {
                        let hr = head.create_series(&labels);
                        if map.len() <= r as usize {
                            map.resize(r as usize + 1, u32::MAX);
                        }
                        map[r as usize] = hr;
                    }
                }
                WalRecord::Samples(v) => {
                    for (r, s) in v {
                        match map.get(r as usize) {
                            Some(&hr) if hr != u32::MAX => head.push(hr, s),
                            _ => unknown += 1,
                        }
                    }
                }
            }
            Ok(())
        })?;
        if unknown > 0 {
            tracing::warn!(
                unknown,
                "WAL samples referenced unknown series and were skipped"
            );
        }
        let wal = Wal::create_with_checkpoint(
            &wal_dir,
            last_seq,
            options.wal_segment_bytes,
            options.fsync,
            checkpoint_records(&head),
        )?;
        tracing::info!(
            dir = %dir.display(),
            head_series = head.num_series(),
            head_samples = head.num_samples(),
            raw_blocks = blocks.raw.len(),
            wal_records = replay.records,
            wal_truncated_bytes = replay.truncated_bytes,
            "storage opened"
        );
        let metrics = Metrics::default();
        metrics
            .wal_truncated_bytes
            .store(replay.truncated_bytes, Relaxed);
        let inner = Arc::new(Inner {
            dir: dir.to_path_buf(),
            opts: options,
            wal: Mutex::new(wal),
            group_sync: GroupSync::default(),
            head: RwLock::new(head),
            blocks: RwLock::new(blocks),
            metrics,
            replay,
            _lock: lock_file,
        });
        let syncer = (inner.opts.fsync == FsyncPolicy::EverySecond).then(|| {
            let (tx, rx) = mpsc::channel::<()>();
            let weak = Arc::downgrade(&inner);
            let handle = std::thread::Builder::new()
                .name("osprey-wal-sync".into())
                .spawn(move || {
                    loop {
                        let stop = !matches!(
                            rx.recv_timeout(Duration::from_secs(1)),
                            Err(RecvTimeoutError::Timeout)
                        );
                        let Some(inner) = weak.upgrade() else { return };
                        if let Err(err) = lock(&inner.wal).sync() {
                            tracing::error!(%err, "WAL fsync failed");
                        }
                        if stop {
                            return;
                        }
                    }
                })
                .expect("spawn WAL sync thread");
            Arc::new(Syncer {
                stop: Mutex::new(Some(tx)),
                handle: Mutex::new(Some(handle)),
            })
        });
        Ok(Storage {
            inner,
            _syncer: syncer,
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &StorageOptions {
        &self.inner.opts
    }

    /// What WAL replay found when the store was opened.
    pub fn replay_report(&self) -> &ReplayReport {
        &self.inner.replay
    }

    /// Appends a batch. The whole batch is validated first; if any series is invalid
    /// nothing is stored and [`StorageError::InvalidBatch`] names it. Returning `Ok` means
    /// the accepted samples are in the WAL and durable as the fsync policy promises.
    pub fn append(&self, batch: &[SeriesSamples]) -> Result<AppendReport> {
        with_refs(batch, |refs| self.append_refs(refs))
    }

    /// [`Storage::append`] of borrowed series (the ingest path decodes requests in place).
    /// Labels are only copied for series the head does not hold yet, and only those are
    /// validated: a series the head holds passed validation when it was created.
    pub fn append_refs(&self, batch: &[SeriesSamplesRef<'_>]) -> Result<AppendReport> {
        check_sample_order(batch)?;
        let inner = &*self.inner;
        let mut wal = lock(&inner.wal);
        let (mut plan, base) = {
            let head = read(&inner.head);
            (head.plan(batch)?, head.num_series() as u32)
        };
        if !plan.too_old.is_empty() {
            self.recognise_sealed_retries(batch, &mut plan)?;
        }
        if !plan.accepted.is_empty() {
            let mut records = Vec::with_capacity(2);
            if !plan.new_series.is_empty() {
                records.push(WalRecord::Series(
                    plan.new_series
                        .iter()
                        .enumerate()
                        .map(|(i, l)| (base + i as u32, l.clone()))
                        .collect(),
                ));
            }
            records.push(WalRecord::Samples(
                plan.accepted
                    .iter()
                    .map(|&(r, s)| {
                        let r = match r {
                            PlannedRef::Existing(r) => r,
                            PlannedRef::New(n) => base + n as u32,
                        };
                        (r, s)
                    })
                    .collect(),
            ));
            let position = wal.write(&records)?;
            let refs = write(&inner.head).apply(&plan);
            debug_assert!(refs.iter().enumerate().all(|(i, &r)| r == base + i as u32));
            drop(wal);
            if inner.opts.fsync == FsyncPolicy::PerBatch {
                self.wait_durable(position)?;
            }
        } else {
            drop(wal);
        }
        let mut report = plan.report;
        if plan.accepted.is_empty() {
            report.new_series = 0;
        }
        inner.metrics.record_append(&report);
        Ok(report)
    }

    /// Series matching `matchers` with their samples in `[start_ms, end_ms]` (inclusive),
    /// in label order, decoded lazily.
    pub fn select(&self, matchers: &[Matcher], start_ms: i64, end_ms: i64) -> Result<SeriesSet> {
        let inner = &*self.inner;
        let mut map: BTreeMap<Labels, SeriesParts> = BTreeMap::new();
        let head = read(&inner.head);
        let blocks = read(&inner.blocks);
        for b in blocks.raw.iter().filter(|b| b.overlaps(start_ms, end_ms)) {
            for (r, labels) in b.select(matchers)? {
                let refs: Vec<_> = b
                    .chunk_refs(r)?
                    .into_iter()
                    .filter(|c| c.column == 0 && c.max_t >= start_ms && c.min_t <= end_ms)
                    .collect();
                if !refs.is_empty() {
                    map.entry(labels)
                        .or_default()
                        .blocks
                        .push((b.clone(), refs));
                }
            }
        }
        for (labels, samples) in head.select(matchers, start_ms, end_ms) {
            map.entry(labels).or_default().head = samples;
        }
        Ok(SeriesSet {
            iter: map.into_iter(),
            start: start_ms,
            end: end_ms,
        })
    }

    /// [`Storage::select`] collected into a vector; records the query duration.
    pub fn select_all(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Series>> {
        let t0 = Instant::now();
        let out = self
            .select(matchers, start_ms, end_ms)?
            .collect::<Result<Vec<_>>>();
        self.inner.metrics.record_query(t0.elapsed());
        out
    }

    /// Returns once the WAL append at `position` is on stable storage: either another
    /// writer's fsync covered it, or this writer syncs everything written so far.
    fn wait_durable(&self, position: u64) -> Result<()> {
        let gs = &self.inner.group_sync;
        let wal_dir = || self.inner.dir.join("wal");
        let mut st = lock(&gs.state);
        loop {
            if st.synced >= position {
                return Ok(());
            }
            if let Some((upto, why)) = &st.failed
                && position <= *upto
            {
                return Err(StorageError::io(
                    wal_dir(),
                    std::io::Error::other(why.clone()),
                ));
            }
            if st.syncing {
                st = gs.done.wait(st).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            st.syncing = true;
            drop(st);
            // The log's lock is held only to take the handle, not during the fsync.
            let handle = lock(&self.inner.wal).sync_handle();
            let outcome = handle.and_then(|(file, upto)| {
                file.sync_data().map(|()| upto).map_err(|e| {
                    let why = format!("WAL fsync failed: {e}");
                    lock(&gs.state).failed = Some((upto, why));
                    StorageError::io(wal_dir(), e)
                })
            });
            st = lock(&gs.state);
            st.syncing = false;
            if let Ok(upto) = outcome {
                st.synced = st.synced.max(upto);
                self.inner.metrics.wal_group_syncs.fetch_add(1, Relaxed);
            }
            gs.done.notify_all();
            outcome?;
        }
    }

    /// Reclassifies samples older than the head that the blocks already hold bit-identically
    /// (within the grid tolerance, as the stored copy may have been snapped) as duplicates: a
    /// sender retrying a batch after the head was cut must not be told it was refused.
    fn recognise_sealed_retries(
        &self,
        batch: &[SeriesSamplesRef<'_>],
        plan: &mut AppendPlan,
    ) -> Result<()> {
        let tol = self.inner.opts.grid_tolerance_ms;
        let mut by_series: BTreeMap<usize, Vec<Sample>> = BTreeMap::new();
        for &(pos, s) in &plan.too_old {
            by_series.entry(pos).or_default().push(s);
        }
        for (pos, samples) in by_series {
            let labels = &batch[pos].labels.to_labels();
            let matchers: Vec<Matcher> = labels.iter().map(|(n, v)| Matcher::eq(n, v)).collect();
            let lo = samples.iter().map(|s| s.t).min().unwrap_or(0) - tol;
            let hi = samples.iter().map(|s| s.t).max().unwrap_or(0) + tol;
            let mut stored: Vec<Sample> = Vec::new();
            for series in self.select(&matchers, lo, hi)? {
                let series = series?;
                if &series.labels == labels {
                    stored.extend(series.samples);
                }
            }
            for s in samples {
                let held = stored
                    .iter()
                    .any(|x| (x.t - s.t).abs() <= tol && x.v.to_bits() == s.v.to_bits());
                if held {
                    plan.report.too_old -= 1;
                    plan.report.duplicates += 1;
                }
            }
        }
        Ok(())
    }

    /// Per-series buckets of width `res` (one of [`RESOLUTIONS`]) over `[start_ms, end_ms]`,
    /// read from rollup blocks where they exist and computed from raw data elsewhere.
    pub fn select_rollup(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
        res: i64,
    ) -> Result<Vec<(Labels, Vec<Bucket>)>> {
        self.select_rollup_columns(matchers, start_ms, end_ms, res, rollup::Columns::ALL)
    }

    /// [`Storage::select_rollup`] decoding only `columns` from rollup blocks (the others are
    /// NaN there; buckets computed from raw data have every column).
    pub fn select_rollup_columns(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
        res: i64,
        columns: rollup::Columns,
    ) -> Result<Vec<(Labels, Vec<Bucket>)>> {
        let inner = &*self.inner;
        let first_bucket = start_ms.div_euclid(res) * res;
        let mut per_series: BTreeMap<Labels, Vec<Vec<Bucket>>> = BTreeMap::new();
        let rollup_blocks: Vec<Arc<Block>> = {
            let blocks = read(&inner.blocks);
            blocks
                .list(res)
                .iter()
                .filter(|b| b.overlaps(first_bucket, end_ms))
                .cloned()
                .collect()
        };
        for b in &rollup_blocks {
            for (r, labels) in b.select(matchers)? {
                let mut cols: [Vec<Sample>; COLUMNS] = Default::default();
                for c in b.chunk_refs(r)? {
                    if c.max_t < first_bucket
                        || c.min_t > end_ms
                        || c.column as usize >= COLUMNS
                        || !(columns.has(c.column) || c.column == rollup::FIRST_OFFSET_COLUMN)
                    {
                        continue;
                    }
                    cols[c.column as usize].extend(
                        b.read_samples(&c)?
                            .into_iter()
                            .filter(|s| s.t >= first_bucket && s.t <= end_ms),
                    );
                }
                let buckets = rollup::decode(&cols)?;
                if !buckets.is_empty() {
                    per_series.entry(labels).or_default().push(buckets);
                }
            }
        }
        // Ranges without rollup blocks (recent data, blocks not compacted yet) are
        // aggregated from raw samples.
        let mut gaps = Vec::new();
        let mut from = first_bucket;
        for b in &rollup_blocks {
            if b.meta().min_t > from {
                gaps.push((from, b.meta().min_t - 1));
            }
            from = from.max(b.meta().max_t);
        }
        if from <= end_ms {
            gaps.push((from, end_ms));
        }
        for (gs, ge) in gaps {
            for s in self.select(matchers, gs, ge.min(end_ms))? {
                let s = s?;
                let b = rollup::aggregate(&s.samples, res);
                per_series.entry(s.labels).or_default().push(b);
            }
        }
        for parts in per_series.values_mut() {
            parts.sort_by_key(|p| p.first().map_or(i64::MIN, |b| b.t));
        }
        Ok(per_series
            .into_iter()
            .map(|(l, parts)| (l, rollup::merge_sorted(parts)))
            .collect())
    }

    /// All label names in the store (head and blocks), sorted.
    pub fn label_names(&self) -> Vec<String> {
        let head = read(&self.inner.head);
        let blocks = read(&self.inner.blocks);
        let mut names: Vec<String> = head.index().label_names();
        for b in &blocks.raw {
            // A damaged block must not hide the other blocks' names: log and go on.
            match b.index().label_names() {
                Ok(n) => names.extend(n),
                Err(e) => tracing::error!(error = %e, "reading label names of a block"),
            }
        }
        names.sort();
        names.dedup();
        names
    }

    /// All values of label `name` in the store, sorted.
    pub fn label_values(&self, name: &str) -> Vec<String> {
        let head = read(&self.inner.head);
        let blocks = read(&self.inner.blocks);
        let mut values: Vec<String> = head.index().label_values(name);
        for b in &blocks.raw {
            match b.index().label_values(name) {
                Ok(v) => values.extend(v),
                Err(e) => tracing::error!(error = %e, "reading label values of a block"),
            }
        }
        values.sort();
        values.dedup();
        values
    }

    /// One maintenance step: cut head ranges that are 1.5 blocks old into blocks (with
    /// rollups), compact, apply retention. Call it periodically (e.g. every minute).
    pub fn maintain(&self) -> Result<MaintainReport> {
        let d = self.inner.opts.block_duration_ms;
        let mut rep = MaintainReport::default();
        loop {
            let range = {
                let h = read(&self.inner.head);
                let bs = h.min_t().div_euclid(d) * d;
                (h.num_samples() > 0 && h.max_t() - bs >= d + d / 2).then_some(bs)
            };
            let Some(bs) = range else { break };
            self.cut_block(bs, bs + d)?;
            rep.blocks_cut += 1;
        }
        rep.compactions = self.compact()?;
        rep.blocks_deleted = self.apply_retention()?;
        Ok(rep)
    }

    /// Seals everything in the head into blocks now (for shutdown, tests and benchmarks).
    /// Afterwards the head accepts only samples after the end of the last sealed block.
    pub fn seal_head(&self) -> Result<u64> {
        let d = self.inner.opts.block_duration_ms;
        let mut n = 0;
        loop {
            let range = {
                let h = read(&self.inner.head);
                (h.num_samples() > 0).then(|| h.min_t().div_euclid(d) * d)
            };
            let Some(bs) = range else { break };
            self.cut_block(bs, bs + d)?;
            n += 1;
        }
        Ok(n)
    }

    fn cut_block(&self, min_t: i64, max_t: i64) -> Result<()> {
        let inner = &*self.inner;
        let mut wal = lock(&inner.wal);
        let data = read(&inner.head).collect_before(max_t);
        let mut new_blocks: Vec<(i64, Arc<Block>)> = Vec::new();
        if !data.is_empty() {
            let meta = BlockMeta {
                version: 2,
                min_t,
                max_t,
                resolution_ms: 0,
                num_series: 0,
                num_samples: 0,
                num_chunks: 0,
                level: 0,
                sources: vec![],
            };
            // Sealed blocks hold each series' samples re-encoded in large chunks, in the
            // smaller of XOR and pco.
            let decoded: Vec<(Labels, Vec<Sample>)> = data
                .iter()
                .map(|(l, chunks)| {
                    let samples: Vec<Sample> =
                        chunks.iter().flat_map(|c| XorIter::new(&c.bytes)).collect();
                    (l.clone(), samples)
                })
                .collect();
            let series = decoded
                .iter()
                .map(|(l, samples)| (l.clone(), ChunkData::seal(0, samples)));
            let path = write_block(&self.blocks_dir(0), meta.clone(), series)?;
            new_blocks.push((0, Arc::new(Block::open(&path)?)));
            // Rollups are normally built when cut blocks are compacted (fewer, larger
            // rollup blocks); only when no compaction can happen are they built here.
            if inner.opts.rollups
                && inner.opts.effective_max_block_ms() == inner.opts.block_duration_ms
            {
                let series = decoded.iter().map(|(l, s)| Ok((l.clone(), s.clone())));
                new_blocks.extend(self.write_rollups(series, min_t, max_t)?);
            }
        }
        {
            let mut head = write(&inner.head);
            head.truncate_before(max_t);
            let mut blocks = write(&inner.blocks);
            for (res, b) in new_blocks {
                let list = blocks.list_mut(res);
                list.push(b);
                list.sort_by_key(|b| b.meta().min_t);
            }
        }
        inner.metrics.blocks_cut.fetch_add(1, Relaxed);
        let head = read(&inner.head);
        wal.checkpoint(checkpoint_records(&head))?;
        Ok(())
    }

    /// Writes the rollup blocks of every resolution for `series` over `[min_t, max_t)`.
    /// Series are aggregated one at a time, so memory holds only the (small) rollups.
    fn write_rollups<'a>(
        &self,
        series: impl IntoIterator<Item = Result<(Labels, Vec<Sample>)>> + 'a,
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<(i64, Arc<Block>)>> {
        let mut per_res: Vec<(RolledSeries, u64)> =
            RESOLUTIONS.iter().map(|_| (Vec::new(), 0)).collect();
        for item in series {
            let (labels, samples) = item?;
            for (k, &res) in RESOLUTIONS.iter().enumerate() {
                let buckets = rollup::aggregate(&samples, res);
                per_res[k].1 += buckets.len() as u64;
                per_res[k]
                    .0
                    .push((labels.clone(), rollup::encode(&buckets)));
            }
        }
        let mut out = Vec::new();
        for (k, (rolled, nbuckets)) in per_res.into_iter().enumerate() {
            let res = RESOLUTIONS[k];
            let meta = BlockMeta {
                version: 2,
                min_t,
                max_t,
                resolution_ms: res,
                num_series: 0,
                num_samples: nbuckets,
                num_chunks: 0,
                level: 0,
                sources: vec![],
            };
            let path = write_block(&self.blocks_dir(res), meta, rolled)?;
            out.push((res, Arc::new(Block::open(&path)?)));
        }
        Ok(out)
    }

    /// Builds rollups for runs of contiguous cut (level 0) blocks about to be compacted.
    fn rollups_for_sources(&self, sources: &[Arc<Block>]) -> Result<()> {
        let mut i = 0;
        while i < sources.len() {
            if sources[i].meta().level != 0 {
                i += 1;
                continue;
            }
            let mut j = i;
            while j + 1 < sources.len()
                && sources[j + 1].meta().level == 0
                && sources[j + 1].meta().min_t == sources[j].meta().max_t
            {
                j += 1;
            }
            let run = &sources[i..=j];
            let mut labels = std::collections::BTreeSet::new();
            for b in run {
                for r in 0..b.index().len() as u32 {
                    labels.insert(b.index().labels(r)?);
                }
            }
            let series = labels.into_iter().map(|l| {
                let mut samples = Vec::new();
                for b in run {
                    if let Some(r) = b.index().find(&l)? {
                        for c in b.chunk_refs(r)? {
                            samples.extend(b.read_samples(&c)?);
                        }
                    }
                }
                Ok((l, samples))
            });
            let (min_t, max_t) = (run[0].meta().min_t, run[run.len() - 1].meta().max_t);
            let built = self.write_rollups(series, min_t, max_t)?;
            let mut blocks = write(&self.inner.blocks);
            for (res, b) in built {
                let l = blocks.list_mut(res);
                l.retain(|x| x.meta().min_t != min_t || x.meta().max_t != max_t);
                l.push(b);
                l.sort_by_key(|b| b.meta().min_t);
            }
            i = j + 1;
        }
        Ok(())
    }

    fn blocks_dir(&self, res: i64) -> PathBuf {
        self.inner.dir.join("blocks").join(resolution_dir(res))
    }

    /// Compacts until nothing is left to merge; returns the number of merges.
    pub fn compact(&self) -> Result<u64> {
        let inner = &*self.inner;
        let mut n = 0;
        for res in std::iter::once(0).chain(RESOLUTIONS) {
            loop {
                let complete_before = read(&inner.head).min_valid_t();
                let list: Vec<Arc<Block>> = read(&inner.blocks).list(res).to_vec();
                let metas: Vec<&BlockMeta> = list.iter().map(|b| b.meta()).collect();
                let Some(idx) = compaction::plan(
                    &metas,
                    complete_before,
                    inner.opts.block_duration_ms,
                    inner.opts.effective_max_block_ms(),
                ) else {
                    break;
                };
                let sources: Vec<Arc<Block>> = idx.iter().map(|&i| list[i].clone()).collect();
                if res == 0 && inner.opts.rollups {
                    // Before the merge, so an interruption leaves the sources to redo it.
                    self.rollups_for_sources(&sources)?;
                }
                let path = compaction::merge(&self.blocks_dir(res), &sources)?;
                let merged = Arc::new(Block::open(&path)?);
                {
                    let mut blocks = write(&inner.blocks);
                    let l = blocks.list_mut(res);
                    l.retain(|b| !sources.iter().any(|s| Arc::ptr_eq(s, b)));
                    l.push(merged);
                    l.sort_by_key(|b| b.meta().min_t);
                }
                for s in &sources {
                    fs::remove_dir_all(s.dir()).map_err(|e| StorageError::io(s.dir(), e))?;
                }
                inner.metrics.compactions.fetch_add(1, Relaxed);
                n += 1;
            }
        }
        Ok(n)
    }

    /// Deletes whole blocks past the retention age or beyond the size limit.
    pub fn apply_retention(&self) -> Result<u64> {
        let inner = &*self.inner;
        let newest = {
            let head = read(&inner.head);
            let blocks = read(&inner.blocks);
            let b = blocks.raw.last().map_or(i64::MIN, |b| b.meta().max_t);
            head.max_t().max(b)
        };
        if newest == i64::MIN {
            return Ok(0);
        }
        let mut deleted = 0;
        for res in std::iter::once(0).chain(RESOLUTIONS) {
            let (age, bytes) = if res == 0 {
                (inner.opts.retention_age_ms, inner.opts.retention_bytes)
            } else {
                (inner.opts.rollup_retention_age_ms, None)
            };
            let victims: Vec<Arc<Block>> = {
                let mut blocks = write(&inner.blocks);
                let list = blocks.list_mut(res);
                let infos: Vec<BlockInfo> = list
                    .iter()
                    .map(|b| BlockInfo {
                        max_t: b.meta().max_t,
                        size_bytes: b.size_bytes(),
                    })
                    .collect();
                let idx = retention::expired(&infos, newest, age, bytes);
                let victims: Vec<Arc<Block>> = idx.iter().map(|&i| list[i].clone()).collect();
                list.retain(|b| !victims.iter().any(|v| Arc::ptr_eq(v, b)));
                victims
            };
            for v in victims {
                tracing::info!(block = %v.dir().display(), "retention: deleting block");
                fs::remove_dir_all(v.dir()).map_err(|e| StorageError::io(v.dir(), e))?;
                inner.metrics.blocks_deleted.fetch_add(1, Relaxed);
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    /// Flushes the WAL to stable storage now (useful with `every_second` before shutdown).
    pub fn sync(&self) -> Result<()> {
        lock(&self.inner.wal).sync()
    }

    /// A snapshot of the self-metrics.
    pub fn metrics(&self) -> MetricsSnapshot {
        let inner = &*self.inner;
        let m = &inner.metrics;
        let (head_series, head_samples, head_bytes) = {
            let h = read(&inner.head);
            (h.num_series() as u64, h.num_samples(), h.heap_size() as u64)
        };
        let wal_bytes = lock(&inner.wal).size_bytes();
        let blocks = read(&inner.blocks);
        let rollup_blocks: usize = blocks.rollups.values().map(|v| v.len()).sum();
        let block_bytes: u64 = blocks
            .raw
            .iter()
            .chain(blocks.rollups.values().flatten())
            .map(|b| b.size_bytes())
            .sum();
        let block_index_bytes: u64 = blocks
            .raw
            .iter()
            .chain(blocks.rollups.values().flatten())
            .map(|b| b.heap_size() as u64)
            .sum();
        MetricsSnapshot {
            block_index_bytes,
            samples_appended: m.samples_appended.load(Relaxed),
            samples_duplicate: m.samples_duplicate.load(Relaxed),
            wal_group_syncs: m.wal_group_syncs.load(Relaxed),
            samples_rejected: m.samples_rejected.load(Relaxed),
            series_created: m.series_created.load(Relaxed),
            append_batches: m.append_batches.load(Relaxed),
            head_series,
            head_samples,
            head_bytes,
            wal_bytes,
            wal_truncated_bytes: m.wal_truncated_bytes.load(Relaxed),
            raw_blocks: blocks.raw.len() as u64,
            rollup_blocks: rollup_blocks as u64,
            block_bytes,
            blocks_cut: m.blocks_cut.load(Relaxed),
            compactions: m.compactions.load(Relaxed),
            blocks_deleted: m.blocks_deleted.load(Relaxed),
            queries: m.queries.load(Relaxed),
            query_micros_total: m.query_micros_total.load(Relaxed),
            query_micros_max: m.query_micros_max.load(Relaxed),
        }
    }

    /// Metadata of the blocks of one resolution (0 = raw), oldest first.
    pub fn block_metas(&self, res: i64) -> Vec<BlockMeta> {
        read(&self.inner.blocks)
            .list(res)
            .iter()
            .map(|b| b.meta().clone())
            .collect()
    }

    pub(crate) fn record_query(&self, d: Duration) {
        self.inner.metrics.record_query(d);
    }
}

/// Checks that every series' samples are in timestamp order, before anything is stored
/// (labels are checked by [`Head::plan`], for the series it does not hold yet).
fn check_sample_order(batch: &[SeriesSamplesRef<'_>]) -> Result<()> {
    for (i, ss) in batch.iter().enumerate() {
        if let Some(w) = ss.samples.windows(2).find(|w| w[1].t < w[0].t) {
            return Err(StorageError::InvalidBatch {
                series_index: i,
                reason: format!(
                    "{}: samples not in timestamp order ({} after {})",
                    ss.labels, w[1].t, w[0].t
                ),
            });
        }
    }
    Ok(())
}
