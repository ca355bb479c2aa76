//! The cgroup v1 interface files the agent reads (`cpuacct.usage`,
//! `cpuacct.stat`, `cpu.stat`, `memory.stat`, `memory.oom_control`,
//! `memory.use_hierarchy`, the `blkio.*` files): every parser must
//! answer an error, never panic, whatever a (possibly hostile) container
//! writes there. The first byte picks the file; the rest is its text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osprey_collector::cgroup::v1;
use osprey_collector::stats::{CpuStats, MemoryStats};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let mut cpu = CpuStats::default();
    let mut memory = MemoryStats::default();
    let mut devices = Vec::new();
    match which % 9 {
        0 => drop(v1::apply_cpuacct_usage(&text, &mut cpu)),
        1 => drop(v1::apply_cpuacct_stat(&text, 100, &mut cpu)),
        2 => drop(v1::apply_cpuacct_stat(&text, u64::from(which), &mut cpu)),
        3 => drop(v1::apply_cpu_stat(&text, &mut cpu)),
        4 => drop(v1::apply_memory_stat(&text, which & 0x80 != 0, &mut memory)),
        5 => drop(v1::apply_oom_control(&text, &mut memory)),
        6 => drop(v1::parse_use_hierarchy(&text)),
        7 => {
            // Both blkio files of one read, split at the first NUL.
            let (serviced, bytes) = text.split_once('\0').unwrap_or((&text, ""));
            let _ = v1::apply_blkio(serviced, bytes, &mut devices);
        }
        _ => {
            let _ = v1::blkio_has_data(&text);
            let _ = v1::apply_blkio_service_bytes(&text, &mut devices);
        }
    }
});
