//! Log indexing and search benchmark (`cargo bench --bench logs`).
//!
//! Generates N container-like log lines (access logs, JSON app logs, Go,
//! Java and klog lines; five levels; 50 pods in 5 namespaces), then:
//!
//! 1. indexes them through the log store's push path (group commit, one
//!    tantivy indexing thread) and reports MB/s, lines/s and CPU;
//! 2. reports index bytes per raw byte;
//! 3. measures write → searchable (push acknowledged after its commit,
//!    then found by a search) with the default 1 s commit interval;
//! 4. runs a term, a phrase, a field filter, a rare term and histograms
//!    (p50/p99 over repeated runs; search = top 100 newest incl. loading
//!    the stored lines);
//! 5. compares in the same run with `grep -c` over the same lines in a
//!    raw file and SQLite FTS5 (Python's sqlite3) loaded with them.
//!
//! `OSPREY_BENCH_LOG_LINES` sets N (default 1 000 000);
//! `OSPREY_BENCH_LOG_COMPRESS=0` stores the documents without LZ4;
//! `OSPREY_BENCH_LOG_COMPARE=0` skips grep and SQLite;
//! `OSPREY_BENCH_LOG_QUERIES=0` stops after indexing (profiling);
//! `OSPREY_BENCH_LOG_IDLE_BYTES` sets `commit_idle_bytes` (0 turns the
//! idle commit off).
//!
//! The indexing phase's CPU is also reported per thread class (tantivy's
//! indexing threads, Osprey's indexer, merges, the docstore compressor, the
//! rest), from `/proc/self/task/<tid>/schedstat` sampled every 10 ms by a
//! thread of the benchmark (see [`ThreadCpu`]): tantivy starts a new
//! indexing thread (and docstore thread) for every segment, so threads come
//! and go during the phase.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use osprey::logs::histogram::auto_step_ms;
use osprey::logs::partition::dir_bytes;
use osprey::logs::query::{Direction, SearchParams};
use osprey::logs::schema::{PreparedLine, StreamLabels, parse_level};
use osprey::logs::{LogStore, LogsConfig, now_ns};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const NAMESPACES: [&str; 5] = ["payments", "checkout", "frontend", "catalog", "kube-system"];

fn streams() -> Vec<Arc<StreamLabels>> {
    (0..50)
        .map(|i| {
            let ns = NAMESPACES[i % 5];
            let app = ["api", "worker", "web", "db-proxy", "controller"][i % 5];
            Arc::new(StreamLabels::new(BTreeMap::from([
                ("node".into(), format!("node-{}", i % 4)),
                ("namespace".into(), ns.into()),
                ("pod".into(), format!("{app}-{:x}-{i}", 0x5f3a9 + i * 7919)),
                (
                    "pod_uid".into(),
                    format!("{:08x}-aaaa-bbbb-cccc-{:012x}", i * 31337, i),
                ),
                ("container".into(), app.into()),
                (
                    "image".into(),
                    format!("registry.example/{app}:1.{}.0", i % 9),
                ),
                (
                    "stream".into(),
                    if i % 3 == 0 { "stderr" } else { "stdout" }.into(),
                ),
                ("job".into(), "osprey/containers".into()),
                ("label_app".into(), app.into()),
            ])))
        })
        .collect()
}

fn hex(r: &mut Rng, n: usize) -> String {
    let mut s = String::with_capacity(n);
    while s.len() < n {
        s.push_str(&format!("{:016x}", r.next()));
    }
    s.truncate(n);
    s
}

fn level(r: &mut Rng) -> (&'static str, &'static str) {
    match r.below(100) {
        0..=64 => ("INFO", "info"),
        65..=79 => ("DEBUG", "debug"),
        80..=91 => ("WARN", "warn"),
        _ => ("ERROR", "error"),
    }
}

fn message(r: &mut Rng, ts_ns: i64) -> String {
    let t = chrono::DateTime::from_timestamp_nanos(ts_ns);
    let paths = [
        "/api/v1/orders",
        "/api/v1/cart",
        "/healthz",
        "/static/app.js",
        "/api/v1/users",
        "/metrics",
    ];
    let (lvl_up, lvl) = level(r);
    match r.below(10) {
        0..=2 => format!(
            "10.{}.{}.{} - - [{}] \"{} {}/{} HTTP/1.1\" {} {} \"-\" \"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36\" {:.3}",
            r.below(4),
            r.below(256),
            r.below(256),
            t.format("%d/%b/%Y:%H:%M:%S +0000"),
            ["GET", "GET", "GET", "POST", "PUT"][r.below(5) as usize],
            paths[r.below(6) as usize],
            r.below(100_000),
            [200, 200, 200, 200, 201, 304, 404, 500, 503][r.below(9) as usize],
            r.below(50_000),
            r.below(2000) as f64 / 1000.0
        ),
        3..=5 => {
            let msgs = [
                "order placed",
                "payment authorised",
                "cache miss",
                "request timeout calling inventory",
                "user session refreshed",
                "connection refused by upstream",
                "retrying request",
            ];
            format!(
                "{{\"ts\":\"{}\",\"level\":\"{lvl}\",\"logger\":\"{}.service\",\"msg\":\"{}\",\"order_id\":\"{}\",\"trace_id\":\"{}\",\"duration_ms\":{}}}",
                t.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                ["checkout", "payments", "catalog"][r.below(3) as usize],
                msgs[r.below(7) as usize],
                r.below(10_000_000),
                hex(r, 32),
                r.below(5000)
            )
        }
        6..=7 => {
            let msgs = [
                format!(
                    "dial tcp 10.0.{}.{}:5432: connect: connection refused",
                    r.below(8),
                    r.below(256)
                ),
                format!("query took {}ms rows={}", r.below(900), r.below(10_000)),
                format!(
                    "context deadline exceeded (Client.Timeout exceeded while awaiting headers) url=http://inventory:8080/items/{}",
                    r.below(100_000)
                ),
                "worker pool resized".to_string(),
                format!(
                    "processed batch id={} size={} lag={}ms",
                    r.below(1_000_000),
                    r.below(500),
                    r.below(3000)
                ),
            ];
            format!(
                "{} {lvl_up} {}:{} {}",
                t.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                ["db/pool.go", "http/client.go", "worker/run.go"][r.below(3) as usize],
                r.below(400),
                msgs[r.below(5) as usize]
            )
        }
        8 => format!(
            "{} {lvl_up} [http-nio-8080-exec-{}] c.e.shop.PaymentClient - request timeout after {} ms, retrying (attempt {}/5) correlationId={}",
            t.format("%Y-%m-%d %H:%M:%S,%3f"),
            r.below(200),
            r.below(5000),
            r.below(5) + 1,
            hex(r, 16)
        ),
        _ => format!(
            "{}{} {}       1 controller.go:{}] Reconciling deployment {}/web-{} generation={}",
            &lvl_up[..1],
            t.format("%m%d"),
            t.format("%H:%M:%S%.6f"),
            r.below(600),
            NAMESPACES[r.below(5) as usize],
            hex(r, 5),
            r.below(100)
        ),
    }
}

fn pct(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn cpu_secs() -> f64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// Process CPU time (every thread, living or exited), nanoseconds.
fn process_cpu_ns() -> u64 {
    let mut t: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// The class a thread's name (`comm`, cut to 15 bytes) puts it in.
fn thread_class(comm: &str) -> &'static str {
    if comm.starts_with("thrd-tantivy-in") {
        "tantivy indexing"
    } else if comm.starts_with("osprey-log-inde") {
        "osprey indexer"
    } else if comm.starts_with("merge_thread") {
        "merges"
    } else if comm.starts_with("docstore-compre") {
        "docstore compressor"
    } else if comm.starts_with("segment_updater") {
        "segment updater"
    } else if comm.starts_with("bench-sampler") {
        "benchmark sampler"
    } else {
        "rest"
    }
}

/// CPU time per thread class, from each thread's `schedstat` (ns on CPU).
///
/// Threads that exit between two samples take their last few ms with
/// them; that CPU is still in the process total, so each sample gives the
/// process's growth minus the living threads' growth (what exited threads
/// used since their last sample) to the threads that vanished, in
/// proportion to what they used in their last interval. What cannot be
/// placed (threads born and gone between two samples, read skew) stays in
/// `unattributed`; the classes plus it equal the process total.
///
/// A new thread bears its parent's name until it sets its own (tantivy's
/// threads are started by Osprey's indexer), so a thread's name is read
/// again in its first samples and its CPU counted under its last class.
struct ThreadCpu {
    threads: BTreeMap<u32, Seen>,
    /// CPU of exited threads, by class, and how many there were.
    finished: BTreeMap<&'static str, (u64, usize)>,
    process_ns: u64,
    unattributed: i64,
}

/// A thread as last sampled.
struct Seen {
    class: &'static str,
    /// Samples it has been in (its name is read again in the first few).
    samples: u32,
    /// schedstat ns at the last sample.
    ns: u64,
    /// ns used in the last interval.
    last: u64,
    /// ns counted for it during the phase.
    counted: u64,
}

fn read_schedstat(tid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
}

fn read_class(tid: u32) -> &'static str {
    let comm = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).unwrap_or_default();
    thread_class(comm.trim())
}

impl ThreadCpu {
    fn read_threads() -> Vec<(u32, u64)> {
        let mut out = Vec::new();
        let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
            return out;
        };
        for e in dir.filter_map(Result::ok) {
            if let Some(tid) = e.file_name().to_str().and_then(|s| s.parse().ok())
                && let Some(ns) = read_schedstat(tid)
            {
                out.push((tid, ns));
            }
        }
        out
    }

    /// Starts counting: what every living thread used so far is the base.
    fn start() -> Self {
        let mut me = Self {
            threads: BTreeMap::new(),
            finished: BTreeMap::new(),
            process_ns: 0,
            unattributed: 0,
        };
        me.sample();
        for t in me.threads.values_mut() {
            t.counted = 0;
        }
        me
    }

    fn sample(&mut self) {
        let mut live = Self::read_threads();
        // Listing /proc/self/task while threads come and go can skip a
        // living thread: a known thread missing from the list is asked
        // for directly, and only counted as gone when it really is (else
        // it would come back as new and be counted twice).
        let listed: std::collections::BTreeSet<u32> = live.iter().map(|(t, _)| *t).collect();
        for tid in self.threads.keys().filter(|t| !listed.contains(t)) {
            if let Some(ns) = read_schedstat(*tid) {
                live.push((*tid, ns));
            }
        }
        let process_ns = process_cpu_ns();
        let mut seen = std::collections::BTreeSet::new();
        let mut live_growth = 0u64;
        for (tid, ns) in live {
            seen.insert(tid);
            // Born since the last sample: all its CPU is new.
            let t = self.threads.entry(tid).or_insert(Seen {
                class: "rest",
                samples: 0,
                ns: 0,
                last: 0,
                counted: 0,
            });
            if t.samples < 5 {
                t.class = read_class(tid);
            }
            t.samples += 1;
            let d = ns.saturating_sub(t.ns);
            t.counted += d;
            live_growth += d;
            t.ns = ns;
            t.last = d;
        }
        let gone: Vec<u32> = self
            .threads
            .keys()
            .filter(|tid| !seen.contains(tid))
            .copied()
            .collect();
        let residue = process_ns.saturating_sub(self.process_ns) as i64 - live_growth as i64;
        if self.process_ns == 0 {
            // The first sample only sets the bases.
        } else if residue > 0 && !gone.is_empty() {
            let weights: u64 = gone.iter().map(|t| self.threads[t].last).sum();
            for tid in &gone {
                let t = self.threads.get_mut(tid).expect("known");
                t.counted += if weights == 0 {
                    residue as u64 / gone.len() as u64
                } else {
                    (residue as u128 * t.last as u128 / weights as u128) as u64
                };
            }
        } else {
            self.unattributed += residue;
        }
        for tid in gone {
            let t = self.threads.remove(&tid).expect("known");
            let f = self.finished.entry(t.class).or_default();
            f.0 += t.counted;
            f.1 += 1;
        }
        self.process_ns = process_ns;
    }

    /// CPU ns and threads seen per class.
    fn totals(&self) -> BTreeMap<&'static str, (u64, usize)> {
        let mut totals = self.finished.clone();
        for t in self.threads.values() {
            let e = totals.entry(t.class).or_default();
            e.0 += t.counted;
            e.1 += 1;
        }
        totals
    }

    /// `| class | threads | CPU-s | cores | share | MB per CPU-s |` rows
    /// for `raw` bytes.
    fn print(&self, raw: usize, wall_s: f64) {
        let totals = self.totals();
        let total: f64 =
            totals.values().map(|v| v.0).sum::<u64>() as f64 / 1e9 + self.unattributed as f64 / 1e9;
        println!(
            "| thread class | threads seen | CPU-s | cores over the phase | share | raw MB per CPU-s of it |"
        );
        println!("|---|---|---|---|---|---|");
        let mut rows: Vec<(&str, usize, f64)> = totals
            .iter()
            .map(|(c, (ns, n))| (*c, *n, *ns as f64 / 1e9))
            .collect();
        // Read skew between a thread's and the process's clock is a few
        // µs; only a real remainder gets a row.
        if self.unattributed.abs() >= 5_000_000 {
            rows.push(("unattributed", 0, self.unattributed as f64 / 1e9));
        }
        rows.sort_by(|a, b| b.2.total_cmp(&a.2));
        for (class, n, s) in rows {
            println!(
                "| {class} | {n} | {s:.2} | {:.2} | {:.0} % | {:.1} |",
                s / wall_s,
                100.0 * s / total,
                raw as f64 / 1e6 / s
            );
        }
        println!(
            "| all (process) | | {total:.2} | {:.2} | 100 % | {:.1} |",
            total / wall_s,
            raw as f64 / 1e6 / total
        );
    }
}

/// Samples [`ThreadCpu`] every 10 ms on a thread of its own until dropped.
struct Sampler {
    cpu: Arc<std::sync::Mutex<ThreadCpu>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    fn start() -> Self {
        let cpu = Arc::new(std::sync::Mutex::new(ThreadCpu::start()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (c, s) = (cpu.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("bench-sampler".into())
            .spawn(move || {
                while !s.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(10));
                    c.lock().unwrap().sample();
                }
            })
            .expect("sampler thread");
        Self {
            cpu,
            stop,
            thread: Some(thread),
        }
    }

    /// A sample now, and the figures so far.
    fn report(&self, raw: usize, wall_s: f64) {
        let mut c = self.cpu.lock().unwrap();
        c.sample();
        c.print(raw, wall_s);
    }

    fn now(&self) -> BTreeMap<&'static str, f64> {
        let mut c = self.cpu.lock().unwrap();
        c.sample();
        c.totals()
            .into_iter()
            .map(|(k, (ns, _))| (k, ns as f64 / 1e9))
            .collect()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn time_runs(runs: usize, mut f: impl FnMut() -> usize) -> (f64, f64, usize) {
    let mut hits = 0;
    for _ in 0..3 {
        hits = f();
    }
    let ms: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            hits = f();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    (pct(ms.clone(), 0.5), pct(ms, 0.99), hits)
}

fn main() {
    let n: usize = std::env::var("OSPREY_BENCH_LOG_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let compress = std::env::var("OSPREY_BENCH_LOG_COMPRESS").map_or(true, |v| v != "0");
    let tmp = tempfile::tempdir().expect("tempdir");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "# logs benchmark: {n} lines, docstore {}, load average at start: {}",
        if compress { "lz4" } else { "uncompressed" },
        load.trim()
    );

    // Generate.
    let t = Instant::now();
    let streams = streams();
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let span_ns: i64 = 2 * 3_600_000_000_000;
    let end_ns = now_ns() - 60_000_000_000;
    let start_ns = end_ns - span_ns;
    let lines: Vec<PreparedLine> = (0..n)
        .map(|i| {
            let ts = start_ns + (i as i64) * (span_ns / n as i64);
            let msg = message(&mut r, ts);
            PreparedLine {
                ts_ns: ts,
                stream: streams[r.below(50) as usize].clone(),
                level: parse_level(&msg),
                message: msg,
            }
        })
        .collect();
    let raw: usize = lines.iter().map(|l| l.message.len()).sum();
    println!(
        "generated {n} lines, {:.1} MB of messages ({:.0} B/line) in {:.1}s",
        raw as f64 / 1e6,
        raw as f64 / n as f64,
        t.elapsed().as_secs_f64()
    );

    // 1. Index through the push path.
    let root = tmp.path().join("logs");
    let mut config = LogsConfig {
        compress,
        retention: Duration::from_secs(30 * 86_400),
        ..LogsConfig::default()
    };
    if let Some(bytes) = std::env::var("OSPREY_BENCH_LOG_IDLE_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.commit_idle_bytes = bytes;
    }
    let registry = prometheus::Registry::new();
    let store = Arc::new(LogStore::open(&root, config.clone(), &registry).expect("open"));
    // The pushes' copies of the lines are made before the clock starts:
    // the figure is the store's work, not the benchmark's.
    let chunks: Vec<Vec<PreparedLine>> = lines.chunks(20_000).map(<[_]>::to_vec).collect();
    let sampler = Sampler::start();
    let (cpu0, t0) = (cpu_secs(), Instant::now());
    let chunks = Arc::new(std::sync::Mutex::new(chunks.into_iter()));
    let pushers: Vec<_> = (0..4)
        .map(|_| {
            let (store, chunks) = (store.clone(), chunks.clone());
            std::thread::Builder::new()
                .name("bench-pusher".into())
                .spawn(move || {
                    loop {
                        let Some(c) = chunks.lock().unwrap().next() else {
                            return;
                        };
                        store.push_blocking(c, None).expect("push");
                    }
                })
                .expect("pusher thread")
        })
        .collect();
    for p in pushers {
        p.join().unwrap();
    }
    let index_s = t0.elapsed().as_secs_f64();
    let index_cpu = cpu_secs() - cpu0;
    let by_thread = sampler.now();
    println!("\n## indexing CPU by thread (until the last push was answered)");
    sampler.report(raw, index_s);
    store.shutdown();
    let closed_s = t0.elapsed().as_secs_f64();
    println!("\n## indexing CPU by thread, until the store was closed (merges finished)");
    sampler.report(raw, closed_s);
    drop(sampler);
    drop(store);
    let size: u64 = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| dir_bytes(&e.path()))
        .sum();
    println!("\n## indexing (push path, group commit, 1 tantivy indexing thread)");
    println!(
        "indexed in {index_s:.1}s: {:.1} MB/s, {:.0} k lines/s; process CPU {:.1} s = {:.2} cores; merges finished at {closed_s:.1}s",
        raw as f64 / 1e6 / index_s,
        n as f64 / 1e3 / index_s,
        index_cpu,
        index_cpu / index_s
    );
    let tantivy_s = by_thread.get("tantivy indexing").copied().unwrap_or(0.0);
    let osprey_s = by_thread.get("osprey indexer").copied().unwrap_or(0.0);
    println!(
        "per indexing thread: wall {:.1} MB/s with one tantivy indexing thread; raw bytes per CPU-second of the tantivy indexing thread(s) {:.1} MB ({tantivy_s:.2} CPU-s); of tantivy's and Osprey's indexing threads together {:.1} MB ({:.2} CPU-s)",
        raw as f64 / 1e6 / index_s,
        raw as f64 / 1e6 / tantivy_s,
        raw as f64 / 1e6 / (tantivy_s + osprey_s),
        tantivy_s + osprey_s
    );
    println!(
        "index size {:.1} MB = {:.2} bytes per raw byte",
        size as f64 / 1e6,
        size as f64 / raw as f64
    );

    // 2. Queries.
    let store = Arc::new(LogStore::open(&root, config, &registry).expect("reopen"));
    let segments: usize = store
        .partitions(i64::MIN, i64::MAX)
        .iter()
        .map(|p| p.reader.searcher().segment_readers().len())
        .sum();
    println!("segments after the merges: {segments}");
    if std::env::var("OSPREY_BENCH_LOG_QUERIES").is_ok_and(|v| v == "0") {
        return;
    }
    let rare_trace = lines
        .iter()
        .find_map(|l| {
            l.message
                .split("\"trace_id\":\"")
                .nth(1)
                .map(|s| s[..32].to_string())
        })
        .unwrap_or_default();
    let params = SearchParams {
        start_ns,
        end_ns: end_ns + 1,
        limit: 100,
        cursor: None,
        direction: Direction::Backward,
    };
    let queries = [
        ("term", "timeout".to_string()),
        ("phrase", "\"connection refused\"".to_string()),
        (
            "field filter",
            "namespace:payments AND level:error".to_string(),
        ),
        ("rare term (trace id)", rare_trace.clone()),
    ];
    println!("\n## queries over {n} lines (top 100 newest, stored lines loaded; 30 runs)");
    println!("| query | osprey p50 | osprey p99 | matches |");
    println!("|---|---|---|---|");
    let mut osprey_p50 = BTreeMap::new();
    for (name, q) in &queries {
        let query = store.parse_query(q).unwrap();
        let (p50, p99, _) = time_runs(30, || {
            store.search(query.as_ref(), &params).unwrap().lines.len()
        });
        let h = store
            .histogram(
                query.as_ref(),
                start_ns / 1_000_000,
                end_ns / 1_000_000 + 1,
                3_600_000,
            )
            .unwrap();
        let matches: u64 = h.buckets.iter().map(|b| b.count).sum();
        println!("| {name} `{q}` | {p50:.2} ms | {p99:.2} ms | {matches} |");
        osprey_p50.insert(*name, p50);
    }
    for (name, q) in [
        ("histogram, all lines", ""),
        ("histogram, `level:error`", "level:error"),
    ] {
        let query = store.parse_query(q).unwrap();
        let step = auto_step_ms(start_ns / 1_000_000, end_ns / 1_000_000);
        let (p50, p99, buckets) = time_runs(30, || {
            store
                .histogram(
                    query.as_ref(),
                    start_ns / 1_000_000,
                    end_ns / 1_000_000,
                    step,
                )
                .unwrap()
                .buckets
                .len()
        });
        println!("| {name} ({buckets} buckets) | {p50:.2} ms | {p99:.2} ms | |");
        osprey_p50.insert(name, p50);
    }

    // 3. Write → searchable, default commit interval (1 s).
    let mut ack = Vec::new();
    let mut seen = Vec::new();
    for i in 0..20 {
        let marker = format!("latencyprobe{i}x{}", now_ns());
        let line = PreparedLine {
            ts_ns: now_ns(),
            stream: streams[0].clone(),
            level: Some("info"),
            message: format!("INFO probe {marker}"),
        };
        let t = Instant::now();
        store.push_blocking(vec![line], None).unwrap();
        ack.push(t.elapsed().as_secs_f64() * 1000.0);
        let q = store.parse_query(&marker).unwrap();
        let p = SearchParams {
            start_ns: now_ns() - 60_000_000_000,
            end_ns: now_ns() + 1,
            ..params.clone()
        };
        while store.search(q.as_ref(), &p).unwrap().lines.is_empty() {
            std::thread::sleep(Duration::from_millis(1));
        }
        seen.push(t.elapsed().as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_millis(r.below(300)));
    }
    println!("\n## write → searchable (commit interval 1 s, 20 single-line pushes)");
    println!(
        "push acknowledged (committed): p50 {:.0} ms, max {:.0} ms; found by search: p50 {:.0} ms, max {:.0} ms",
        pct(ack.clone(), 0.5),
        pct(ack, 1.0),
        pct(seen.clone(), 0.5),
        pct(seen, 1.0)
    );
    drop(store);
    if std::env::var("OSPREY_BENCH_LOG_COMPARE").is_ok_and(|v| v == "0") {
        return;
    }

    // 4. The same lines for grep and SQLite.
    let raw_path = tmp.path().join("raw.log");
    let tsv_path = tmp.path().join("lines.tsv");
    {
        let mut raw_f = std::io::BufWriter::new(std::fs::File::create(&raw_path).unwrap());
        let mut tsv_f = std::io::BufWriter::new(std::fs::File::create(&tsv_path).unwrap());
        for l in &lines {
            let lab = &l.stream.labels;
            writeln!(
                raw_f,
                "{} {} {} {} {}",
                lab["namespace"], lab["pod"], lab["container"], lab["stream"], l.message
            )
            .unwrap();
            writeln!(
                tsv_f,
                "{}\t{}\t{}\t{}\t{}",
                l.ts_ns,
                lab["namespace"],
                lab["pod"],
                l.level.unwrap_or(""),
                l.message
            )
            .unwrap();
        }
    }
    drop(lines);
    let raw_file = raw_path.display().to_string();
    let grep = |args: &[&str]| {
        time_runs(5, || {
            let out = Command::new("sh")
                .arg("-c")
                .arg(format!("{} {raw_file}", args.join(" ")))
                .output()
                .expect("grep runs");
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .unwrap_or(0)
        })
    };
    println!(
        "\n## the same queries, same run: grep -c over the raw file ({:.1} MB incl. labels), 5 runs, file in page cache",
        std::fs::metadata(&raw_path).unwrap().len() as f64 / 1e6
    );
    println!("| query | grep p50 | grep p99 | count | osprey p50 |");
    println!("|---|---|---|---|---|");
    for (name, cmd) in [
        ("term", vec!["LC_ALL=C grep -c -i -w timeout"]),
        (
            "phrase",
            vec!["LC_ALL=C grep -c -i -F 'connection refused'"],
        ),
        (
            "field filter",
            vec!["LC_ALL=C grep -c -E '^payments .*( ERROR |\"level\":\"error\"| E[0-9]{4} )'"],
        ),
        (
            "rare term (trace id)",
            vec![&format!("LC_ALL=C grep -c -F {rare_trace}")],
        ),
    ] {
        let (p50, p99, count) = grep(&cmd.iter().map(|s| s.as_ref()).collect::<Vec<&str>>());
        println!(
            "| {name} | {p50:.1} ms | {p99:.1} ms | {count} | {:.2} ms |",
            osprey_p50[name]
        );
    }

    // 5. SQLite FTS5.
    let py = r#"
import sqlite3, sys, time, os, json
tsv, db = sys.argv[1], sys.argv[2]
con = sqlite3.connect(db)
con.execute("PRAGMA journal_mode=OFF"); con.execute("PRAGMA synchronous=OFF")
con.execute("CREATE VIRTUAL TABLE logs USING fts5(ts UNINDEXED, namespace, pod, level, message)")
t = time.time()
def rows():
    with open(tsv, encoding="utf-8") as f:
        for line in f:
            yield line.rstrip("\n").split("\t", 4)
con.executemany("INSERT INTO logs VALUES (?,?,?,?,?)", rows())
con.commit()
load = time.time() - t
size = os.path.getsize(db)
def run(sql, args, n=10):
    for _ in range(2): r = con.execute(sql, args).fetchall()
    ts = []
    for _ in range(n):
        t = time.perf_counter(); r = con.execute(sql, args).fetchall(); ts.append((time.perf_counter() - t) * 1000)
    ts.sort()
    return ts[len(ts)//2], ts[min(len(ts)-1, round((len(ts)-1)*0.99))], len(r)
top = "SELECT ts, message FROM logs WHERE logs MATCH ? ORDER BY CAST(ts AS INTEGER) DESC LIMIT 100"
out = {"load_s": load, "bytes": size, "q": {}}
for name, m in [("term", "message:timeout"), ("phrase", 'message:"connection refused"'), ("field filter", "namespace:payments AND level:error"), ("rare term (trace id)", 'message:"' + sys.argv[3] + '"')]:
    out["q"][name] = run(top, (m,))
step = int(sys.argv[4]) * 1000000
out["q"]["histogram, all lines"] = run("SELECT CAST(ts AS INTEGER)/? AS b, count(*) FROM logs GROUP BY b", (step,), 5)
out["q"]["histogram, `level:error`"] = run("SELECT CAST(ts AS INTEGER)/? AS b, count(*) FROM logs WHERE logs MATCH 'level:error' GROUP BY b", (step,), 5)
print(json.dumps(out))
"#;
    let step = auto_step_ms(start_ns / 1_000_000, end_ns / 1_000_000);
    let out = Command::new("python3")
        .arg("-c")
        .arg(py)
        .arg(&tsv_path)
        .arg(tmp.path().join("fts.db"))
        .arg(&rare_trace)
        .arg(step.to_string())
        .output()
        .expect("python3 runs");
    if !out.status.success() {
        println!(
            "SQLite FTS5 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON from python");
    let load_s = v["load_s"].as_f64().unwrap();
    let bytes = v["bytes"].as_f64().unwrap();
    println!("\n## SQLite FTS5 (Python sqlite3), same lines, same run");
    println!(
        "loaded in {load_s:.1}s: {:.1} MB/s (one thread, executemany, no sync); database {:.1} MB = {:.2} bytes per raw byte",
        raw as f64 / 1e6 / load_s,
        bytes / 1e6,
        bytes / raw as f64
    );
    println!("| query | FTS5 p50 | FTS5 p99 | rows | osprey p50 |");
    println!("|---|---|---|---|---|");
    for (name, r) in v["q"].as_object().unwrap() {
        println!(
            "| {name} | {:.2} ms | {:.2} ms | {} | {:.2} ms |",
            r[0].as_f64().unwrap(),
            r[1].as_f64().unwrap(),
            r[2],
            osprey_p50.get(name.as_str()).copied().unwrap_or(f64::NAN)
        );
    }
}
