//! Parsing cost of the statistics files read every tick, per file and per
//! byte: the agent's own share of a tick, beside the kernel's rendering of
//! the same text (which the `agent_overhead` bench's floor measures).
//!
//! The texts are the fixture trees' (the kernel's exact formats, values of
//! realistic width) and, where this machine has them, the live root
//! cgroup's v1 `memory.stat`.
//!
//! Run: `cargo bench -p osprey-collector --bench parse`

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use osprey_collector::cgroup::{v1, v2};
use osprey_collector::fixture::{FixtureTree, FixtureVersion, PathStyle, paths};
use osprey_collector::stats::{CpuStats, MemoryStats};

/// Runs `parse` over `text` until ~0.5 s have passed, three times, and
/// prints the best run's time per call and per byte.
fn measure(name: &str, text: &str, mut parse: impl FnMut(&str)) {
    let mut best = f64::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let mut calls = 0u64;
        while started.elapsed().as_millis() < 500 {
            for _ in 0..1000 {
                parse(black_box(text));
            }
            calls += 1000;
        }
        best = best.min(started.elapsed().as_nanos() as f64 / calls as f64);
    }
    println!(
        "{name:<28} {:>5} lines {:>5} bytes {:>9.1} ns/file {:>6.2} ns/byte",
        text.lines().count(),
        text.len(),
        best,
        best / text.len() as f64
    );
}

fn fixture_text(version: FixtureVersion, controller: &str, file: &str) -> String {
    let tree = FixtureTree::new(version).expect("fixture tree");
    let style = PathStyle::KubepodsSystemd(paths::Qos::Burstable, paths::Runtime::Containerd);
    let cgroup = tree
        .add_containers(style, 0, 1)
        .expect("a container")
        .remove(0);
    std::fs::read_to_string(tree.file_path(controller, &cgroup, file)).expect("fixture file")
}

fn main() {
    println!("parsing one statistics file (best of 3 runs of ~0.5 s)");
    let v1_stat = fixture_text(FixtureVersion::V1, "memory", "memory.stat");
    measure("v1 memory.stat (fixture)", &v1_stat, |t| {
        let mut m = MemoryStats::default();
        v1::apply_memory_stat(t, true, &mut m).expect("parses");
        black_box(m);
    });
    let live = Path::new("/sys/fs/cgroup/memory/memory.stat");
    if let Ok(text) = std::fs::read_to_string(live) {
        measure("v1 memory.stat (this host)", &text, |t| {
            let mut m = MemoryStats::default();
            v1::apply_memory_stat(t, true, &mut m).expect("parses");
            black_box(m);
        });
    }
    let v2_stat = fixture_text(FixtureVersion::V2, "", "memory.stat");
    measure("v2 memory.stat (fixture)", &v2_stat, |t| {
        let mut m = MemoryStats::default();
        v2::apply_memory_stat(t, &mut m).expect("parses");
        black_box(m);
    });
    let v2_cpu = fixture_text(FixtureVersion::V2, "", "cpu.stat");
    measure("v2 cpu.stat (fixture)", &v2_cpu, |t| {
        let mut c = CpuStats::default();
        v2::apply_cpu_stat(t, &mut c).expect("parses");
        black_box(c);
    });
}
