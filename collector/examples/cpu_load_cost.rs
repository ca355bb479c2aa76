//! What the opt-in CPU load reader costs per thread: counts the states of
//! every thread on this machine through [`LoadReader::count_tasks`] (one
//! `/proc/<tid>/stat` read each, as a cgroup's task list makes it do) many
//! times and prints the process CPU time (user + system, from getrusage)
//! per thread read. CPU time, not wall time: the machine may be busy.
//!
//! `cargo run --release -p osprey-collector --example cpu_load_cost`

use std::path::Path;

use osprey_collector::load::LoadReader;

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes into the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_SELF is always valid.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn main() {
    let mut tids = Vec::new();
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(tasks) = std::fs::read_dir(p.path().join("task")) {
            for t in tasks.flatten() {
                tids.push(t.file_name().to_string_lossy().into_owned());
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("tasks");
    std::fs::write(&list, tids.join("\n")).unwrap();
    let mut reader = LoadReader::new(Path::new("/proc"));
    let rounds = 200;
    let start = cpu_seconds();
    let mut runnable = 0;
    for _ in 0..rounds {
        runnable += reader.count_tasks(&list).unwrap().load();
    }
    let spent = cpu_seconds() - start;
    let per_read_us = spent / (rounds * tids.len()) as f64 * 1e6;
    println!(
        "{} threads x {rounds} rounds: {per_read_us:.2} us CPU per thread read = {:.2} ms CPU per 1000 threads per tick (mean runnable {:.1})",
        tids.len(),
        per_read_us,
        runnable as f64 / rounds as f64
    );
}
