//! The log store in-process: query semantics against a brute-force model,
//! cursor paging without gaps or repeats across partitions, histograms
//! that agree with searches, batch deduplication across restarts and
//! partitions, and retention deleting whole partitions.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use osprey::logs::query::{Cursor, Direction, SearchParams};
use osprey::logs::schema::{PreparedLine, StreamLabels, parse_level};
use osprey::logs::{LogStore, LogsConfig, now_ns};

const HOUR: i64 = 3_600_000_000_000;

fn config() -> LogsConfig {
    LogsConfig {
        commit_interval: Duration::from_millis(20),
        partition_length: Duration::from_secs(3600),
        writer_memory_bytes: 15_000_000,
        ..LogsConfig::default()
    }
}

fn open(dir: &std::path::Path, config: LogsConfig) -> LogStore {
    LogStore::open(dir, config, &prometheus::Registry::new()).expect("open")
}

fn stream(ns: &str, pod: &str) -> Arc<StreamLabels> {
    Arc::new(StreamLabels::new(BTreeMap::from([
        ("namespace".to_string(), ns.to_string()),
        ("pod".to_string(), pod.to_string()),
        ("container".to_string(), "main".to_string()),
        ("stream".to_string(), "stdout".to_string()),
    ])))
}

/// A model line: what the store should hold.
#[derive(Debug, Clone)]
struct Model {
    ts: i64,
    ns: String,
    pod: String,
    message: String,
}

fn line(m: &Model) -> PreparedLine {
    PreparedLine {
        ts_ns: m.ts,
        stream: stream(&m.ns, &m.pod),
        level: parse_level(&m.message),
        message: m.message.clone(),
    }
}

/// 1200 lines over three hours (three partitions), many sharing a
/// timestamp, so ordering needs the id tie-break.
fn generate(base: i64) -> Vec<Model> {
    let words = [
        "connection refused",
        "request served",
        "cache miss",
        "retrying connection",
    ];
    let levels = ["ERROR", "INFO", "WARN", "DEBUG"];
    (0..1200)
        .map(|i| Model {
            // Every timestamp appears three times.
            ts: base + (i / 3) as i64 * (3 * HOUR / 400),
            ns: if i % 5 == 0 { "prod" } else { "dev" }.to_string(),
            pod: format!("web-{}", i % 7),
            message: format!(
                "{} {} item-{i} took {}ms",
                levels[i % 4],
                words[(i / 4) % 4],
                i % 97
            ),
        })
        .collect()
}

fn all_pages(
    store: &LogStore,
    q: &str,
    start: i64,
    end: i64,
    dir: Direction,
    limit: usize,
) -> Vec<(i64, u64, String)> {
    let query = store.parse_query(q).unwrap();
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .search(
                query.as_ref(),
                &SearchParams {
                    start_ns: start,
                    end_ns: end,
                    limit,
                    cursor,
                    direction: dir,
                },
            )
            .unwrap();
        assert!(page.lines.len() <= limit);
        for l in &page.lines {
            out.push((l.ts_value, l.id, l.message.clone()));
        }
        match page.next_cursor {
            Some(c) => {
                assert_eq!(page.lines.len(), limit, "a full page before a cursor");
                cursor = Some(Cursor::decode(&c).unwrap());
            }
            None => return out,
        }
    }
}

#[test]
fn queries_paging_and_histograms_agree_with_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), config());
    let base = (now_ns() - 4 * HOUR) / HOUR * HOUR;
    let model = generate(base);
    // Pushed in several batches, out of time order across batches.
    for chunk in model.chunks(250).rev() {
        let out = store
            .push_blocking(chunk.iter().map(line).collect(), None)
            .unwrap();
        assert_eq!(out.stored, chunk.len());
    }
    assert_eq!(store.partition_dirs().len(), 3, "three hourly partitions");

    let (start, end) = (base, base + 3 * HOUR);
    type Pred = fn(&Model) -> bool;
    let cases: Vec<(&str, Pred)> = vec![
        ("", |_| true),
        ("refused", |m| m.message.contains("refused")),
        ("\"connection refused\"", |m| {
            m.message.contains("connection refused")
        }),
        ("connection AND NOT refused", |m| {
            m.message.contains("connection") && !m.message.contains("refused")
        }),
        ("NOT refused", |m| !m.message.contains("refused")),
        ("cache OR retrying", |m| {
            m.message.contains("cache") || m.message.contains("retrying")
        }),
        ("namespace:prod AND level:error", |m| {
            m.ns == "prod" && m.message.starts_with("ERROR")
        }),
        ("pod:web-3 served", |m| {
            m.pod == "web-3" && m.message.contains("served")
        }),
        ("level:warn", |m| m.message.starts_with("WARN")),
        ("labels:\"pod=web-1\"", |m| m.pod == "web-1"),
        ("item-17", |m| m.message.contains("item-17 ")),
    ];
    for (q, pred) in &cases {
        let want: BTreeSet<String> = model
            .iter()
            .filter(|m| pred(m))
            .map(|m| m.message.clone())
            .collect();
        for (dir, limit) in [(Direction::Backward, 37), (Direction::Forward, 100)] {
            let got = all_pages(&store, q, start, end, dir, limit);
            let set: BTreeSet<String> = got.iter().map(|g| g.2.clone()).collect();
            assert_eq!(set.len(), got.len(), "{q}: a line repeated across pages");
            assert_eq!(set, want, "{q} {dir:?}: lines differ from the model");
            // Strictly ordered by (ts, id).
            for w in got.windows(2) {
                let (a, b) = ((w[0].0, w[0].1), (w[1].0, w[1].1));
                match dir {
                    Direction::Backward => assert!(a > b, "{q}: {a:?} then {b:?}"),
                    _ => assert!(a < b, "{q}: {a:?} then {b:?}"),
                }
            }
        }
        // The histogram counts the same lines, bucket by bucket.
        let query = store.parse_query(q).unwrap();
        let step_ms = 600_000;
        let h = store
            .histogram(query.as_ref(), start / 1_000_000, end / 1_000_000, step_ms)
            .unwrap();
        assert_eq!(h.buckets.len(), 18);
        let total: u64 = h.buckets.iter().map(|b| b.count).sum();
        assert_eq!(total as usize, want.len(), "{q}: histogram total");
        for b in &h.buckets {
            let lo = b.t * 1_000_000;
            let hi = lo + step_ms * 1_000_000;
            let n = model
                .iter()
                .filter(|m| pred(m) && m.ts >= lo && m.ts < hi)
                .count();
            assert_eq!(b.count as usize, n, "{q}: bucket {}", b.t);
        }
    }

    // A sub-range within one partition and across a boundary.
    let sub = all_pages(
        &store,
        "",
        base + HOUR / 2,
        base + 3 * HOUR / 2,
        Direction::Backward,
        50,
    );
    let want = model
        .iter()
        .filter(|m| m.ts >= base + HOUR / 2 && m.ts < base + 3 * HOUR / 2)
        .count();
    assert_eq!(sub.len(), want);

    // Bad queries name the problem.
    for (q, want) in [
        ("(a", "Syntax Error"),
        ("nosuch:x", "nosuch"),
        ("id:3", "id"),
    ] {
        let e = store.parse_query(q).expect_err(q).to_string();
        assert!(e.contains(want), "{q}: {e}");
    }
}

#[test]
fn batches_are_stored_once_across_retries_partitions_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let base = (now_ns() - 3 * HOUR) / HOUR * HOUR;
    let mk = |i: i64, ts: i64| Model {
        ts,
        ns: "prod".into(),
        pod: "p".into(),
        message: format!("dedup line {i}"),
    };
    // A batch spanning two partitions.
    let batch: Vec<Model> = (0..10)
        .map(|i| mk(i, base + HOUR / 2 + i * HOUR / 10))
        .collect();
    let src = || Some(("node-a-1234".to_string(), 7));
    let count = |store: &LogStore| {
        all_pages(
            store,
            "dedup",
            base,
            base + 3 * HOUR,
            Direction::Backward,
            1000,
        )
        .len()
    };
    {
        let store = open(dir.path(), config());
        let out = store
            .push_blocking(batch.iter().map(line).collect(), src())
            .unwrap();
        assert_eq!((out.stored, out.duplicate), (10, 0));
        let again = store
            .push_blocking(batch.iter().map(line).collect(), src())
            .unwrap();
        assert_eq!((again.stored, again.duplicate), (0, 10));
        // An older sequence is a duplicate too; another source is not.
        let older = store
            .push_blocking(
                batch.iter().map(line).collect(),
                Some(("node-a-1234".into(), 3)),
            )
            .unwrap();
        assert_eq!(older.stored, 0);
        let other = store
            .push_blocking(
                vec![line(&mk(100, base + HOUR / 2))],
                Some(("node-b".into(), 7)),
            )
            .unwrap();
        assert_eq!(other.stored, 1);
        // Without a batch header, every push is stored.
        store
            .push_blocking(vec![line(&mk(101, base + HOUR / 2))], None)
            .unwrap();
        store
            .push_blocking(vec![line(&mk(101, base + HOUR / 2))], None)
            .unwrap();
        assert_eq!(count(&store), 13);
    }
    // After a restart the checkpoint is still there.
    let store = open(dir.path(), config());
    assert_eq!(count(&store), 13);
    let again = store
        .push_blocking(batch.iter().map(line).collect(), src())
        .unwrap();
    assert_eq!((again.stored, again.duplicate), (0, 10));
    let next = store
        .push_blocking(
            vec![line(&mk(200, base + HOUR))],
            Some(("node-a-1234".into(), 8)),
        )
        .unwrap();
    assert_eq!(next.stored, 1);
    assert_eq!(count(&store), 14);
}

#[test]
fn retention_deletes_whole_old_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let now = now_ns();
    let mut cfg = config();
    cfg.retention = Duration::from_secs(2 * 3600);
    // No retention pass yet: both partitions must exist before it runs.
    cfg.maintain_interval = Duration::from_secs(3600);
    let store = open(dir.path(), cfg.clone());
    let old = Model {
        ts: now - 5 * HOUR,
        ns: "prod".into(),
        pod: "p".into(),
        message: "ancient line".into(),
    };
    let fresh = Model {
        ts: now - 60_000_000_000,
        message: "fresh line".into(),
        ..old.clone()
    };
    store
        .push_blocking(vec![line(&old), line(&fresh)], None)
        .unwrap();
    let dirs = store.partition_dirs();
    assert_eq!(dirs.len(), 2);
    store.shutdown();
    drop(store);
    // Reopened with a short maintenance interval, retention runs.
    cfg.maintain_interval = Duration::from_millis(100);
    let store = open(dir.path(), cfg);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while dirs[0].exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the old partition was not deleted"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(dirs[1].exists(), "the current partition stays");
    assert_eq!(store.partition_dirs(), vec![dirs[1].clone()]);
    let left = all_pages(&store, "", now - 6 * HOUR, now, Direction::Backward, 10);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].2, "fresh line");
}

#[test]
fn size_limit_deletes_the_oldest_partitions_first() {
    let dir = tempfile::tempdir().unwrap();
    let now = now_ns();
    let mut cfg = config();
    cfg.maintain_interval = Duration::from_millis(100);
    cfg.max_bytes = 1;
    let store = open(dir.path(), cfg);
    let mk = |h: i64| Model {
        ts: now - h * HOUR,
        ns: "prod".into(),
        pod: "p".into(),
        message: format!("line from {h} hours ago"),
    };
    store
        .push_blocking(vec![line(&mk(3)), line(&mk(2)), line(&mk(0))], None)
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while store.partition_dirs().len() > 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "size retention did not run"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let left = all_pages(&store, "", now - 6 * HOUR, now + 1, Direction::Backward, 10);
    assert_eq!(left.len(), 1, "only the newest partition is kept");
    assert_eq!(left[0].2, "line from 0 hours ago");
}
