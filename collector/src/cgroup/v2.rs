//! cgroup v2: cAdvisor's rules for the unified hierarchy, plus the v2
//! counters cAdvisor leaves out and [`crate::stats`] asks for (failcnt and
//! OOM counts from `memory.events`, kernel memory from `memory.stat`).
//!
//! Each `apply_*` function folds one file's contents into the sample.

use std::path::Path;

use super::parse::{self, ParseError};
use super::v1::{device_entry, read_u64};
use super::{ReadError, limit_or_unlimited, read_optional};
use crate::stats::{BlkioDevice, CfsStats, ContainerSpec, CpuStats, MemoryStats, Psi};

/// `cpu.stat` (v2): usage in µs converted to ns. The CFS keys are present
/// only where the cpu controller is enabled (not at the root), so `cfs` is
/// set only when `nr_periods` is there.
pub fn apply_cpu_stat(text: &str, cpu: &mut CpuStats) -> Result<(), ParseError> {
    let mut cfs = CfsStats::default();
    let mut has_cfs = false;
    parse::visit_flat_keyed(text, |key, v| match key {
        "usage_usec" => cpu.usage_ns = usec_to_ns(v),
        "user_usec" => cpu.user_ns = usec_to_ns(v),
        "system_usec" => cpu.system_ns = usec_to_ns(v),
        "nr_periods" => {
            cfs.periods = v;
            has_cfs = true;
        }
        "nr_throttled" => cfs.throttled_periods = v,
        "throttled_usec" => cfs.throttled_ns = usec_to_ns(v),
        "nr_bursts" => cfs.burst_periods = Some(v),
        "burst_usec" => cfs.burst_ns = Some(usec_to_ns(v)),
        _ => {}
    })?;
    cpu.cfs = has_cfs.then_some(cfs);
    Ok(())
}

fn usec_to_ns(usec: u64) -> u64 {
    usec.saturating_mul(1000)
}

/// `memory.stat` (v2): `file` → cache, `anon` → rss, `file_mapped`,
/// `active_file`, `inactive_file`, `kernel` (kernel ≥ 5.18), `pgfault`,
/// `pgmajfault`.
pub fn apply_memory_stat(text: &str, memory: &mut MemoryStats) -> Result<(), ParseError> {
    // Read every tick of every cgroup: one pass over the bytes
    // (`visit_flat_keyed`), no per-line iterator of results.
    parse::visit_flat_keyed(text, |key, value| {
        let slot = match key {
            "anon" => &mut memory.rss,
            "file" => &mut memory.cache,
            "file_mapped" => &mut memory.mapped_file,
            "active_file" => &mut memory.active_file,
            "inactive_file" => &mut memory.inactive_file,
            "kernel" => &mut memory.kernel,
            "pgfault" => &mut memory.pgfault,
            "pgmajfault" => &mut memory.pgmajfault,
            _ => return,
        };
        *slot = value;
    })
}

/// `memory.events`: `max` → failcnt, `oom` → OOM events, `oom_kill` → OOM
/// kills.
pub fn apply_memory_events(text: &str, memory: &mut MemoryStats) -> Result<(), ParseError> {
    let events = parse::memory_events(text)?;
    memory.failcnt = events.max;
    memory.oom_events = events.oom;
    memory.oom_kills = events.oom_kill;
    Ok(())
}

/// `io.stat`: `rbytes`/`wbytes` → bytes, `rios`/`wios` → operations, per
/// device. Discards are ignored, as in cAdvisor.
pub fn apply_io_stat(text: &str, devices: &mut Vec<BlkioDevice>) -> Result<(), ParseError> {
    for line in parse::io_stat(text) {
        let line = line?;
        let dev = device_entry(devices, line.major, line.minor);
        dev.read_bytes = line.rbytes;
        dev.write_bytes = line.wbytes;
        dev.reads = line.rios;
        dev.writes = line.wios;
    }
    Ok(())
}

/// A PSI file's `some`/`full` totals (µs); a missing line counts as 0.
pub fn read_pressure(text: &str) -> Result<Psi, ParseError> {
    let p = parse::pressure_totals(text)?;
    Ok(Psi {
        some_total_us: p.some.map_or(0, |l| l.total_us),
        full_total_us: p.full.map_or(0, |l| l.total_us),
    })
}

/// Maps `cpu.weight` (1..=10000) to v1-style shares (2..=262144) with
/// cAdvisor's formula `2 + (weight − 1) · 262142 / 9999`.
pub fn weight_to_shares(weight: u64) -> u64 {
    let weight = weight.clamp(1, 10_000);
    2 + (weight - 1) * 262_142 / 9_999
}

/// The files [`read_spec`] reads (where they exist), for the benchmark's
/// floor.
pub const SPEC_FILES: [&str; 6] = [
    "cpu.weight",
    "cpu.max",
    "memory.max",
    "memory.swap.max",
    "memory.min",
    "pids.max",
];

/// Reads the limits of a v2 cgroup: `cpu.weight` (as shares), `cpu.max`,
/// and — only when `memory.max` exists, as cAdvisor — `memory.max`,
/// `memory.swap.max` (swap only), `memory.min` (reservation); `pids.max`.
/// `max` and byte values above 2^62 are unlimited.
pub fn read_spec(cgroup: &str, dir: &Path) -> Result<ContainerSpec, ReadError> {
    let mut spec = ContainerSpec {
        cpu_shares: read_u64(cgroup, dir, "cpu.weight")?.map(weight_to_shares),
        ..ContainerSpec::default()
    };
    if let Some((path, text)) = read_optional(cgroup, dir, "cpu.max")? {
        let max = parse::cpu_max(&text).map_err(|e| ReadError::parse(&path, e))?;
        spec.cpu_quota_us = max.quota_us;
        spec.cpu_period_us = Some(max.period_us);
    }
    if let Some(limit) = read_max(cgroup, dir, "memory.max")? {
        spec.memory_limit = limit;
        spec.memory_swap_limit = read_max(cgroup, dir, "memory.swap.max")?.flatten();
        spec.memory_reservation = read_u64(cgroup, dir, "memory.min")?.and_then(limit_or_unlimited);
    }
    spec.pids_limit = read_max(cgroup, dir, "pids.max")?.flatten();
    Ok(spec)
}

/// Reads an optional `<value|max>` file: outer `None` when absent, inner
/// `None` when unlimited.
fn read_max(cgroup: &str, dir: &Path, name: &str) -> Result<Option<Option<u64>>, ReadError> {
    match read_optional(cgroup, dir, name)? {
        Some((path, text)) => parse::single_u64_or_max(&text)
            .map(|v| Some(v.and_then(limit_or_unlimited)))
            .map_err(|e| ReadError::parse(&path, e)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_maps_onto_shares_range() {
        assert_eq!(weight_to_shares(1), 2);
        assert_eq!(weight_to_shares(100), 2 + 99 * 262_142 / 9_999);
        assert_eq!(weight_to_shares(10_000), 262_144);
        assert_eq!(weight_to_shares(0), 2);
    }

    #[test]
    fn root_cpu_stat_has_no_cfs() {
        let mut cpu = CpuStats::default();
        apply_cpu_stat(
            "usage_usec 5\nuser_usec 3\nsystem_usec 2\nnice_usec 1\n",
            &mut cpu,
        )
        .unwrap();
        assert_eq!(
            (cpu.usage_ns, cpu.user_ns, cpu.system_ns),
            (5000, 3000, 2000)
        );
        assert_eq!(cpu.cfs, None);
    }
}
