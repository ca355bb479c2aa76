//! The cgroup v2 interface files the agent reads (`cpu.stat`,
//! `memory.stat`, `memory.events`, `io.stat`, `*.pressure`, `cpu.max`,
//! `memory.max`, single values): every parser must answer an error, never
//! panic. The first byte picks the file; the rest is its text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osprey_collector::cgroup::{parse, v2};
use osprey_collector::stats::{CpuStats, MemoryStats};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let mut cpu = CpuStats::default();
    let mut memory = MemoryStats::default();
    let mut devices = Vec::new();
    match which % 11 {
        0 => drop(v2::apply_cpu_stat(&text, &mut cpu)),
        1 => drop(v2::apply_memory_stat(&text, &mut memory)),
        2 => drop(v2::apply_memory_events(&text, &mut memory)),
        3 => drop(v2::apply_io_stat(&text, &mut devices)),
        4 => drop(v2::read_pressure(&text)),
        5 => drop(parse::cpu_max(&text)),
        6 => drop(parse::single_u64_or_max(&text)),
        7 => drop(parse::single_i64(&text)),
        8 => drop(parse::memory_events(&text)),
        9 => {
            if let Ok(w) = parse::single_u64(&text) {
                let _ = v2::weight_to_shares(w);
            }
        }
        _ => {
            for token in text.split_whitespace() {
                let _ = parse::device_number(token);
            }
        }
    }
});
