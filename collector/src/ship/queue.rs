//! A bounded FIFO of encoded remote-write batches, in memory up to a byte
//! bound and spilled to files past it.
//!
//! The queue is one sequence ordered by a batch number (`seq`) that only
//! grows. Its oldest part may live on disk and its newest part in memory:
//! when memory passes its bound, the *oldest* in-memory batches move to
//! disk, so every file is older than every in-memory batch and reading disk
//! first, then memory, is always oldest first. Files are named by `seq`
//! (`00000000000000000042.batch`), so a directory listing sorted by name is
//! the queue order after a restart.
//!
//! Each file is a 32-byte header (magic, `seq`, sample count, body length,
//! CRC-32 of all of it) followed by the snappy body. A file whose header or
//! checksum does not match (a crash mid-write, a truncated disk) is logged,
//! counted and deleted, never delivered and never a panic. Files are written
//! to a temporary name and renamed, without `fsync`: a process crash loses
//! nothing that was written, a power loss may lose or truncate recent files,
//! which the checksum then catches.

use std::collections::VecDeque;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use tracing::{error, info, warn};

const MAGIC: &[u8; 8] = b"OSPRWQ01";
const HEADER_LEN: usize = 32;
const FILE_SUFFIX: &str = ".batch";
const TEMP_SUFFIX: &str = ".tmp";

/// Bounds and place of a [`Queue`].
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Bytes of encoded batches kept in memory before spilling to disk.
    pub memory_bytes: u64,
    /// Bytes of spill files (headers included) kept on disk before the
    /// oldest batches are dropped.
    pub disk_bytes: u64,
    /// Directory of the spill files; `None` keeps the queue in memory only,
    /// so batches past the memory bound are dropped.
    pub spill_dir: Option<PathBuf>,
}

/// One encoded batch: a snappy-compressed `WriteRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Position in the queue; grows by one per pushed batch, across restarts.
    pub seq: u64,
    /// Number of samples in the batch, for accounting drops and deliveries.
    pub samples: u64,
    /// The remote-write body (protobuf, snappy block).
    pub body: Vec<u8>,
    /// When it was queued (after a restart: its spill file's mtime); the
    /// oldest one's age is the queue's lag.
    pub enqueued: SystemTime,
}

/// Counters and sizes of a [`Queue`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Batches waiting (memory and disk).
    pub batches: u64,
    /// Bytes of batches in memory.
    pub memory_bytes: u64,
    /// Bytes of spill files on disk.
    pub disk_bytes: u64,
    /// Batches dropped because the bounds were hit or a spill write failed.
    pub dropped_batches: u64,
    /// Samples in those dropped batches.
    pub dropped_samples: u64,
    /// Spill files found corrupt or truncated, and skipped.
    pub corrupt_files: u64,
    /// When the oldest waiting batch was queued; `None` when empty.
    pub oldest_enqueued: Option<SystemTime>,
}

/// The queue could not be opened.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot use remote-write queue directory {dir}: {source}; check that it exists and is writable, or change spill_dir"
)]
pub struct QueueError {
    dir: PathBuf,
    #[source]
    source: io::Error,
}

/// One step of a [`Queue::peek`]: a batch at hand, or a file to read.
enum Planned {
    Memory(Batch),
    Disk {
        seq: u64,
        path: PathBuf,
        enqueued: SystemTime,
    },
}

/// Locks a mutex, tolerating poison: the queue is consistent between
/// statements, so a panic elsewhere must not stop delivery.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A spilled batch: only its header is kept in memory.
#[derive(Debug)]
struct SpillFile {
    seq: u64,
    samples: u64,
    file_bytes: u64,
    enqueued: SystemTime,
}

/// The bounded FIFO. The shipper shares it behind a [`Mutex`].
#[derive(Debug)]
pub struct Queue {
    config: QueueConfig,
    /// Oldest part of the queue, on disk.
    disk: VecDeque<SpillFile>,
    disk_bytes: u64,
    /// Newest part of the queue, in memory.
    memory: VecDeque<Batch>,
    memory_bytes: u64,
    next_seq: u64,
    stats: QueueStats,
    /// Drops since the current burst began, logged when it ends.
    burst: Option<(u64, u64)>,
}

impl Queue {
    /// Opens the queue, reloading the batches a previous run spilled or
    /// persisted in `config.spill_dir`, oldest first. Corrupt files are
    /// logged, counted and deleted.
    pub fn open(config: QueueConfig) -> Result<Self, QueueError> {
        let mut queue = Self {
            config,
            disk: VecDeque::new(),
            disk_bytes: 0,
            memory: VecDeque::new(),
            memory_bytes: 0,
            next_seq: 0,
            stats: QueueStats::default(),
            burst: None,
        };
        if let Some(dir) = queue.config.spill_dir.clone() {
            queue
                .reload(&dir)
                .map_err(|source| QueueError { dir, source })?;
        }
        Ok(queue)
    }

    fn reload(&mut self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)?;
        let mut found = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.ends_with(TEMP_SUFFIX) {
                // A write interrupted by a crash; its batch never left memory.
                let _ = fs::remove_file(entry.path());
                continue;
            }
            let Some(seq) = name
                .strip_suffix(FILE_SUFFIX)
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            found.push((seq, entry.path()));
        }
        found.sort_unstable_by_key(|(seq, _)| *seq);
        for (seq, path) in found {
            self.next_seq = self.next_seq.max(seq + 1);
            match read_header(&path) {
                Ok((header, file_bytes, enqueued)) if header.seq == seq => {
                    self.disk_bytes += file_bytes;
                    self.disk.push_back(SpillFile {
                        seq,
                        samples: header.samples,
                        file_bytes,
                        enqueued,
                    });
                }
                Ok(_) => self.discard_corrupt(&path, "its header names another batch"),
                Err(e) => self.discard_corrupt(&path, &e.to_string()),
            }
        }
        if !self.disk.is_empty() {
            info!(
                batches = self.disk.len(),
                bytes = self.disk_bytes,
                dir = %dir.display(),
                "resuming remote-write delivery of batches queued by a previous run"
            );
        }
        Ok(())
    }

    fn discard_corrupt(&mut self, path: &Path, why: &str) {
        warn!(file = %path.display(), reason = why, "skipping corrupt remote-write spill file; its samples are lost");
        self.stats.corrupt_files += 1;
        let _ = fs::remove_file(path);
    }

    /// Appends a batch of `samples` samples; returns its `seq`. Never fails:
    /// when the bounds are hit the oldest batches are dropped and counted.
    pub fn push(&mut self, body: Vec<u8>, samples: u64) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        let dropped_before = self.stats.dropped_batches;
        self.memory_bytes += body.len() as u64;
        self.memory.push_back(Batch {
            seq,
            samples,
            body,
            enqueued: SystemTime::now(),
        });
        while self.memory_bytes > self.config.memory_bytes {
            let Some(oldest) = self.memory.pop_front() else {
                break;
            };
            self.memory_bytes -= oldest.body.len() as u64;
            self.spill(oldest);
        }
        if self.stats.dropped_batches == dropped_before {
            self.end_drop_burst();
        }
        seq
    }

    /// Appends a batch straight to disk and makes it durable (file and
    /// directory fsynced) before returning its `seq`: once this returns, a
    /// crash or power loss cannot lose the batch. Batches in memory are
    /// spilled first so disk stays older than memory. The disk bound still
    /// applies: past it the *oldest* batches are dropped and counted.
    ///
    /// Fails without a spill directory, or when the file cannot be written
    /// or synced; then the batch is not queued and the caller must not
    /// acknowledge it.
    pub fn push_durable(&mut self, body: Vec<u8>, samples: u64) -> io::Result<u64> {
        let Some(dir) = self.config.spill_dir.clone() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a durable queue needs a spill directory",
            ));
        };
        while let Some(batch) = self.memory.pop_front() {
            self.memory_bytes -= batch.body.len() as u64;
            self.spill(batch);
        }
        let batch = Batch {
            seq: self.next_seq,
            samples,
            body,
            enqueued: SystemTime::now(),
        };
        let file_bytes = (HEADER_LEN + batch.body.len()) as u64;
        if file_bytes > self.config.disk_bytes {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a batch of {file_bytes} bytes is larger than the whole queue bound of {} bytes",
                    self.config.disk_bytes
                ),
            ));
        }
        write_file(&dir, &batch, true)?;
        self.next_seq += 1;
        let dropped_before = self.stats.dropped_batches;
        while self.disk_bytes + file_bytes > self.config.disk_bytes {
            let Some(oldest) = self.disk.pop_front() else {
                break;
            };
            self.remove_spill_file(&oldest);
            self.drop_batches(1, oldest.samples, "the disk bound is reached");
        }
        if self.stats.dropped_batches == dropped_before {
            self.end_drop_burst();
        }
        self.disk_bytes += file_bytes;
        self.disk.push_back(SpillFile {
            seq: batch.seq,
            samples: batch.samples,
            file_bytes,
            enqueued: batch.enqueued,
        });
        Ok(batch.seq)
    }

    /// Moves `batch` to disk, dropping the oldest spilled batches to stay
    /// within the disk bound.
    fn spill(&mut self, batch: Batch) {
        let Some(dir) = self.config.spill_dir.clone() else {
            self.drop_batches(
                1,
                batch.samples,
                "the memory bound is reached and no spill directory is set",
            );
            return;
        };
        let file_bytes = (HEADER_LEN + batch.body.len()) as u64;
        if file_bytes > self.config.disk_bytes {
            self.drop_batches(
                1,
                batch.samples,
                "a batch is larger than the whole disk bound",
            );
            return;
        }
        while self.disk_bytes + file_bytes > self.config.disk_bytes {
            let Some(oldest) = self.disk.pop_front() else {
                break;
            };
            self.remove_spill_file(&oldest);
            self.drop_batches(1, oldest.samples, "the disk bound is reached");
        }
        match write_file(&dir, &batch, false) {
            Ok(()) => {
                self.disk_bytes += file_bytes;
                self.disk.push_back(SpillFile {
                    seq: batch.seq,
                    samples: batch.samples,
                    file_bytes,
                    enqueued: batch.enqueued,
                });
            }
            Err(e) => {
                error!(dir = %dir.display(), error = %e, "cannot write a remote-write spill file; check disk space and permissions");
                self.drop_batches(1, batch.samples, "a spill file could not be written");
            }
        }
    }

    fn remove_spill_file(&mut self, file: &SpillFile) {
        self.disk_bytes -= file.file_bytes;
        if let Some(dir) = &self.config.spill_dir {
            let path = file_path(dir, file.seq);
            if let Err(e) = fs::remove_file(&path)
                && e.kind() != io::ErrorKind::NotFound
            {
                warn!(file = %path.display(), error = %e, "cannot delete a remote-write spill file");
            }
        }
    }

    fn drop_batches(&mut self, batches: u64, samples: u64, why: &str) {
        self.stats.dropped_batches += batches;
        self.stats.dropped_samples += samples;
        match &mut self.burst {
            Some((b, s)) => {
                *b += batches;
                *s += samples;
            }
            None => {
                warn!(
                    reason = why,
                    "remote-write queue full: dropping the oldest batches until the receiver catches up; raise memory_bytes/disk_bytes to keep more"
                );
                self.burst = Some((batches, samples));
            }
        }
    }

    fn end_drop_burst(&mut self) {
        if let Some((batches, samples)) = self.burst.take() {
            warn!(
                batches,
                samples,
                "remote-write queue stopped dropping; this many batches and samples were lost"
            );
        }
    }

    /// `seq` of the oldest batch, if any.
    pub fn front_seq(&self) -> Option<u64> {
        self.disk
            .front()
            .map(|f| f.seq)
            .or_else(|| self.memory.front().map(|b| b.seq))
    }

    /// The oldest batches, oldest first, without removing them: always the
    /// oldest one when the queue is not empty, then following ones while
    /// their samples add up to at most `max_samples`. Corrupt spill files met
    /// on the way are skipped (logged, counted, deleted).
    ///
    /// Takes the queue's mutex rather than `&mut self` so spill files are
    /// read *outside* the lock: a producer pushing meanwhile never waits for
    /// this disk I/O.
    pub fn peek(queue: &Mutex<Queue>, max_samples: u64) -> Vec<Batch> {
        loop {
            let plan = lock(queue).plan(max_samples);
            if plan.is_empty() {
                return Vec::new();
            }
            let mut out = Vec::with_capacity(plan.len());
            for planned in plan {
                match planned {
                    Planned::Memory(batch) => out.push(batch),
                    Planned::Disk {
                        seq,
                        path,
                        enqueued,
                    } => match read_file(&path, seq, enqueued) {
                        Ok(batch) => out.push(batch),
                        Err(e) => {
                            // Either the file is bad, or the batch was
                            // dropped or delivered meanwhile (then this is
                            // a no-op). Deliver the prefix read so far.
                            lock(queue).discard_unreadable(seq, &path, &e);
                            break;
                        }
                    },
                }
            }
            if !out.is_empty() {
                return out;
            }
        }
    }

    /// What [`Queue::peek`] will return, without any file I/O.
    fn plan(&self, max_samples: u64) -> Vec<Planned> {
        let mut plan = Vec::new();
        let mut total = 0u64;
        // The first batch always goes; the next ones while they fit.
        let mut admit = |samples: u64, first: bool| {
            let fits = first || total + samples <= max_samples;
            if fits {
                total += samples;
            }
            fits
        };
        if let Some(dir) = &self.config.spill_dir {
            for file in &self.disk {
                if !admit(file.samples, plan.is_empty()) {
                    return plan;
                }
                plan.push(Planned::Disk {
                    seq: file.seq,
                    path: file_path(dir, file.seq),
                    enqueued: file.enqueued,
                });
            }
        }
        for batch in &self.memory {
            if !admit(batch.samples, plan.is_empty()) {
                break;
            }
            plan.push(Planned::Memory(batch.clone()));
        }
        plan
    }

    /// Forgets batch `seq` if it is still queued on disk: its file could
    /// not be read.
    fn discard_unreadable(&mut self, seq: u64, path: &Path, error: &io::Error) {
        if let Some(index) = self.disk.iter().position(|f| f.seq == seq) {
            if let Some(file) = self.disk.remove(index) {
                self.disk_bytes -= file.file_bytes;
            }
            self.discard_corrupt(path, &error.to_string());
        }
    }

    /// Removes every batch up to and including `seq` (delivered or given up).
    /// Batches already dropped meanwhile are simply gone.
    pub fn ack(&mut self, seq: u64) {
        while let Some(file) = self.disk.front() {
            if file.seq > seq {
                return;
            }
            let file = self.disk.pop_front().expect("front exists");
            self.remove_spill_file(&file);
        }
        while let Some(batch) = self.memory.front() {
            if batch.seq > seq {
                return;
            }
            self.memory_bytes -= batch.body.len() as u64;
            self.memory.pop_front();
        }
    }

    /// Writes the in-memory batches to the spill directory so the next
    /// [`Queue::open`] resumes from them (graceful shutdown). Without a
    /// spill directory they are counted as dropped.
    pub fn persist(&mut self) {
        let batches = self.memory.len();
        while let Some(batch) = self.memory.pop_front() {
            self.memory_bytes -= batch.body.len() as u64;
            self.spill(batch);
        }
        if batches > 0 {
            info!(
                batches,
                on_disk = self.disk.len(),
                "persisted the remote-write queue for the next start"
            );
        }
        self.end_drop_burst();
    }

    /// Sizes and counters.
    pub fn stats(&self) -> QueueStats {
        QueueStats {
            batches: (self.disk.len() + self.memory.len()) as u64,
            memory_bytes: self.memory_bytes,
            disk_bytes: self.disk_bytes,
            oldest_enqueued: self
                .disk
                .front()
                .map(|f| f.enqueued)
                .or_else(|| self.memory.front().map(|b| b.enqueued)),
            ..self.stats
        }
    }

    /// True when no batch waits.
    pub fn is_empty(&self) -> bool {
        self.disk.is_empty() && self.memory.is_empty()
    }
}

struct Header {
    seq: u64,
    samples: u64,
    body_len: u32,
    crc: u32,
}

fn file_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}{FILE_SUFFIX}"))
}

fn header_bytes(seq: u64, samples: u64, body_len: u32) -> [u8; HEADER_LEN - 4] {
    let mut header = [0u8; HEADER_LEN - 4];
    header[..8].copy_from_slice(MAGIC);
    header[8..16].copy_from_slice(&seq.to_le_bytes());
    header[16..24].copy_from_slice(&samples.to_le_bytes());
    header[24..28].copy_from_slice(&body_len.to_le_bytes());
    header
}

fn checksum(header: &[u8], body: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(header);
    hasher.update(body);
    hasher.finalize()
}

/// Writes `batch` to a temporary name and renames it into place; with
/// `sync`, the file is fsynced before the rename and the directory after,
/// so the batch survives a power loss once this returns.
fn write_file(dir: &Path, batch: &Batch, sync: bool) -> io::Result<()> {
    let body_len = u32::try_from(batch.body.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "batch larger than 4 GiB"))?;
    let header = header_bytes(batch.seq, batch.samples, body_len);
    let crc = checksum(&header, &batch.body);
    let path = file_path(dir, batch.seq);
    let temp = path.with_extension(&TEMP_SUFFIX[1..]);
    let mut file = fs::File::create(&temp)?;
    let written = file
        .write_all(&header)
        .and_then(|()| file.write_all(&crc.to_le_bytes()))
        .and_then(|()| file.write_all(&batch.body))
        .and_then(|()| if sync { file.sync_all() } else { Ok(()) });
    drop(file);
    if let Err(e) = written.and_then(|()| fs::rename(&temp, &path)) {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    if sync {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn corrupt(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// Reads and checks the header; returns it with the file's size and
/// modification time (when the batch was queued).
fn read_header(path: &Path) -> io::Result<(Header, u64, SystemTime)> {
    let mut file = fs::File::open(path)?;
    let meta = file.metadata()?;
    let file_bytes = meta.len();
    let modified = meta.modified().unwrap_or_else(|_| SystemTime::now());
    let mut raw = [0u8; HEADER_LEN];
    file.read_exact(&mut raw)
        .map_err(|_| corrupt("file is shorter than its header"))?;
    let header = parse_header(&raw)?;
    if file_bytes != (HEADER_LEN as u64) + u64::from(header.body_len) {
        return Err(corrupt("file is truncated or has trailing bytes"));
    }
    Ok((header, file_bytes, modified))
}

fn parse_header(raw: &[u8; HEADER_LEN]) -> io::Result<Header> {
    if &raw[..8] != MAGIC {
        return Err(corrupt("not a remote-write spill file (bad magic)"));
    }
    let u64_at = |at: usize| u64::from_le_bytes(raw[at..at + 8].try_into().expect("8 bytes"));
    let u32_at = |at: usize| u32::from_le_bytes(raw[at..at + 4].try_into().expect("4 bytes"));
    Ok(Header {
        seq: u64_at(8),
        samples: u64_at(16),
        body_len: u32_at(24),
        crc: u32_at(28),
    })
}

fn read_file(path: &Path, seq: u64, enqueued: SystemTime) -> io::Result<Batch> {
    let raw = fs::read(path)?;
    let header_raw: &[u8; HEADER_LEN] = raw
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| corrupt("file is shorter than its header"))?;
    let header = parse_header(header_raw)?;
    let body = &raw[HEADER_LEN..];
    if header.seq != seq || body.len() != header.body_len as usize {
        return Err(corrupt("file is truncated or names another batch"));
    }
    if checksum(&raw[..HEADER_LEN - 4], body) != header.crc {
        return Err(corrupt("checksum mismatch"));
    }
    Ok(Batch {
        seq,
        samples: header.samples,
        body: body.to_vec(),
        enqueued,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, memory_bytes: u64, disk_bytes: u64) -> QueueConfig {
        QueueConfig {
            memory_bytes,
            disk_bytes,
            spill_dir: Some(dir.to_path_buf()),
        }
    }

    /// A 100-byte body whose bytes tell which batch it is.
    fn body(n: u8) -> Vec<u8> {
        vec![n; 100]
    }

    /// The queue shared behind a mutex, as the shipper holds it.
    struct Shared(Mutex<Queue>);

    impl Shared {
        fn open(config: QueueConfig) -> Self {
            Self(Mutex::new(Queue::open(config).unwrap()))
        }
        fn push(&self, body: Vec<u8>, samples: u64) -> u64 {
            lock(&self.0).push(body, samples)
        }
        fn stats(&self) -> QueueStats {
            lock(&self.0).stats()
        }
        fn persist(&self) {
            lock(&self.0).persist()
        }
        fn ack(&self, seq: u64) {
            lock(&self.0).ack(seq)
        }
        fn is_empty(&self) -> bool {
            lock(&self.0).is_empty()
        }
        fn peek(&self, max_samples: u64) -> Vec<Batch> {
            Queue::peek(&self.0, max_samples)
        }
    }

    fn pop(queue: &Shared) -> Option<Batch> {
        let batch = queue.peek(0).into_iter().next()?;
        queue.ack(batch.seq);
        Some(batch)
    }

    fn spill_files(dir: &Path) -> usize {
        fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(FILE_SUFFIX)
            })
            .count()
    }

    #[test]
    fn order_is_kept_across_memory_disk_memory() {
        let dir = tempfile::tempdir().unwrap();
        // Room for 3 bodies in memory.
        let queue = Shared::open(config(dir.path(), 300, 1 << 20));
        for n in 0..10 {
            queue.push(body(n), 1);
        }
        let stats = queue.stats();
        assert_eq!(stats.batches, 10);
        assert_eq!(stats.memory_bytes, 300);
        assert_eq!(spill_files(dir.path()), 7);
        assert_eq!(stats.disk_bytes, 7 * (HEADER_LEN as u64 + 100));
        // Take some from disk, push more (which spills again), drain all.
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(pop(&queue).unwrap().body[0]);
        }
        for n in 10..15 {
            queue.push(body(n), 1);
        }
        while let Some(batch) = pop(&queue) {
            seen.push(batch.body[0]);
        }
        assert_eq!(seen, (0..15).collect::<Vec<u8>>());
        assert_eq!(queue.stats().dropped_batches, 0);
        assert_eq!(spill_files(dir.path()), 0);
        assert_eq!(queue.stats().disk_bytes, 0);
        assert_eq!(queue.stats().memory_bytes, 0);
    }

    #[test]
    fn peek_gathers_batches_up_to_the_sample_bound_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let queue = Shared::open(config(dir.path(), 200, 1 << 20));
        for n in 0..5 {
            queue.push(body(n), 10);
        }
        let got: Vec<u8> = queue.peek(35).iter().map(|b| b.body[0]).collect();
        assert_eq!(got, [0, 1, 2]);
        // The oldest batch comes even when it alone exceeds the bound.
        assert_eq!(queue.peek(1).len(), 1);
        let last = queue.peek(35).last().unwrap().seq;
        queue.ack(last);
        let got: Vec<u8> = queue.peek(100).iter().map(|b| b.body[0]).collect();
        assert_eq!(got, [3, 4]);
    }

    #[test]
    fn disk_bound_drops_the_oldest_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let file = HEADER_LEN as u64 + 100;
        // 1 batch in memory, 3 files on disk.
        let queue = Shared::open(config(dir.path(), 100, 3 * file));
        for n in 0..10 {
            queue.push(body(n), 7);
        }
        let stats = queue.stats();
        assert_eq!(stats.batches, 4);
        assert_eq!(stats.dropped_batches, 6);
        assert_eq!(stats.dropped_samples, 42);
        assert!(stats.disk_bytes <= 3 * file);
        let mut left = Vec::new();
        while let Some(batch) = pop(&queue) {
            left.push(batch.body[0]);
        }
        assert_eq!(left, [6, 7, 8, 9]);
    }

    #[test]
    fn memory_only_queue_drops_past_its_bound() {
        let queue = Shared::open(QueueConfig {
            memory_bytes: 250,
            disk_bytes: 1 << 20,
            spill_dir: None,
        });
        for n in 0..5 {
            queue.push(body(n), 2);
        }
        assert_eq!(queue.stats().dropped_batches, 3);
        assert_eq!(queue.stats().dropped_samples, 6);
        assert_eq!(pop(&queue).unwrap().body[0], 3);
    }

    #[test]
    fn persisted_queue_reloads_in_order_after_restart() {
        let dir = tempfile::tempdir().unwrap();
        let queue = Shared::open(config(dir.path(), 300, 1 << 20));
        for n in 0..8 {
            queue.push(body(n), 1);
        }
        assert_eq!(pop(&queue).unwrap().body[0], 0);
        queue.persist();
        assert_eq!(queue.stats().memory_bytes, 0);
        drop(queue);

        let reopened = Shared::open(config(dir.path(), 300, 1 << 20));
        assert_eq!(reopened.stats().batches, 7);
        // New batches go after the reloaded ones.
        let seq = reopened.push(body(8), 1);
        assert_eq!(seq, 8);
        let mut seen = Vec::new();
        while let Some(batch) = pop(&reopened) {
            seen.push(batch.body[0]);
        }
        assert_eq!(seen, (1..9).collect::<Vec<u8>>());
    }

    #[test]
    fn corrupt_and_truncated_spill_files_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let queue = Shared::open(config(dir.path(), 0, 1 << 20));
        for n in 0..5 {
            queue.push(body(n), 1);
        }
        drop(queue);
        // Flip a body byte in batch 1, truncate batch 2, garble batch 3's
        // header, and leave a crash's temp file and an unrelated file.
        let flip = file_path(dir.path(), 1);
        let mut raw = fs::read(&flip).unwrap();
        raw[HEADER_LEN + 10] ^= 0xff;
        fs::write(&flip, raw).unwrap();
        let truncated = file_path(dir.path(), 2);
        let raw = fs::read(&truncated).unwrap();
        fs::write(&truncated, &raw[..HEADER_LEN + 5]).unwrap();
        fs::write(file_path(dir.path(), 3), b"garbage").unwrap();
        fs::write(dir.path().join("00000000000000000009.tmp"), b"half").unwrap();
        fs::write(dir.path().join("README"), b"not a batch").unwrap();

        let reopened = Shared::open(config(dir.path(), 0, 1 << 20));
        // Truncated and garbled files are caught by the header check on open.
        assert_eq!(reopened.stats().corrupt_files, 2);
        let mut seen = Vec::new();
        while let Some(batch) = pop(&reopened) {
            seen.push(batch.body[0]);
        }
        // The flipped byte is caught by the checksum on read.
        assert_eq!(seen, [0, 4]);
        assert_eq!(reopened.stats().corrupt_files, 3);
        assert!(!dir.path().join("00000000000000000009.tmp").exists());
        // Numbering continues past the highest file seen, even a corrupt one.
        assert_eq!(reopened.push(body(5), 1), 5);
    }

    #[test]
    fn spill_file_deleted_behind_the_queues_back_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let queue = Shared::open(config(dir.path(), 0, 1 << 20));
        for n in 0..3 {
            queue.push(body(n), 1);
        }
        fs::remove_file(file_path(dir.path(), 0)).unwrap();
        let seen: Vec<u8> = std::iter::from_fn(|| pop(&queue))
            .map(|b| b.body[0])
            .collect();
        assert_eq!(seen, [1, 2]);
        assert_eq!(queue.stats().corrupt_files, 1);
        assert_eq!(queue.stats().disk_bytes, 0);
    }

    #[test]
    fn durable_pushes_survive_a_crash_and_keep_their_order_and_bound() {
        let dir = tempfile::tempdir().unwrap();
        let file = HEADER_LEN as u64 + 100;
        let queue = Shared::open(config(dir.path(), 1 << 20, 3 * file));
        // A batch pushed the ordinary way first, in memory: it must stay
        // ahead of the durable ones.
        queue.push(body(0), 1);
        for n in 1..3 {
            lock(&queue.0).push_durable(body(n), 2).unwrap();
        }
        assert_eq!(spill_files(dir.path()), 3);
        assert!(queue.stats().oldest_enqueued.is_some());
        // A crash: no persist, the queue is simply gone.
        drop(queue);
        let reopened = Shared::open(config(dir.path(), 1 << 20, 3 * file));
        assert_eq!(reopened.stats().batches, 3);
        // Past the bound the oldest is dropped and counted.
        lock(&reopened.0).push_durable(body(3), 2).unwrap();
        assert_eq!(reopened.stats().dropped_batches, 1);
        assert_eq!(reopened.stats().dropped_samples, 1);
        let seen: Vec<u8> = std::iter::from_fn(|| pop(&reopened))
            .map(|b| b.body[0])
            .collect();
        assert_eq!(seen, [1, 2, 3]);
        assert_eq!(reopened.stats().oldest_enqueued, None);
        // Larger than the whole bound, or no directory: refused, not queued.
        assert!(lock(&reopened.0).push_durable(vec![0; 1000], 1).is_err());
        let memory_only = Shared::open(QueueConfig {
            memory_bytes: 1 << 20,
            disk_bytes: 1 << 20,
            spill_dir: None,
        });
        assert!(lock(&memory_only.0).push_durable(body(0), 1).is_err());
        assert!(memory_only.is_empty());
    }

    #[test]
    fn unwritable_spill_dir_is_counted_as_drops_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let spill = dir.path().join("queue");
        let queue = Shared::open(config(&spill, 0, 1 << 20));
        fs::remove_dir(&spill).unwrap();
        queue.push(body(0), 3);
        assert_eq!(queue.stats().dropped_batches, 1);
        assert_eq!(queue.stats().dropped_samples, 3);
        assert!(queue.is_empty());
    }
}
