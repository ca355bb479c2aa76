//! Storage engine benchmark on generated container metrics. Prints figures; asserts nothing.
//!
//! ```text
//! cargo bench --bench storage -- [--containers N]
//!     [--hours H] [--long-containers N] [--long-days D] [--export DIR]
//! ```
//!
//! Data: N containers × 13 cAdvisor-style series at a 10 s interval with 0–5 ms scrape jitter:
//! nanosecond CPU counters, 10 ms user/system counters, byte counters with noise, page-sized
//! memory gauges, a rarely changing filesystem gauge, small integer gauges, constant limits;
//! every container restarts now and then (all its counters reset) and 5% of the pods are
//! replaced every 6 hours (series churn). `--export DIR` also writes the same samples
//! (grid-aligned timestamps) as OpenMetrics text and InfluxDB line protocol for the
//! side-by-side script in `bench/`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use osprey::storage::query::{AggOp, RangeFn, group_by};
use osprey::storage::{
    FsyncPolicy, Labels, METRIC_NAME, Matcher, Sample, SeriesSamples, Storage, StorageOptions,
};

/// Counts the live heap bytes allocated while this thread is inside a store call (the
/// store's own memory, not the generator's), for the memory-per-series figure.
struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);
thread_local! {
    static IN_STORE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}
fn counted() -> bool {
    IN_STORE.with(|c| c.get())
}
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if counted() {
            LIVE.fetch_add(l.size() as isize, Relaxed);
        }
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        if counted() {
            LIVE.fetch_sub(l.size() as isize, Relaxed);
        }
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if counted() {
            LIVE.fetch_add(n as isize - l.size() as isize, Relaxed);
        }
        unsafe { System.realloc(p, l, n) }
    }
}
/// Runs `f` with the store's allocations counted.
fn in_store<T>(f: impl FnOnce() -> T) -> T {
    IN_STORE.with(|c| c.set(true));
    let r = f();
    IN_STORE.with(|c| c.set(false));
    r
}
#[global_allocator]
static GLOBAL: Counting = Counting;

const STEP: i64 = 10_000;
/// 2026-11-01T00:00Z
const START: i64 = 1_793_491_200_000;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn f(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const METRICS: [&str; 13] = [
    "container_cpu_usage_seconds_total",
    "container_cpu_user_seconds_total",
    "container_cpu_system_seconds_total",
    "container_memory_usage_bytes",
    "container_memory_working_set_bytes",
    "container_memory_rss",
    "container_spec_memory_limit_bytes",
    "container_spec_cpu_shares",
    "container_network_receive_bytes_total",
    "container_network_transmit_bytes_total",
    "container_fs_usage_bytes",
    "container_threads",
    "container_processes",
];

/// State of one generated container.
struct Container {
    idx: usize,
    generation: u64,
    labels: Vec<Labels>,
    vals: [f64; 13],
    cpu_rate: f64,
    net_rate: f64,
    rng: Rng,
}

impl Container {
    fn new(idx: usize, generation: u64) -> Self {
        let mut rng =
            Rng(0x9e37_79b9_7f4a_7c15 ^ ((idx as u64 + 1) * 0x1000_0001) ^ (generation << 40));
        for _ in 0..4 {
            rng.next();
        }
        let ns = format!("ns-{}", idx % 20);
        let pod = format!("app-{}-{:x}", idx % 97, rng.next() & 0xfffff);
        let node = format!("node-{}", idx % 25);
        let image = format!("registry.local/app-{}:v{}", idx % 97, idx % 7);
        let labels = METRICS
            .iter()
            .map(|m| {
                Labels::from_pairs([
                    (METRIC_NAME, m.to_string()),
                    ("namespace", ns.clone()),
                    ("pod", pod.clone()),
                    ("container", format!("c{}", idx % 3)),
                    ("node", node.clone()),
                    ("image", image.clone()),
                ])
            })
            .collect();
        let mem = ((64 + rng.next() % 2048) << 20) as f64;
        let mut c = Container {
            idx,
            generation,
            labels,
            vals: [0.0; 13],
            cpu_rate: 0.01 + rng.f() * 0.8,
            net_rate: 1e3 + rng.f() * 5e5,
            rng,
        };
        c.vals[3] = mem;
        c.vals[4] = mem * 0.8;
        c.vals[5] = mem * 0.6;
        c.vals[6] = ((mem as u64 * 2) & !0xfffff) as f64;
        c.vals[7] = [256.0, 512.0, 1024.0, 2048.0][idx % 4];
        c.vals[10] = ((1 + c.rng.next() % 500) << 20) as f64;
        c.vals[11] = (5 + c.rng.next() % 60) as f64;
        c.vals[12] = (1 + c.rng.next() % 8) as f64;
        c
    }

    fn step(&mut self) {
        let r = &mut self.rng;
        if r.next().is_multiple_of(20_000) {
            // Restart: counters reset.
            for i in [0, 1, 2, 8, 9] {
                self.vals[i] = 0.0;
            }
        }
        let busy = self.cpu_rate * (0.5 + r.f());
        let cpu_ns = (busy * 10.0 * 1e9).round();
        self.vals[0] = ((self.vals[0] * 1e9).round() + cpu_ns) / 1e9;
        self.vals[1] = ((self.vals[1] * 100.0).round() + (busy * 0.8 * 1000.0).round()) / 100.0;
        self.vals[2] = ((self.vals[2] * 100.0).round() + (busy * 0.2 * 1000.0).round()) / 100.0;
        for (i, scale) in [(3usize, 1.0), (4, 0.8), (5, 0.6)] {
            let pages = (r.next() % 64) as f64 - 31.5;
            let v = self.vals[i] + (pages.round() * 4096.0) * scale;
            self.vals[i] = (v.max(4096.0) / 4096.0).round() * 4096.0;
        }
        self.vals[8] += (self.net_rate * 10.0 * (0.3 + 1.4 * r.f())).round();
        self.vals[9] += (self.net_rate * 4.0 * (0.3 + 1.4 * r.f())).round();
        if r.next().is_multiple_of(360) {
            self.vals[10] += 4096.0 * (r.next() % 256) as f64;
        }
        if r.next().is_multiple_of(30) {
            self.vals[11] = (self.vals[11] + (r.next() % 5) as f64 - 2.0).max(1.0);
        }
        if r.next().is_multiple_of(200) {
            self.vals[12] = (self.vals[12] + (r.next() % 3) as f64 - 1.0).max(1.0);
        }
    }
}

/// Generates `steps` scrapes of `containers` containers; calls `emit` once per scrape with
/// the grid timestamp, the jitter and the series of that scrape.
fn generate(
    containers: usize,
    steps: i64,
    start: i64,
    mut emit: impl FnMut(i64, &[(usize, &Labels, f64)], &mut Rng),
) {
    let mut cs: Vec<Container> = (0..containers).map(|i| Container::new(i, 0)).collect();
    let mut jitter = Rng(42);
    let churn_every = 6 * 360;
    let mut buf: Vec<(usize, Labels, f64)> = Vec::new();
    for k in 0..steps {
        let t = start + k * STEP;
        if k > 0 && k % churn_every == 0 {
            for c in cs
                .iter_mut()
                .filter(|c| c.idx % 20 == (k / churn_every) as usize % 20)
            {
                *c = Container::new(c.idx, c.generation + 1);
            }
        }
        buf.clear();
        for c in cs.iter_mut() {
            c.step();
            for m in 0..METRICS.len() {
                buf.push((m, c.labels[m].clone(), c.vals[m]));
            }
        }
        let view: Vec<(usize, &Labels, f64)> = buf.iter().map(|(m, l, v)| (*m, l, *v)).collect();
        emit(t, &view, &mut jitter);
    }
}

struct Args {
    containers: usize,
    hours: i64,
    long_containers: usize,
    long_days: i64,
    export: Option<PathBuf>,
    dir: Option<PathBuf>,
}

fn args() -> Args {
    let mut a = Args {
        containers: 500,
        hours: 24,
        long_containers: 10,
        long_days: 30,
        export: None,
        dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        match k.as_str() {
            "--containers" => a.containers = it.next().unwrap().parse().unwrap(),
            "--hours" => a.hours = it.next().unwrap().parse().unwrap(),
            "--long-containers" => a.long_containers = it.next().unwrap().parse().unwrap(),
            "--long-days" => a.long_days = it.next().unwrap().parse().unwrap(),
            "--export" => a.export = Some(it.next().unwrap().into()),
            "--dir" => a.dir = Some(it.next().unwrap().into()),
            _ => {} // `cargo bench` passes `--bench`
        }
    }
    a
}

fn dir_bytes(p: &Path) -> u64 {
    let mut n = 0;
    if let Ok(rd) = fs::read_dir(p) {
        for e in rd.flatten() {
            let m = e.metadata().unwrap();
            n += if m.is_dir() {
                dir_bytes(&e.path())
            } else {
                m.len()
            };
        }
    }
    n
}

/// CPU time of the calling thread (the machine is shared: wall time includes waiting for a
/// core, this does not).
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec to the pointer it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

thread_local! {
    static LAST_CPU_MS: std::cell::Cell<f64> = const { std::cell::Cell::new(0.0) };
}

/// Median thread CPU time of the last [`median_ms`] call.
fn last_cpu_ms() -> f64 {
    LAST_CPU_MS.with(|c| c.get())
}

fn median_ms(mut f: impl FnMut(), runs: usize) -> f64 {
    f(); // warm up (page cache, allocator)
    let (mut v, mut cpu): (Vec<Duration>, Vec<Duration>) = (0..runs)
        .map(|_| {
            let (t, c) = (Instant::now(), thread_cpu());
            f();
            (t.elapsed(), thread_cpu() - c)
        })
        .unzip();
    v.sort();
    cpu.sort();
    LAST_CPU_MS.with(|c| c.set(cpu[runs / 2].as_secs_f64() * 1e3));
    v[runs / 2].as_secs_f64() * 1e3
}

/// Writes the dataset for the side-by-side script: OpenMetrics (for `promtool tsdb
/// create-blocks-from openmetrics`) and InfluxDB line protocol (ms precision).
fn export(a: &Args, out: &Path) {
    fs::create_dir_all(out).unwrap();
    let mut om = BufWriter::new(fs::File::create(out.join("data.om")).unwrap());
    let mut lp = BufWriter::new(fs::File::create(out.join("data.lp")).unwrap());
    // OpenMetrics requires each metric family's samples to be contiguous: write per family.
    let steps = a.hours * 360;
    let mut per_family: Vec<Vec<u8>> = vec![Vec::new(); METRICS.len()];
    let mut n = 0u64;
    generate(a.containers, steps, START, |t, series, _| {
        for (m, l, v) in series {
            let fam = &mut per_family[*m];
            let _ = write!(fam, "{}{{", METRICS[*m]);
            let mut first = true;
            let mut tags = String::new();
            for (k, val) in l.iter().filter(|(k, _)| *k != METRIC_NAME) {
                if !first {
                    fam.push(b',');
                }
                first = false;
                let _ = write!(fam, "{k}=\"{val}\"");
                tags.push_str(&format!(
                    ",{k}={}",
                    val.replace(',', "\\,")
                        .replace(' ', "\\ ")
                        .replace('=', "\\=")
                ));
            }
            let _ = writeln!(fam, "}} {v} {}.{:03}", t / 1000, t % 1000);
            let _ = writeln!(lp, "{}{tags} value={v} {t}", METRICS[*m]);
            n += 1;
        }
        if per_family[0].len() > 64 << 20 {
            for (i, f) in per_family.iter_mut().enumerate() {
                let tmp = out.join(format!("fam{i}.part"));
                let mut fh = fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(tmp)
                    .unwrap();
                fh.write_all(f).unwrap();
                f.clear();
            }
        }
    });
    for (i, f) in per_family.iter().enumerate() {
        let tmp = out.join(format!("fam{i}.part"));
        if tmp.exists() {
            om.write_all(&fs::read(&tmp).unwrap()).unwrap();
            fs::remove_file(&tmp).unwrap();
        }
        let _ = writeln!(
            om,
            "# TYPE {} {}",
            METRICS[i],
            if METRICS[i].ends_with("_total") {
                "counter"
            } else {
                "gauge"
            }
        );
        om.write_all(f).unwrap();
    }
    om.write_all(b"# EOF\n").unwrap();
    println!(
        "exported {n} samples to {} start_ms {START} end_ms {}",
        out.display(),
        START + steps * STEP
    );
}

fn main() {
    let a = args();
    if let Some(out) = &a.export {
        export(&a, out);
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let base = a.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let dir = base.join("osprey-main");
    let _ = fs::remove_dir_all(&dir);
    let opts = StorageOptions {
        fsync: FsyncPolicy::EverySecond,
        retention_age_ms: None,
        ..StorageOptions::default()
    };
    println!(
        "# Osprey storage benchmark: {} containers x {} series, {} h at 10 s",
        a.containers,
        METRICS.len(),
        a.hours
    );

    // --- ingest -------------------------------------------------------------------------
    let live0 = LIVE.load(Relaxed);
    let s = in_store(|| Storage::open(&dir, opts.clone()).unwrap());
    let steps = a.hours * 360;
    let mut samples = 0u64;
    let mut ingest = Duration::ZERO;
    let mut ingest_cpu = Duration::ZERO;
    let mut gen_batches: Vec<SeriesSamples> = Vec::new();
    let mut peak_per_series = 0.0f64;
    let mut steady_mem = Vec::new();
    generate(a.containers, steps, START, |t, series, jit| {
        gen_batches.clear();
        for (_, l, v) in series {
            // Scrape jitter of 0..5 ms (late, never early: an early first sample would
            // land in the block before the dataset's start).
            let j = (jit.next() % 6) as i64;
            gen_batches.push(SeriesSamples {
                labels: (*l).clone(),
                samples: vec![Sample::new(t + j, *v)],
            });
        }
        // One remote-write-sized request per 500 series.
        let (t0, c0) = (Instant::now(), thread_cpu());
        in_store(|| {
            for chunk in gen_batches.chunks(500) {
                let r = s.append(chunk).unwrap();
                samples += r.accepted;
            }
            if (t - START) % 600_000 == 0 {
                s.maintain().unwrap();
            }
        });
        ingest += t0.elapsed();
        ingest_cpu += thread_cpu() - c0;
        if (t - START) % 3_600_000 == 0 && t - START >= 4 * 3_600_000 {
            let m = s.metrics();
            let per = (LIVE.load(Relaxed) - live0) as f64 / m.head_series as f64;
            peak_per_series = peak_per_series.max(per);
            steady_mem.push(per);
        }
    });
    let m = s.metrics();
    let live = (LIVE.load(Relaxed) - live0) as f64;
    println!("ingest_samples                {samples}");
    println!("ingest_seconds                {:.2}", ingest.as_secs_f64());
    println!(
        "ingest_samples_per_sec        {:.0}   (one thread, fsync every_second, maintenance included)",
        samples as f64 / ingest.as_secs_f64()
    );
    println!(
        "ingest_samples_per_cpu_sec    {:.0}   (per second of the ingesting thread's CPU time)",
        samples as f64 / ingest_cpu.as_secs_f64()
    );
    println!("active_series                 {}", m.head_series);
    println!(
        "memory_per_active_series_B    {:.0}   (live heap allocated by the store / head series, at end)",
        live / m.head_series as f64
    );
    println!(
        "head_bytes_self_metric        {}   ({:.0} per series, the engine's own estimate)",
        m.head_bytes,
        m.head_bytes as f64 / m.head_series as f64
    );
    println!(
        "block_index_bytes_self_metric {}   ({:.0} per series, {} raw + {} rollup blocks open)",
        m.block_index_bytes,
        m.block_index_bytes as f64 / m.head_series as f64,
        m.raw_blocks,
        m.rollup_blocks
    );
    if !steady_mem.is_empty() {
        let avg = steady_mem.iter().sum::<f64>() / steady_mem.len() as f64;
        println!(
            "memory_per_series_hourly_B    avg {:.0}, max {:.0}   (sampled hourly after 4 h)",
            avg, peak_per_series
        );
    }
    println!("wal_bytes                     {}", m.wal_bytes);
    println!(
        "rejected/duplicates/snapped   {} / {} / (see below)",
        m.samples_rejected, m.samples_duplicate
    );

    // --- seal and measure disk ----------------------------------------------------------
    let t0 = Instant::now();
    s.seal_head().unwrap();
    s.compact().unwrap();
    println!(
        "seal_and_compact_seconds      {:.2}",
        t0.elapsed().as_secs_f64()
    );
    let rep = osprey::storage::inspect(&dir).unwrap();
    let raw_bytes = rep.raw_bytes();
    println!("raw_blocks                    {}", rep.raw_blocks.len());
    println!("raw_block_bytes               {raw_bytes}");
    println!(
        "bytes_per_sample_raw_blocks   {:.3}   (index + chunks of sealed raw blocks / samples)",
        raw_bytes as f64 / rep.raw_samples() as f64
    );
    let rollup_bytes: u64 = rep
        .rollup_blocks
        .iter()
        .flat_map(|(_, b)| b)
        .map(|b| b.bytes)
        .sum();
    println!(
        "rollup_bytes                  {rollup_bytes}   ({:.3} per raw sample)",
        rollup_bytes as f64 / rep.raw_samples() as f64
    );
    println!("data_dir_bytes_total          {}", dir_bytes(&dir));

    // --- queries ------------------------------------------------------------------------
    let end = START + steps * STEP;
    let one = [
        Matcher::eq(METRIC_NAME, METRICS[0]),
        Matcher::re("pod", "app-7-.*").unwrap(),
        Matcher::eq("container", "c1"),
        Matcher::eq("node", "node-7"),
    ];
    let n_one = s.select_all(&one, end - 24 * 3_600_000, end).unwrap();
    let qa = median_ms(
        || {
            s.select_all(&one, end - 24 * 3_600_000, end).unwrap();
        },
        21,
    );
    println!(
        "query_a_one_series_24h_raw_ms {qa:.3}   (cpu {:.3} ms; {} series, {} samples)",
        last_cpu_ms(),
        n_one.len(),
        n_one.iter().map(|x| x.samples.len()).sum::<usize>()
    );
    let net = [Matcher::re(
        METRIC_NAME,
        "container_network_(receive|transmit)_bytes_total",
    )
    .unwrap()];
    let nsel = s.select_all(&net, end - 3_600_000, end).unwrap().len();
    let qb = median_ms(
        || {
            let per = s
                .range_query(&net, end - 3_600_000, end, 60_000, RangeFn::Rate)
                .unwrap();
            let summed = group_by(&per, &[], AggOp::Sum);
            assert_eq!(summed.len(), 1);
        },
        11,
    );
    println!(
        "query_b_sum_rate_{nsel}_series_1h_ms {qb:.3}   (cpu {:.3} ms; sum(rate[1m])) over all network counters)",
        last_cpu_ms()
    );
    drop(s);

    // --- long range: 30 days through rollups ------------------------------------------
    let ldir = base.join("osprey-long");
    let _ = fs::remove_dir_all(&ldir);
    let s = Storage::open(&ldir, opts).unwrap();
    let lsteps = a.long_days * 24 * 360;
    let lstart = START - lsteps * STEP;
    let t0 = Instant::now();
    generate(a.long_containers, lsteps, lstart, |t, series, _| {
        let b: Vec<SeriesSamples> = series
            .iter()
            .map(|(_, l, v)| SeriesSamples {
                labels: (*l).clone(),
                samples: vec![Sample::new(t, *v)],
            })
            .collect();
        s.append(&b).unwrap();
        if (t - lstart) % 3_600_000 == 0 {
            s.maintain().unwrap();
        }
    });
    s.seal_head().unwrap();
    s.compact().unwrap();
    println!(
        "long_dataset                  {} containers, {} days, loaded in {:.1} s",
        a.long_containers,
        a.long_days,
        t0.elapsed().as_secs_f64()
    );
    let lend = lstart + lsteps * STEP;
    let cpu = [Matcher::eq(METRIC_NAME, METRICS[4])];
    let qc = median_ms(
        || {
            let _series = s
                .range_query(
                    &cpu,
                    lend - a.long_days * 86_400_000,
                    lend,
                    3_600_000,
                    RangeFn::Max,
                )
                .unwrap();
        },
        11,
    );
    let nseries = s
        .range_query(
            &cpu,
            lend - a.long_days * 86_400_000,
            lend,
            3_600_000,
            RangeFn::Max,
        )
        .unwrap()
        .len();
    println!(
        "query_c_30d_1h_max_via_rollups_ms {qc:.3}   (cpu {:.3} ms; {nseries} series, max_over_time per hour)",
        last_cpu_ms()
    );
    let qc_raw = median_ms(
        || {
            s.range_query(
                &cpu,
                lend - a.long_days * 86_400_000,
                lend,
                3_599_999,
                RangeFn::Max,
            )
            .unwrap();
        },
        3,
    );
    println!(
        "query_c_same_from_raw_ms      {qc_raw:.3}   (cpu {:.3} ms; step 3599999 ms forces raw decoding)",
        last_cpu_ms()
    );
    let lrep = osprey::storage::inspect(&ldir).unwrap();
    println!(
        "long_bytes_per_sample_raw     {:.3}   ({} raw blocks after compaction)",
        lrep.raw_bytes() as f64 / lrep.raw_samples() as f64,
        lrep.raw_blocks.len()
    );
    println!(
        "RESULT {{\"bytes_per_sample\":{:.4},\"ingest_per_sec\":{:.0},\"mem_per_series\":{:.0},\"qa_ms\":{qa:.4},\"qb_ms\":{qb:.4},\"qc_ms\":{qc:.4}}}",
        raw_bytes as f64 / rep.raw_samples() as f64,
        samples as f64 / ingest.as_secs_f64(),
        live / m.head_series as f64
    );
}
