//! The indexing thread: group commit with an atomic ingest checkpoint.
//!
//! Pushes queue their lines as a [`Job`]; the thread adds the lines of all
//! jobs that arrive within `commit_interval` of the first (or until
//! `commit_bytes` are queued, or until the queue falls idle with at least
//! `commit_idle_bytes` in the group) to the partitions' writers, then
//! commits every partition it touched and only then answers each job. So a
//! push is answered only once its lines are durable and searchable.
//!
//! The checkpoint of each partition — the highest `X-Osprey-Batch`
//! sequence per source whose lines in that partition are committed, and
//! the next arrival id — is the tantivy commit payload of that partition,
//! committed atomically with the documents. A batch spanning two
//! partitions whose first commit succeeded and second did not (a crash in
//! between) is therefore completed, not duplicated, by its retry: each
//! partition skips exactly the lines it already holds.
//!
//! Retention runs on this thread too, so a partition is never deleted
//! under a writer.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tantivy::indexer::UserOperation;
use tantivy::{IndexWriter, TantivyDocument};

use super::partition::{Partition, Span, span_for};
use super::schema::{PreparedLine, StreamLabels};
use super::streams::write_records;
use super::{CommitEvent, LogError, Shared, now_ns};

/// A writer's memory budget may not go below tantivy's minimum.
const MIN_WRITER_MEMORY: usize = 15_000_000;

/// Writers unused this long are closed (each holds its memory budget).
const IDLE_WRITER: Duration = Duration::from_secs(600);

/// How long a queue must stay empty for a group of `commit_idle_bytes`
/// to be committed before its deadline.
const IDLE_GAP: Duration = Duration::from_millis(10);

/// Documents handed to tantivy's indexing thread at a time: one channel
/// message (and wake-up) per batch instead of per line, small enough that
/// the thread starts on a push's first lines while the rest are built and
/// that its memory check (once per batch) stays close to the budget.
const DOC_BATCH: usize = 256;

/// One push, queued for the indexing thread.
pub struct Job {
    /// The validated lines.
    pub lines: Vec<PreparedLine>,
    /// `X-Osprey-Batch`: source and sequence.
    pub batch: Option<(String, u64)>,
    /// Where the outcome goes once committed (or failed).
    pub done: tokio::sync::oneshot::Sender<Result<PushOutcome, LogError>>,
}

impl Job {
    fn raw_bytes(&self) -> usize {
        self.lines.iter().map(PreparedLine::raw_bytes).sum()
    }
}

/// What a committed push did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PushOutcome {
    /// Lines indexed.
    pub stored: usize,
    /// Lines skipped because their batch was already committed.
    pub duplicate: usize,
}

/// The commit payload of a partition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The id the next document gets.
    pub next_id: u64,
    /// Highest committed `X-Osprey-Batch` sequence per source.
    pub sources: BTreeMap<String, u64>,
}

impl Checkpoint {
    /// The checkpoint committed in `partition` (empty for a new index).
    pub fn load(partition: &Partition) -> Result<Self, LogError> {
        let meta = partition
            .index
            .load_metas()
            .map_err(|e| LogError::Index(format!("{}: {e}", partition.dir.display())))?;
        match meta.payload {
            None => Ok(Self::default()),
            Some(p) => serde_json::from_str(&p).map_err(|e| {
                LogError::Corrupt(format!(
                    "{}: commit payload is not a checkpoint: {e}",
                    partition.dir.display()
                ))
            }),
        }
    }
}

struct PartWriter {
    part: Arc<Partition>,
    writer: IndexWriter<TantivyDocument>,
    /// Committed checkpoint plus this group's additions.
    ckpt: Checkpoint,
    /// The committed checkpoint, to restore on a failed commit.
    committed: Checkpoint,
    last_used: Instant,
}

/// Runs the indexing thread until every sender is gone.
pub fn run(shared: Arc<Shared>, jobs: Receiver<Job>) {
    let mut writers: BTreeMap<i64, PartWriter> = BTreeMap::new();
    let maintain_every = shared.config.maintain_interval;
    maintain(&shared, &mut writers);
    let mut last_maintain = Instant::now();
    loop {
        let first = match jobs.recv_timeout(maintain_every) {
            Ok(j) => j,
            Err(RecvTimeoutError::Timeout) => {
                maintain(&shared, &mut writers);
                last_maintain = Instant::now();
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let deadline = Instant::now() + shared.config.commit_interval;
        let mut bytes = first.raw_bytes();
        // Lines are indexed as their jobs arrive, so the wait for the
        // commit deadline overlaps with indexing.
        let mut group = Group::default();
        group.add(&shared, &mut writers, first);
        while bytes < shared.config.commit_bytes {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            // A large group whose queue has gone idle is committed at once:
            // its pushers wait for the answer before sending more, so
            // nothing would arrive before the deadline but the idle time.
            let idle_commit =
                shared.config.commit_idle_bytes > 0 && bytes >= shared.config.commit_idle_bytes;
            let wait = if idle_commit {
                (deadline - now).min(IDLE_GAP)
            } else {
                deadline - now
            };
            match jobs.recv_timeout(wait) {
                Ok(j) => {
                    bytes += j.raw_bytes();
                    group.add(&shared, &mut writers, j);
                }
                Err(_) => break,
            }
        }
        commit_group(&shared, &mut writers, group);
        if last_maintain.elapsed() >= maintain_every {
            maintain(&shared, &mut writers);
            last_maintain = Instant::now();
        }
    }
    for (_, w) in std::mem::take(&mut writers) {
        if let Err(e) = w.writer.wait_merging_threads() {
            tracing::warn!(error = %e, "closing a log index writer");
        }
    }
    tracing::info!("log indexing stopped");
}

/// The partition `ts` belongs to, created when missing.
fn partition_for(shared: &Shared, ts: i64) -> Result<Arc<Partition>, LogError> {
    if let Some(p) = shared
        .partitions
        .read()
        .expect("partitions lock")
        .iter()
        .find(|p| p.span.contains(ts))
    {
        return Ok(p.clone());
    }
    let mut parts = shared.partitions.write().expect("partitions lock");
    let spans: Vec<_> = parts.iter().map(|p| p.span).collect();
    let span = span_for(ts, shared.config.partition_length_ns(), &spans);
    let part = Arc::new(Partition::create(
        &shared.root,
        span,
        &shared.schema,
        shared.compressor,
    )?);
    tracing::info!(dir = %part.dir.display(), "new log partition");
    parts.push(part.clone());
    parts.sort_by_key(|p| p.span.start_ns);
    Ok(part)
}

fn writer_for<'a>(
    shared: &Shared,
    writers: &'a mut BTreeMap<i64, PartWriter>,
    part: &Arc<Partition>,
) -> Result<&'a mut PartWriter, LogError> {
    let w = match writers.entry(part.span.start_ns) {
        std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
        std::collections::btree_map::Entry::Vacant(v) => {
            let ckpt = Checkpoint::load(part)?;
            let writer = part
                .index
                .writer_with_num_threads(
                    1,
                    shared.config.writer_memory_bytes.max(MIN_WRITER_MEMORY),
                )
                .map_err(|e| LogError::Index(format!("{}: {e}", part.dir.display())))?;
            v.insert(PartWriter {
                part: part.clone(),
                writer,
                committed: ckpt.clone(),
                ckpt,
                last_used: Instant::now(),
            })
        }
    };
    w.last_used = Instant::now();
    Ok(w)
}

/// Adds one job's lines (moving them into the documents); returns its
/// outcome and the partitions touched.
fn add_job(
    shared: &Shared,
    writers: &mut BTreeMap<i64, PartWriter>,
    job: &mut Job,
    touched: &mut BTreeMap<i64, (u64, u64)>,
) -> Result<PushOutcome, LogError> {
    let mut outcome = PushOutcome::default();
    let mut job_parts = BTreeSet::new();
    // Per-line work is kept to the document itself: the partition, its
    // writer, the duplicate verdict and the stream id are looked up when
    // they change (lines of a push come stream by stream, mostly in one
    // partition), not for every line.
    let mut cur: Option<(Span, bool)> = None;
    let mut last_stream: Option<(*const StreamLabels, i64, u64)> = None;
    // Documents not yet handed to the writer of partition `key`.
    let mut batch: Vec<UserOperation<TantivyDocument>> = Vec::with_capacity(DOC_BATCH);
    let mut batch_key = 0;
    for line in std::mem::take(&mut job.lines) {
        let (span, duplicate) = match cur {
            Some((span, dup)) if span.contains(line.ts_ns) => (span, dup),
            _ => {
                flush_batch(writers, batch_key, &mut batch)?;
                let part = partition_for(shared, line.ts_ns)?;
                let w = writer_for(shared, writers, &part)?;
                let dup = job.batch.as_ref().is_some_and(|(source, seq)| {
                    w.ckpt.sources.get(source).is_some_and(|done| done >= seq)
                });
                cur = Some((part.span, dup));
                (part.span, dup)
            }
        };
        if duplicate {
            outcome.duplicate += 1;
            continue;
        }
        let key = span.start_ns;
        let w = writers.get_mut(&key).expect("writer opened");
        job_parts.insert(key);
        let ptr = Arc::as_ptr(&line.stream);
        let stream_id = match last_stream {
            Some((p, k, id)) if p == ptr && k == key => id,
            _ => {
                let id = w
                    .part
                    .streams
                    .write()
                    .expect("stream table lock")
                    .id_for(&line.stream);
                last_stream = Some((ptr, key, id));
                id
            }
        };
        let id = w.ckpt.next_id;
        w.ckpt.next_id += 1;
        batch.push(UserOperation::Add(
            w.part.schema.document(&line, id, stream_id),
        ));
        batch_key = key;
        if batch.len() >= DOC_BATCH {
            flush_batch(writers, key, &mut batch)?;
        }
        let range = touched.entry(key).or_insert((id, id));
        range.1 = id;
        outcome.stored += 1;
    }
    flush_batch(writers, batch_key, &mut batch)?;
    if let Some((source, seq)) = &job.batch {
        for key in job_parts {
            let w = writers.get_mut(&key).expect("writer exists");
            let e = w.ckpt.sources.entry(source.clone()).or_insert(*seq);
            *e = (*e).max(*seq);
        }
    }
    Ok(outcome)
}

/// Hands `batch` (documents for the partition starting at `key`) to its
/// writer.
fn flush_batch(
    writers: &mut BTreeMap<i64, PartWriter>,
    key: i64,
    batch: &mut Vec<UserOperation<TantivyDocument>>,
) -> Result<(), LogError> {
    if batch.is_empty() {
        return Ok(());
    }
    let w = writers.get_mut(&key).expect("writer opened");
    w.writer
        .run(std::mem::replace(batch, Vec::with_capacity(DOC_BATCH)))
        .map_err(|e| LogError::Index(e.to_string()))?;
    Ok(())
}

/// The jobs of one commit, their lines already added to the writers.
#[derive(Default)]
struct Group {
    jobs: Vec<Job>,
    outcomes: Vec<PushOutcome>,
    /// Partition → ids added in this group.
    touched: BTreeMap<i64, (u64, u64)>,
    failure: Option<LogError>,
}

impl Group {
    fn add(&mut self, shared: &Shared, writers: &mut BTreeMap<i64, PartWriter>, mut job: Job) {
        if self.failure.is_none() {
            match add_job(shared, writers, &mut job, &mut self.touched) {
                Ok(o) => self.outcomes.push(o),
                Err(e) => self.failure = Some(e),
            }
        }
        self.jobs.push(job);
    }
}

fn commit_group(shared: &Shared, writers: &mut BTreeMap<i64, PartWriter>, group: Group) {
    let Group {
        jobs: group,
        outcomes,
        touched,
        mut failure,
    } = group;
    if failure.is_none() {
        for (key, _) in touched.iter() {
            let w = writers.get_mut(key).expect("writer exists");
            // The streams of the lines about to be committed reach the
            // disk first (outside the table's lock: searches keep going).
            let records = w
                .part
                .streams
                .read()
                .expect("stream table lock")
                .unpersisted();
            if let Some((path, buf, first, count)) = records {
                match write_records(&path, &buf, first) {
                    Ok(()) => w
                        .part
                        .streams
                        .write()
                        .expect("stream table lock")
                        .persisted(count),
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            let payload = serde_json::to_string(&w.ckpt).expect("serialisable");
            let result = w.writer.prepare_commit().and_then(|mut prepared| {
                prepared.set_payload(&payload);
                prepared.commit()
            });
            match result {
                Ok(_) => w.committed = w.ckpt.clone(),
                Err(e) => {
                    failure = Some(LogError::Index(format!(
                        "committing {}: {e}",
                        w.part.dir.display()
                    )));
                    break;
                }
            }
        }
    }
    if let Some(err) = failure {
        tracing::error!(error = %err, "log commit failed; the group is refused");
        // Drop what was added and not committed, in every writer.
        for w in writers.values_mut() {
            if w.ckpt != w.committed {
                if let Err(e) = w.writer.rollback() {
                    tracing::error!(error = %e, "rolling back a log writer");
                }
                w.ckpt = w.committed.clone();
            }
        }
        for job in group {
            let _ = job.done.send(Err(err.clone()));
        }
        return;
    }
    for (key, (first_id, last_id)) in touched {
        let w = &writers[&key];
        if let Err(e) = w.part.reader.reload() {
            tracing::error!(error = %e, "reloading a log reader");
        }
        // No receiver (nobody tailing) is fine.
        let _ = shared.commits.send(CommitEvent {
            partition_start_ns: key,
            first_id,
            last_id,
        });
    }
    let stored: usize = outcomes.iter().map(|o| o.stored).sum();
    shared.metrics.lines_stored.inc_by(stored as u64);
    for (job, outcome) in group.into_iter().zip(outcomes) {
        let _ = job.done.send(Ok(outcome));
    }
}

/// Retention by age and total size, and closing idle writers.
fn maintain(shared: &Shared, writers: &mut BTreeMap<i64, PartWriter>) {
    let idle: Vec<i64> = writers
        .iter()
        .filter(|(_, w)| w.last_used.elapsed() > IDLE_WRITER)
        .map(|(k, _)| *k)
        .collect();
    for k in idle {
        if let Some(w) = writers.remove(&k)
            && let Err(e) = w.writer.wait_merging_threads()
        {
            tracing::warn!(error = %e, "closing an idle log writer");
        }
    }
    let cutoff = now_ns().saturating_sub(shared.config.retention_ns());
    let mut doomed: Vec<Arc<Partition>> = Vec::new();
    {
        let parts = shared.partitions.read().expect("partitions lock");
        doomed.extend(parts.iter().filter(|p| p.span.end_ns <= cutoff).cloned());
        if shared.config.max_bytes > 0 {
            let mut sizes: Vec<(Arc<Partition>, u64)> = parts
                .iter()
                .filter(|p| p.span.end_ns > cutoff)
                .map(|p| (p.clone(), p.disk_bytes()))
                .collect();
            let mut total: u64 = sizes.iter().map(|(_, s)| s).sum();
            // Oldest first; the newest partition is always kept.
            while total > shared.config.max_bytes && sizes.len() > 1 {
                let (p, s) = sizes.remove(0);
                total -= s;
                doomed.push(p);
            }
        }
    }
    for p in doomed {
        if let Some(w) = writers.remove(&p.span.start_ns) {
            let _ = w.writer.wait_merging_threads();
        }
        shared
            .partitions
            .write()
            .expect("partitions lock")
            .retain(|q| q.span != p.span);
        match std::fs::remove_dir_all(&p.dir) {
            Ok(()) => {
                shared.metrics.partitions_deleted.inc();
                tracing::info!(dir = %p.dir.display(), "log retention deleted a partition")
            }
            Err(e) => {
                tracing::error!(dir = %p.dir.display(), error = %e, "deleting a log partition")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use crate::logs::schema::{PreparedLine, StreamLabels};
    use crate::logs::{LogStore, LogsConfig, now_ns};

    fn lines(n: usize) -> Vec<PreparedLine> {
        let stream = Arc::new(StreamLabels::new(BTreeMap::from([(
            "namespace".to_string(),
            "prod".to_string(),
        )])));
        let t = now_ns();
        (0..n)
            .map(|i| PreparedLine {
                ts_ns: t + i as i64,
                stream: stream.clone(),
                level: None,
                message: format!("line {i} of a push"),
            })
            .collect()
    }

    /// How long a push of 100 lines waits for its answer.
    fn push_wait(commit_interval: Duration, commit_idle_bytes: usize) -> Duration {
        let root = tempfile::tempdir().unwrap();
        let config = LogsConfig {
            commit_interval,
            commit_idle_bytes,
            ..LogsConfig::default()
        };
        let store = LogStore::open(root.path(), config, &prometheus::Registry::new()).unwrap();
        let t = Instant::now();
        let outcome = store.push_blocking(lines(100), None).unwrap();
        let waited = t.elapsed();
        assert_eq!(outcome.stored, 100);
        store.shutdown();
        waited
    }

    #[test]
    fn a_large_group_on_an_idle_queue_is_committed_before_its_deadline() {
        // Below the idle threshold (or with it off) a push waits for the
        // commit interval: later pushes may join its group.
        assert!(push_wait(Duration::from_millis(300), 0) >= Duration::from_millis(300));
        assert!(push_wait(Duration::from_millis(300), 1 << 20) >= Duration::from_millis(300));
        // Above it, nobody else is coming: committed without waiting for
        // the (4 s) interval.
        assert!(push_wait(Duration::from_secs(4), 64) < Duration::from_secs(4));
    }
}
