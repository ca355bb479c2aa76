//! Following files: reading what was appended, cutting it into lines,
//! decoding, re-joining fragments and multiline events, and noticing
//! rotation.
//!
//! - **Rename rotation and deletion.** A file is followed by its open
//!   descriptor. When its path disappears or names another inode, the old
//!   file is read to its end first — the file now at the path is not read
//!   before that — and closed once nothing was appended for `rotate_wait`.
//!   After a restart, a checkpointed file no longer at its path is looked
//!   for (same device, inode and fingerprint) in the same directory, where
//!   rotation left it, and read to its end too. Files a fast writer created
//!   and rotated away between two listings are found under their rotated
//!   names (siblings `<name>.*` written since the replaced file was opened)
//!   and read in order between the old and the new file.
//! - **copytruncate.** A file shorter than what was read, or whose head no
//!   longer matches its fingerprint, was truncated: reading restarts at 0.
//!   The lines written between the last read and the truncation are lost
//!   (they are only in the copy), as with every tailer.
//! - **Limits.** A physical line longer than the raw limit is cut while
//!   being read (its rest skipped, never buffered); entries are cut at
//!   `max_line_bytes` and end with [`super::TRUNCATION_MARKER`]. Invalid
//!   UTF-8 is replaced (U+FFFD).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::TRUNCATION_MARKER;
use super::batch::Batch;
use super::checkpoint::{FileState, Partial, Pending};
use super::discover::{self, Discovered, FileLabels, MetaIndex, Origin, Roots};
use super::file_id::{FileKey, Fingerprint};
use super::format::{self, LogFormat};
use super::multiline::{self, Entry, MultilineRule};
use super::stats::LogStats;
use crate::snapshot::Snapshot;

/// How the tailer behaves.
#[derive(Debug, Clone)]
pub struct TailerOptions {
    /// The `node` label.
    pub node: String,
    /// Where to find files.
    pub roots: Roots,
    /// Longest entry.
    pub max_line_bytes: usize,
    /// Start files met at the very first start at their end.
    pub start_at_end: bool,
    /// How long a rotated file stays open after its last byte.
    pub rotate_wait: std::time::Duration,
    /// Multiline rule of container logs.
    pub container_multiline: Option<MultilineRule>,
    /// Multiline rule per plain source (same order as `roots.plain`).
    pub plain_multiline: Vec<Option<MultilineRule>>,
    /// Bytes read per file per call of [`Tailer::poll`] (fairness).
    pub read_chunk: usize,
}

struct TailedFile {
    path: PathBuf,
    file: File,
    fingerprint: Fingerprint,
    /// File position of `buf[0]`: everything before is consumed.
    offset: u64,
    /// Next position to read.
    read_pos: u64,
    /// Bytes read but not yet a complete line.
    buf: Vec<u8>,
    /// Skipping the rest of an over-long line.
    discarding: bool,
    format: Option<LogFormat>,
    pending: Pending,
    origin: Origin,
    labels: FileLabels,
    /// Renamed away or deleted at this time.
    rotated: Option<Instant>,
    last_data: Instant,
    at_eof: bool,
    /// Read only once this file has been read to its end (the file this one
    /// replaced at its path).
    after: Option<FileKey>,
    dirty: bool,
    /// When it was opened (to tell rotated siblings written since).
    opened_at: SystemTime,
}

/// The files being followed.
pub struct Tailer {
    opts: TailerOptions,
    raw_limit: usize,
    files: BTreeMap<FileKey, TailedFile>,
    restored: HashMap<FileKey, FileState>,
    first_discovery: bool,
    index: MetaIndex,
    finished: Vec<FileState>,
    /// Files let go recently, by key: if one is found again (a glob that
    /// matches a rotated name, a listing that missed it once) it resumes
    /// where it was left instead of being read twice.
    gone: HashMap<FileKey, (Instant, FileState)>,
    started: SystemTime,
    stats: Arc<LogStats>,
}

/// How long a let-go file's position is remembered.
const GONE_MEMORY: std::time::Duration = std::time::Duration::from_secs(600);

impl Tailer {
    /// A tailer resuming from `restored` file states (checkpoint plus
    /// spooled batches); `first_start` when there was no state at all.
    pub fn new(
        opts: TailerOptions,
        restored: impl IntoIterator<Item = FileState>,
        first_start: bool,
        stats: Arc<LogStats>,
    ) -> Self {
        let raw_limit = opts.max_line_bytes.saturating_mul(4).max(64 << 10);
        Self {
            raw_limit,
            opts,
            files: BTreeMap::new(),
            restored: restored.into_iter().map(|s| (s.key, s)).collect(),
            first_discovery: first_start,
            index: MetaIndex::default(),
            finished: Vec::new(),
            gone: HashMap::new(),
            started: SystemTime::now(),
            stats,
        }
    }

    /// Files open.
    pub fn open_files(&self) -> usize {
        self.files.len()
    }

    /// Takes in the agent's latest container metadata; files whose
    /// container was not known yet are labelled again.
    pub fn set_metadata(&mut self, snap: &Snapshot) {
        if snap.timestamp_ms == self.index.timestamp_ms {
            return;
        }
        self.index = MetaIndex::from_snapshot(snap);
        let (opts, index) = (&self.opts, &self.index);
        for (key, f) in &mut self.files {
            if f.labels.incomplete {
                let found = Discovered {
                    path: f.path.clone(),
                    key: *key,
                    origin: f.origin.clone(),
                };
                f.labels = labels_of(opts, index, &found);
            }
        }
    }

    fn labels(&self, found: &Discovered) -> FileLabels {
        labels_of(&self.opts, &self.index, found)
    }

    /// Lists the roots: opens new files, marks files gone from their path
    /// as rotated.
    pub fn discover(&mut self, now: Instant) {
        let found = discover::discover(&self.opts.roots);
        self.apply_listing(&found, now);
    }

    /// Acts on one listing of the roots. The files may have changed since
    /// it was taken (a rotation in between): what is opened is checked
    /// against the listed key, and a checkpointed file that could not be
    /// opened under its listed path is looked for where rotation moved it.
    fn apply_listing(&mut self, found: &[Discovered], now: Instant) {
        let present: HashMap<FileKey, &Discovered> = found.iter().map(|d| (d.key, d)).collect();
        // Files no longer under their path: rotated or deleted.
        for (key, f) in &mut self.files {
            if f.rotated.is_none() && !present.contains_key(key) {
                f.rotated = Some(now);
                f.at_eof = false;
                LogStats::add(&self.stats.rotations, 1);
            }
        }
        // The file most recently opened under each path is the one a new
        // file there replaces.
        let mut by_path: HashMap<PathBuf, (SystemTime, FileKey)> = HashMap::new();
        for (k, f) in &self.files {
            let e = by_path.entry(f.path.clone()).or_insert((f.opened_at, *k));
            if f.opened_at > e.0 {
                *e = (f.opened_at, *k);
            }
        }
        let first = std::mem::take(&mut self.first_discovery);
        for d in found {
            if self.files.contains_key(&d.key) {
                continue;
            }
            let restored = self
                .restored
                .remove(&d.key)
                .or_else(|| self.gone.remove(&d.key).map(|(_, s)| s));
            let old = by_path.get(&d.path).map(|(_, k)| *k);
            let after = if first {
                old
            } else {
                self.pick_up_missed_rotations(d, old, now)
            };
            if !self.open(d, restored.clone(), first, after, now)
                && let Some(state) = restored
            {
                // Rotated away between the listing and the open: its
                // position must not be forgotten (the file would be read
                // again from its start, or not at all, once found under
                // its rotated name). Look for it below, as for a file
                // rotated while the agent was down.
                self.restored.insert(state.key, state);
            }
        }
        // Checkpointed files not found under their path: rotated while the
        // agent was down. Find them next to it and read them to their end,
        // then the files rotated after them, then the file now at the path.
        // (One at a time: a leftover may be opened as another's rotated
        // sibling, with its checkpoint.)
        while let Some(next) = self.restored.keys().next().copied() {
            let state = self.restored.remove(&next).expect("key listed");
            let origin = found
                .iter()
                .find(|d| d.path == state.path)
                .map(|d| d.origin.clone());
            let successor = found
                .iter()
                .find(|d| d.path == state.path && d.key != state.key)
                .map(|d| d.key);
            let located = origin.and_then(|o| find_by_key(&state.path, state.key).map(|p| (o, p)));
            let Some((origin, rotated_path)) = located else {
                self.finished.push(FileState {
                    finished: true,
                    ..state
                });
                continue;
            };
            let d = Discovered {
                path: state.path.clone(),
                key: state.key,
                origin,
            };
            let key = state.key;
            let since = std::fs::metadata(&rotated_path)
                .and_then(|m| m.modified())
                .ok();
            if !self.open_at(&d, &rotated_path, Some(state), false, None, now) {
                continue;
            }
            if let Some(f) = self.files.get_mut(&key) {
                f.rotated = Some(now);
            }
            LogStats::add(&self.stats.rotations, 1);
            // Files rotated away after it while the agent was down were
            // written after its last byte.
            let last = match since {
                Some(since) => self.open_rotated_siblings(&d, since, Some(key), now),
                None => Some(key),
            };
            // The file now at the path (and the files already chained
            // before it) waits for these: the chain's head gets them.
            if let Some(s) = successor {
                let head = self.chain_head(s);
                if Some(head) != last
                    && head != key
                    && let Some(f) = self.files.get_mut(&head)
                {
                    f.after = last;
                }
            }
        }
        self.stats.files_open.store(
            self.files.len() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// The first file of the chain of files `key` waits for (through
    /// `after`), that is the oldest file still waited on.
    fn chain_head(&self, key: FileKey) -> FileKey {
        let mut head = key;
        // Bounded: a chain is a few rotations long; never loop on a cycle.
        for _ in 0..64 {
            match self.files.get(&head).and_then(|f| f.after) {
                Some(a) if a != key && self.files.contains_key(&a) => head = a,
                _ => break,
            }
        }
        head
    }

    fn open(
        &mut self,
        d: &Discovered,
        restored: Option<FileState>,
        first: bool,
        after: Option<FileKey>,
        now: Instant,
    ) -> bool {
        let path = d.path.clone();
        self.open_at(d, &path, restored, first, after, now)
    }

    fn open_at(
        &mut self,
        d: &Discovered,
        open_path: &Path,
        restored: Option<FileState>,
        start_at_end: bool,
        after: Option<FileKey>,
        now: Instant,
    ) -> bool {
        let file = match File::open(open_path) {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!(path = %open_path.display(), error = %e, "cannot open a log file");
                LogStats::add(&self.stats.read_errors, 1);
                return false;
            }
        };
        // The descriptor is what is read: make sure it is the file found.
        match file.metadata() {
            Ok(m) if FileKey::of(&m) == d.key => {}
            _ => return false,
        }
        let fingerprint = Fingerprint::read(&file).unwrap_or_default();
        let (offset, pending, fingerprint) = match restored {
            Some(s) if s.fingerprint.matches(&file).unwrap_or(false) => {
                (s.offset, s.pending, s.fingerprint)
            }
            _ if start_at_end && self.opts.start_at_end => (
                file.metadata().map(|m| m.len()).unwrap_or(0),
                Pending::default(),
                fingerprint,
            ),
            _ => (0, Pending::default(), fingerprint),
        };
        let labels = self.labels(d);
        self.files.insert(
            d.key,
            TailedFile {
                path: d.path.clone(),
                file,
                fingerprint,
                offset,
                read_pos: offset,
                buf: Vec::new(),
                discarding: false,
                format: None,
                pending,
                origin: d.origin.clone(),
                labels,
                rotated: None,
                last_data: now,
                at_eof: false,
                after,
                dirty: true,
                opened_at: SystemTime::now(),
            },
        );
        true
    }

    /// A file replaced `old` at `d`'s path. If the writer rotated more than
    /// once since the last listing, the files in between are already under
    /// rotated names (`0.log.<time>`, `<id>-json.log.1`) and were never
    /// seen: open those written since `old` was opened, oldest first, to
    /// be read after `old` and before `d`. Returns the key `d` must wait
    /// for.
    fn pick_up_missed_rotations(
        &mut self,
        d: &Discovered,
        old: Option<FileKey>,
        now: Instant,
    ) -> Option<FileKey> {
        // Without a file followed at this path, only siblings written since
        // the tailer started were missed (older ones are history).
        let since = match old {
            Some(old) => match self.files.get(&old) {
                Some(f) => f.opened_at,
                None => return Some(old),
            },
            None => self.started,
        };
        self.open_rotated_siblings(d, since, old, now)
    }

    /// Opens the siblings `<name>.*` of `d`'s path written after `since`
    /// that are not followed (rotated names of files never seen, or of
    /// checkpointed files), oldest first, each to be read after the one
    /// before, the first after `first_after`. Returns the last of the
    /// chain.
    fn open_rotated_siblings(
        &mut self,
        d: &Discovered,
        since: SystemTime,
        first_after: Option<FileKey>,
        now: Instant,
    ) -> Option<FileKey> {
        let (Some(dir), Some(name)) = (d.path.parent(), d.path.file_name()) else {
            return first_after;
        };
        let prefix = format!("{}.", name.to_string_lossy());
        let mut missed: Vec<(SystemTime, FileKey, PathBuf)> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter(|e| {
                let n = e.file_name();
                let n = n.to_string_lossy();
                n.starts_with(&prefix) && !n.ends_with(".gz")
            })
            .filter_map(|e| {
                let m = std::fs::metadata(e.path()).ok()?;
                let key = FileKey::of(&m);
                let mtime = m.modified().ok()?;
                (m.is_file()
                    && mtime > since
                    && key != d.key
                    && !self.files.contains_key(&key)
                    && !self.gone.contains_key(&key))
                .then(|| (mtime, key, e.path()))
            })
            .collect();
        missed.sort();
        let mut last = first_after;
        for (_, key, path) in missed {
            let sibling = Discovered {
                path: d.path.clone(),
                key,
                origin: d.origin.clone(),
            };
            // A checkpointed file found under its rotated name resumes at
            // its checkpoint, never from its start.
            let restored = self.restored.remove(&key);
            if self.open_at(&sibling, &path, restored, false, last, now) {
                if let Some(f) = self.files.get_mut(&key) {
                    f.rotated = Some(now);
                }
                tracing::info!(path = %path.display(), "picked up a log file rotated away before it was seen");
                LogStats::add(&self.stats.rotations, 1);
                last = Some(key);
            }
        }
        last
    }

    /// Reads what every file has new (at most `read_chunk` bytes each),
    /// adds the completed entries to `batch`, emits timed-out multiline
    /// events and closes rotated files that are done. Returns the bytes
    /// read. Reading stops early once `batch` holds `batch_limit` bytes.
    pub fn poll(&mut self, batch: &mut Batch, now: Instant, batch_limit: usize) -> usize {
        let now_ns = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        let mut total = 0;
        let keys: Vec<FileKey> = self.files.keys().copied().collect();
        let mut done = Vec::new();
        for key in keys {
            // A file replacing a rotated one waits until that one is read to
            // its end.
            let gated = self.files[&key]
                .after
                .and_then(|a| self.files.get(&a))
                .is_some_and(|old| !old.at_eof);
            if gated || batch.bytes() >= batch_limit {
                continue;
            }
            // The file waited for was read to its end: no more waiting (its
            // inode may be reused by a newer file once it is let go).
            if let Some(f) = self.files.get_mut(&key) {
                f.after = None;
            }
            let ctx = Ctx {
                max_line_bytes: self.opts.max_line_bytes,
                raw_limit: self.raw_limit,
                rule: match &self.files[&key].origin {
                    Origin::Container(_) => self.opts.container_multiline.as_ref(),
                    Origin::Plain(i) => self.opts.plain_multiline.get(*i).and_then(Option::as_ref),
                },
                stats: &self.stats,
                now,
                now_ns,
            };
            let f = self.files.get_mut(&key).expect("key listed");
            match f.read(&ctx, batch, self.opts.read_chunk, batch_limit) {
                Ok(n) => total += n,
                Err(e) => {
                    tracing::debug!(path = %f.path.display(), error = %e, "cannot read a log file");
                    LogStats::add(&self.stats.read_errors, 1);
                }
            }
            f.flush_stale(&ctx, batch);
            if let Some(rotated) = f.rotated
                && f.at_eof
                && now.duration_since(rotated) >= self.opts.rotate_wait
                && now.duration_since(f.last_data) >= self.opts.rotate_wait
            {
                f.flush_all(&ctx, batch);
                done.push(key);
            }
        }
        for key in done {
            let f = self.files.remove(&key).expect("key listed");
            for other in self.files.values_mut() {
                if other.after == Some(key) {
                    other.after = None;
                }
            }
            let mut state = f.state(key);
            self.gone.insert(key, (now, state.clone()));
            state.finished = true;
            self.finished.push(state);
        }
        if !self.gone.is_empty() {
            self.gone
                .retain(|_, (at, _)| now.duration_since(*at) < GONE_MEMORY);
        }
        self.stats.files_open.store(
            self.files.len() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        total
    }

    /// The state of every file changed since the last call (and of files
    /// let go), to be stored with the batch sealed now.
    pub fn take_delta(&mut self) -> Vec<FileState> {
        let mut delta = std::mem::take(&mut self.finished);
        for (key, f) in &mut self.files {
            if f.dirty {
                f.dirty = false;
                delta.push(f.state(*key));
            }
        }
        delta
    }
}

fn labels_of(opts: &TailerOptions, index: &MetaIndex, found: &Discovered) -> FileLabels {
    discover::file_labels(
        found,
        &opts.node,
        &opts.roots.plain,
        index,
        opts.roots.docker_root.as_deref(),
    )
}

/// Looks in `path`'s directory for the file with `key` (where a rotation
/// moved it).
fn find_by_key(path: &Path, key: FileKey) -> Option<PathBuf> {
    let dir = path.parent()?;
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| std::fs::metadata(p).is_ok_and(|m| FileKey::of(&m) == key))
}

struct Ctx<'a> {
    max_line_bytes: usize,
    raw_limit: usize,
    rule: Option<&'a MultilineRule>,
    stats: &'a LogStats,
    now: Instant,
    now_ns: i64,
}

impl TailedFile {
    fn state(&self, key: FileKey) -> FileState {
        FileState {
            key,
            path: self.path.clone(),
            fingerprint: self.fingerprint,
            offset: self.offset,
            pending: self.pending.clone(),
            finished: false,
        }
    }

    fn read(
        &mut self,
        ctx: &Ctx<'_>,
        batch: &mut Batch,
        budget: usize,
        batch_limit: usize,
    ) -> std::io::Result<usize> {
        let size = self.file.metadata()?.len();
        if size != self.read_pos {
            let truncated = size < self.read_pos
                || (self.fingerprint.len > 0 && !self.fingerprint.matches(&self.file)?);
            if truncated {
                self.restart(ctx, batch)?;
            } else if !self.fingerprint.is_complete() && size > u64::from(self.fingerprint.len) {
                self.fingerprint = Fingerprint::read(&self.file)?;
                self.dirty = true;
            }
        }
        if size <= self.read_pos {
            self.at_eof = true;
            return Ok(0);
        }
        let mut total = 0;
        while total < budget && batch.bytes() < batch_limit {
            let want = (budget - total).min(64 << 10);
            let start = self.buf.len();
            self.buf.resize(start + want, 0);
            let n = loop {
                match self.file.read_at(&mut self.buf[start..], self.read_pos) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    r => break r,
                }
            };
            let n = match n {
                Ok(n) => n,
                Err(e) => {
                    self.buf.truncate(start);
                    return Err(e);
                }
            };
            self.buf.truncate(start + n);
            if n == 0 {
                self.at_eof = true;
                break;
            }
            self.at_eof = false;
            self.last_data = ctx.now;
            self.read_pos += n as u64;
            total += n;
            self.consume(ctx, batch, start);
        }
        LogStats::add(&ctx.stats.bytes_read, total as u64);
        // Keep only the partial line between reads, not the read buffer:
        // thousands of mostly idle files must not hold 64 KiB each.
        if self.buf.capacity() > 16 << 10 && self.buf.len() <= 4 << 10 {
            self.buf.shrink_to(4 << 10);
        }
        Ok(total)
    }

    /// Cuts the complete lines out of `buf` (new bytes from `new_from`).
    fn consume(&mut self, ctx: &Ctx<'_>, batch: &mut Batch, new_from: usize) {
        let mut line_start = 0;
        let mut search = new_from;
        if self.discarding {
            // `buf[..raw_limit]` is the kept head of a long line; skip new
            // bytes up to its newline.
            let kept = ctx.raw_limit.min(new_from);
            match memchr(&self.buf[new_from..]) {
                None => {
                    self.buf.truncate(kept);
                    return;
                }
                Some(i) => {
                    let end = new_from + i;
                    let line = self.buf[..kept].to_vec();
                    // Position after this line's newline.
                    let line_end = self.read_pos - (self.buf.len() - end - 1) as u64;
                    self.discarding = false;
                    self.handle_line(ctx, batch, &line, true);
                    self.buf.drain(..end + 1);
                    self.offset = line_end;
                    search = 0;
                }
            }
        }
        let mut lines = 0u64;
        while let Some(i) = memchr(&self.buf[search..]) {
            let end = search + i;
            let line = std::mem::take(&mut self.buf);
            self.handle_line(ctx, batch, &line[line_start..end], false);
            self.buf = line;
            line_start = end + 1;
            search = line_start;
            lines += 1;
        }
        LogStats::add(&ctx.stats.lines_read, lines);
        if line_start > 0 {
            self.buf.drain(..line_start);
            self.offset += line_start as u64;
            self.dirty = true;
        }
        if self.buf.len() > ctx.raw_limit {
            self.buf.truncate(ctx.raw_limit);
            self.discarding = true;
        }
    }

    fn handle_line(&mut self, ctx: &Ctx<'_>, batch: &mut Batch, line: &[u8], cut: bool) {
        let format = *self.format.get_or_insert_with(|| format::detect(line));
        let (parsed, ok) = format::parse(format, line);
        if !ok {
            LogStats::add(&ctx.stats.parse_errors, 1);
        }
        let ts = parsed.ts_ns.unwrap_or(ctx.now_ns);
        let si = parsed.stream.index();
        let (ts, bytes, truncated): (i64, std::borrow::Cow<'_, [u8]>, bool) =
            if parsed.partial || self.pending.partials[si].is_some() {
                let p = self.pending.partials[si].get_or_insert_with(|| Partial {
                    ts_ns: ts,
                    bytes: Vec::new(),
                    truncated: false,
                });
                let room = ctx.max_line_bytes.saturating_sub(p.bytes.len());
                if parsed.text.len() > room {
                    p.bytes.extend_from_slice(&parsed.text[..room]);
                    p.truncated = true;
                } else {
                    p.bytes.extend_from_slice(&parsed.text);
                }
                p.truncated |= cut;
                if parsed.partial && !cut {
                    self.dirty = true;
                    return;
                }
                let p = self.pending.partials[si].take().expect("partial present");
                (p.ts_ns, p.bytes.into(), p.truncated)
            } else {
                (ts, parsed.text, cut)
            };
        let entry = make_entry(ctx, ts, &bytes, truncated);
        let labels = &self.labels.by_stream[si];
        multiline::push(
            ctx.rule,
            &mut self.pending.groups[si],
            entry,
            ctx.now,
            &mut |e| emit(ctx, batch, labels, e),
        );
        self.dirty = true;
    }

    fn flush_stale(&mut self, ctx: &Ctx<'_>, batch: &mut Batch) {
        for si in 0..3 {
            if self.pending.groups[si].is_some() {
                let labels = &self.labels.by_stream[si];
                multiline::flush_stale(ctx.rule, &mut self.pending.groups[si], ctx.now, &mut |e| {
                    emit(ctx, batch, labels, e)
                });
                self.dirty |= self.pending.groups[si].is_none();
            }
        }
    }

    /// Emits every fragment and event still pending (the file is let go or
    /// was truncated).
    fn flush_all(&mut self, ctx: &Ctx<'_>, batch: &mut Batch) {
        for si in 0..3 {
            if let Some(p) = self.pending.partials[si].take() {
                let entry = make_entry(ctx, p.ts_ns, &p.bytes, p.truncated);
                multiline::push(
                    ctx.rule,
                    &mut self.pending.groups[si],
                    entry,
                    ctx.now,
                    &mut |e| emit(ctx, batch, &self.labels.by_stream[si], e),
                );
            }
            if let Some(g) = self.pending.groups[si].take() {
                emit(ctx, batch, &self.labels.by_stream[si], g.entry);
            }
        }
        self.dirty = true;
    }

    /// The file was truncated in place: start again at 0.
    fn restart(&mut self, ctx: &Ctx<'_>, batch: &mut Batch) -> std::io::Result<()> {
        self.flush_all(ctx, batch);
        LogStats::add(&ctx.stats.truncations, 1);
        tracing::info!(path = %self.path.display(), "log file truncated (copytruncate); reading from its start");
        self.offset = 0;
        self.read_pos = 0;
        self.buf.clear();
        self.discarding = false;
        self.fingerprint = Fingerprint::read(&self.file)?;
        self.dirty = true;
        Ok(())
    }
}

fn memchr(s: &[u8]) -> Option<usize> {
    s.iter().position(|&c| c == b'\n')
}

fn emit(ctx: &Ctx<'_>, batch: &mut Batch, labels: &Arc<super::labels::StreamLabels>, e: Entry) {
    LogStats::add(&ctx.stats.entries, 1);
    if e.truncated {
        LogStats::add(&ctx.stats.truncated, 1);
    }
    batch.push(labels, e.ts_ns, e.text);
}

/// Valid UTF-8 text of at most `max_line_bytes` (plus the marker when cut).
fn make_entry(ctx: &Ctx<'_>, ts_ns: i64, bytes: &[u8], truncated: bool) -> Entry {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    let mut text = match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => {
            LogStats::add(&ctx.stats.invalid_utf8, 1);
            String::from_utf8_lossy(bytes).into_owned()
        }
    };
    let mut truncated = truncated;
    if text.len() > ctx.max_line_bytes {
        let mut cut = ctx.max_line_bytes;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        truncated = true;
    }
    if truncated {
        text.push_str(TRUNCATION_MARKER);
    }
    Entry {
        ts_ns,
        text,
        truncated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::discover::PlainSource;
    use std::io::Write;

    fn tailer(dir: &Path, max_line_bytes: usize) -> (Tailer, Arc<LogStats>) {
        let stats = Arc::new(LogStats::default());
        let t = Tailer::new(
            TailerOptions {
                node: "n".into(),
                roots: Roots {
                    plain: vec![PlainSource {
                        job: "j".into(),
                        patterns: vec![format!("{}/*.log", dir.display())],
                    }],
                    ..Roots::default()
                },
                max_line_bytes,
                start_at_end: false,
                rotate_wait: std::time::Duration::ZERO,
                container_multiline: None,
                plain_multiline: vec![None],
                read_chunk: 256 << 10,
            },
            Vec::new(),
            true,
            stats.clone(),
        );
        (t, stats)
    }

    fn lines(batch: &Batch) -> Vec<String> {
        batch
            .streams()
            .flat_map(|(_, e)| e.iter().map(|(_, l)| l.clone()))
            .collect()
    }

    #[test]
    fn an_over_long_line_is_cut_while_read_and_the_next_line_is_intact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let mut f = std::fs::File::create(&path).unwrap();
        let (mut t, stats) = tailer(dir.path(), 100);
        t.discover(Instant::now());
        let mut batch = Batch::default();
        // 300 KiB without a newline, written in pieces across polls.
        for _ in 0..3 {
            f.write_all(&vec![b'z'; 100 << 10]).unwrap();
            t.poll(&mut batch, Instant::now(), usize::MAX);
        }
        assert!(batch.is_empty());
        assert!(t.files.values().next().unwrap().buf.len() <= t.raw_limit);
        f.write_all(b"zz\nnext line\n").unwrap();
        t.poll(&mut batch, Instant::now(), usize::MAX);
        assert_eq!(
            lines(&batch),
            [
                format!("{}{TRUNCATION_MARKER}", "z".repeat(100)),
                "next line".into()
            ]
        );
        assert_eq!(LogStats::get(&stats.truncated), 1);
        let delta = t.take_delta();
        assert_eq!(delta[0].offset, (300 << 10) + 3 + 10);
    }

    #[test]
    fn a_file_found_again_after_being_let_go_is_not_read_twice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, "one\ntwo\n").unwrap();
        let (mut t, _) = tailer(dir.path(), 1000);
        let t0 = Instant::now();
        t.discover(t0);
        let mut batch = Batch::default();
        t.poll(&mut batch, t0, usize::MAX);
        assert_eq!(lines(&batch), ["one", "two"]);
        // Moved out of the glob: read to its end and let go.
        std::fs::rename(&path, dir.path().join("a.old")).unwrap();
        t.discover(t0);
        t.poll(
            &mut batch,
            t0 + std::time::Duration::from_millis(1),
            usize::MAX,
        );
        assert_eq!(t.open_files(), 0);
        assert!(t.take_delta().iter().any(|s| s.finished));
        // Back under a matching name, with one more line.
        std::fs::rename(dir.path().join("a.old"), &path).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"three\n")
            .unwrap();
        t.discover(t0);
        batch.clear();
        t.poll(&mut batch, t0, usize::MAX);
        assert_eq!(lines(&batch), ["three"]);
    }

    #[test]
    fn files_rotated_away_between_two_listings_are_read_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let pod = dir.path().join("ns_pod_uid/c");
        std::fs::create_dir_all(&pod).unwrap();
        let path = pod.join("0.log");
        let cri = |m: &str| format!("2026-11-26T23:00:00Z stdout F {m}\n");
        std::fs::write(&path, cri("a1")).unwrap();
        let stats = Arc::new(LogStats::default());
        let mut t = Tailer::new(
            TailerOptions {
                node: "n".into(),
                roots: Roots {
                    pod_log_root: Some(dir.path().to_path_buf()),
                    ..Roots::default()
                },
                max_line_bytes: 1000,
                start_at_end: false,
                rotate_wait: std::time::Duration::ZERO,
                container_multiline: None,
                plain_multiline: Vec::new(),
                read_chunk: 256 << 10,
            },
            Vec::new(),
            true,
            stats,
        );
        let now = Instant::now();
        t.discover(now);
        let mut batch = Batch::default();
        t.poll(&mut batch, now, usize::MAX);
        std::thread::sleep(std::time::Duration::from_millis(10));
        // Two rotations before the next listing.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(cri("a2").as_bytes())
            .unwrap();
        std::fs::rename(&path, pod.join("0.log.20261126-000001")).unwrap();
        std::fs::write(&path, cri("b1")).unwrap();
        std::fs::rename(&path, pod.join("0.log.20261126-000002")).unwrap();
        std::fs::write(&path, cri("c1")).unwrap();
        t.discover(now);
        for _ in 0..5 {
            t.poll(&mut batch, now, usize::MAX);
        }
        assert_eq!(lines(&batch), ["a1", "a2", "b1", "c1"]);
    }

    #[test]
    fn read_from_end_applies_to_files_found_at_the_first_start_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("old.log"), "history\n").unwrap();
        let (mut t, _) = tailer(dir.path(), 1000);
        t.opts.start_at_end = true;
        let now = Instant::now();
        t.discover(now);
        std::fs::write(dir.path().join("new.log"), "fresh\n").unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("old.log"))
            .unwrap()
            .write_all(b"appended\n")
            .unwrap();
        t.discover(now);
        let mut batch = Batch::default();
        t.poll(&mut batch, now, usize::MAX);
        let mut got = lines(&batch);
        got.sort();
        assert_eq!(got, ["appended", "fresh"]);
    }

    /// A tailer over `dir/*.log` resuming from `restored`, reading at most
    /// `read_chunk` bytes per file per poll.
    fn resumed(dir: &Path, restored: Vec<FileState>, read_chunk: usize) -> Tailer {
        let (mut t, _) = tailer(dir, 1000);
        t = Tailer::new(t.opts.clone(), restored, false, t.stats.clone());
        t.opts.read_chunk = read_chunk;
        t
    }

    fn append(path: &Path, text: &str) {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }

    /// Polls until nothing more comes.
    fn drain(t: &mut Tailer, batch: &mut Batch) {
        let mut idle = 0;
        for _ in 0..10_000 {
            if t.poll(batch, Instant::now(), usize::MAX) == 0 {
                idle += 1;
                if idle == 3 {
                    return;
                }
            } else {
                idle = 0;
            }
        }
        panic!("the tailer kept reading");
    }

    /// File modification times come from a coarse clock: make the next
    /// write's time later than anything before.
    fn tick() {
        std::thread::sleep(std::time::Duration::from_millis(30));
    }

    fn numbered(prefix: &str, n: std::ops::Range<usize>) -> (String, Vec<String>) {
        let lines: Vec<String> = n.map(|i| format!("{prefix}{i:03}")).collect();
        (lines.iter().map(|l| format!("{l}\n")).collect(), lines)
    }

    /// The race behind an out-of-order (in fact re-read) stretch seen in
    /// the kill -9 test: after a restart, the listing names the
    /// checkpointed file under its path, the writer rotates before the
    /// file is opened, so the open finds another inode and fails. The
    /// checkpoint of that file used to be consumed anyway: once found under
    /// its rotated name, it was read again from its start (duplicates,
    /// behind newer lines) or not at all.
    #[test]
    fn a_checkpointed_file_rotated_between_listing_and_open_resumes_at_its_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        append(&path, "a000\na001\n");
        let (mut t1, _) = tailer(dir.path(), 1000);
        t1.discover(Instant::now());
        let mut batch = Batch::default();
        drain(&mut t1, &mut batch);
        assert_eq!(lines(&batch), ["a000", "a001"]);
        let checkpoint = t1.take_delta();
        drop(t1); // the agent is killed

        let mut t2 = resumed(dir.path(), checkpoint, 256 << 10);
        tick();
        append(&path, "a002\n");
        let listing = discover::discover(&t2.opts.roots);
        // Rotation between the listing and the open.
        std::fs::rename(&path, dir.path().join("a.log.1")).unwrap();
        append(&path, "b000\n");
        t2.apply_listing(&listing, Instant::now());
        t2.discover(Instant::now());
        let mut batch = Batch::default();
        drain(&mut t2, &mut batch);
        assert_eq!(lines(&batch), ["a002", "b000"]);
    }

    /// After a restart, the checkpointed file A was rotated while the agent
    /// was down, then B was rotated away too after the tailer started but
    /// before its first listing, and C is at the path. C waited on A only
    /// (B's wait was overwritten), so B was read alongside A's rest.
    #[test]
    fn files_rotated_around_a_restart_are_read_in_rotation_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        append(&path, "a000\n");
        let (mut t1, _) = tailer(dir.path(), 1000);
        t1.discover(Instant::now());
        let mut batch = Batch::default();
        drain(&mut t1, &mut batch);
        let checkpoint = t1.take_delta();
        drop(t1);

        let (rest_a, mut want) = numbered("a", 1..60);
        append(&path, &rest_a);
        std::fs::rename(&path, dir.path().join("a.log.1")).unwrap();
        // The agent starts again (small reads: A takes many polls).
        let mut t2 = resumed(dir.path(), checkpoint, 16);
        tick();
        let (b, b_lines) = numbered("b", 0..20);
        append(&path, &b);
        std::fs::rename(&path, dir.path().join("a.log.2")).unwrap();
        append(&path, "c000\n");
        t2.discover(Instant::now());
        let mut batch = Batch::default();
        drain(&mut t2, &mut batch);
        want.extend(b_lines);
        want.push("c000".into());
        assert_eq!(lines(&batch), want);
    }

    /// Two rotations while the agent was down: the file rotated after the
    /// checkpointed one, never seen, is read between it and the current
    /// file (it used to be lost).
    #[test]
    fn a_file_rotated_and_replaced_while_the_agent_was_down_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        append(&path, "a000\n");
        let (mut t1, _) = tailer(dir.path(), 1000);
        t1.discover(Instant::now());
        let mut batch = Batch::default();
        drain(&mut t1, &mut batch);
        let checkpoint = t1.take_delta();
        drop(t1);

        append(&path, "a001\n");
        std::fs::rename(&path, dir.path().join("a.log.1")).unwrap();
        tick();
        append(&path, "b000\nb001\n");
        std::fs::rename(&path, dir.path().join("a.log.2")).unwrap();
        append(&path, "c000\n");
        let mut t2 = resumed(dir.path(), checkpoint, 4);
        t2.discover(Instant::now());
        let mut batch = Batch::default();
        drain(&mut t2, &mut batch);
        assert_eq!(lines(&batch), ["a001", "b000", "b001", "c000"]);
    }
}
