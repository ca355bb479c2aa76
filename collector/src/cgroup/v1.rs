//! cgroup v1: cAdvisor's rules for the per-controller hierarchies.
//!
//! Each `apply_*` function folds one file's contents into the sample; they
//! are pure so the reader and the tests share them. Units follow
//! [`crate::stats`]: nanoseconds and bytes.

use std::path::Path;

use super::parse::{self, BlkioOp, ParseError};
use super::{ReadError, limit_or_unlimited, read_optional};
use crate::stats::{BlkioDevice, CfsStats, ContainerSpec, CpuStats, MemoryStats};

/// `cpuacct.usage`: total CPU time, ns.
pub fn apply_cpuacct_usage(text: &str, cpu: &mut CpuStats) -> Result<(), ParseError> {
    cpu.usage_ns = parse::single_u64(text)?;
    Ok(())
}

/// `cpuacct.stat`: `user` and `system` in USER_HZ ticks, converted to ns
/// (10 ms resolution at the usual 100 Hz).
pub fn apply_cpuacct_stat(text: &str, user_hz: u64, cpu: &mut CpuStats) -> Result<(), ParseError> {
    for pair in parse::flat_keyed(text) {
        match pair? {
            ("user", ticks) => cpu.user_ns = ticks_to_ns(ticks, user_hz),
            ("system", ticks) => cpu.system_ns = ticks_to_ns(ticks, user_hz),
            _ => {}
        }
    }
    Ok(())
}

/// Converts clock ticks to nanoseconds, saturating.
pub fn ticks_to_ns(ticks: u64, user_hz: u64) -> u64 {
    let ns = u128::from(ticks) * 1_000_000_000 / u128::from(user_hz.max(1));
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// The kernel's USER_HZ (`sysconf(_SC_CLK_TCK)`), the unit of
/// `cpuacct.stat`; 100 if the call fails.
pub fn user_hz() -> u64 {
    static USER_HZ: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *USER_HZ.get_or_init(|| {
        // SAFETY: sysconf has no preconditions and only reads a constant.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        u64::try_from(hz).ok().filter(|&hz| hz > 0).unwrap_or(100)
    })
}

/// `cpu.stat` (v1): CFS counters; `throttled_time` and `burst_time` are ns.
/// `nr_bursts`/`burst_time` appear on kernels ≥ 5.14.
pub fn apply_cpu_stat(text: &str, cpu: &mut CpuStats) -> Result<(), ParseError> {
    let mut cfs = CfsStats::default();
    parse::visit_flat_keyed(text, |key, v| match key {
        "nr_periods" => cfs.periods = v,
        "nr_throttled" => cfs.throttled_periods = v,
        "throttled_time" => cfs.throttled_ns = v,
        "nr_bursts" => cfs.burst_periods = Some(v),
        "burst_time" => cfs.burst_ns = Some(v),
        _ => {}
    })?;
    cpu.cfs = Some(cfs);
    Ok(())
}

/// `memory.stat` (v1). With `use_hierarchy` the `total_*` keys are used for
/// cache, rss, swap and mapped file, otherwise the cgroup's own keys; the
/// active/inactive file figures always come from `total_*` and the page
/// faults always from the cgroup's own `pgfault`/`pgmajfault` (cAdvisor's
/// choice, kept for compatible numbers).
pub fn apply_memory_stat(
    text: &str,
    use_hierarchy: bool,
    memory: &mut MemoryStats,
) -> Result<(), ParseError> {
    // Read every tick of every cgroup: one pass over the bytes
    // (`visit_flat_keyed`), no per-line iterator of results.
    parse::visit_flat_keyed(text, |key, value| {
        let (hierarchical, name) = match key.strip_prefix("total_") {
            Some(name) => (true, name),
            None => (false, key),
        };
        let slot = match (hierarchical, name) {
            (true, "active_file") => &mut memory.active_file,
            (true, "inactive_file") => &mut memory.inactive_file,
            (false, "pgfault") => &mut memory.pgfault,
            (false, "pgmajfault") => &mut memory.pgmajfault,
            (h, _) if h != use_hierarchy => return,
            (_, "cache") => &mut memory.cache,
            (_, "rss") => &mut memory.rss,
            (_, "swap") => &mut memory.swap,
            (_, "mapped_file") => &mut memory.mapped_file,
            _ => return,
        };
        *slot = value;
    })
}

/// `memory.oom_control`: the `oom_kill` counter (kernel ≥ 4.13).
pub fn apply_oom_control(text: &str, memory: &mut MemoryStats) -> Result<(), ParseError> {
    for pair in parse::flat_keyed(text) {
        if let ("oom_kill", v) = pair? {
            memory.oom_kills = v;
        }
    }
    Ok(())
}

/// `memory.use_hierarchy`: `1` (the only value kernels ≥ 5.x allow) or `0`.
pub fn parse_use_hierarchy(text: &str) -> Result<bool, ParseError> {
    Ok(parse::single_u64(text)? != 0)
}

/// Folds a pair of v1 blkio files — operations (`…io_serviced…`) and bytes
/// (`…io_service_bytes…`) — into per-device counters.
pub fn apply_blkio(
    serviced: &str,
    service_bytes: &str,
    devices: &mut Vec<BlkioDevice>,
) -> Result<(), ParseError> {
    apply_blkio_serviced(serviced, devices)?;
    apply_blkio_service_bytes(service_bytes, devices)
}

/// Folds a v1 operations file (`…io_serviced…`) into per-device counters.
pub fn apply_blkio_serviced(text: &str, devices: &mut Vec<BlkioDevice>) -> Result<(), ParseError> {
    parse::visit_blkio_v1(text, |e| {
        let dev = device_entry(devices, e.major, e.minor);
        match e.op {
            BlkioOp::Read => dev.reads = e.value,
            BlkioOp::Write => dev.writes = e.value,
            _ => {}
        }
    })
}

/// Folds a v1 bytes file (`…io_service_bytes…`) into per-device counters.
pub fn apply_blkio_service_bytes(
    text: &str,
    devices: &mut Vec<BlkioDevice>,
) -> Result<(), ParseError> {
    parse::visit_blkio_v1(text, |e| {
        let dev = device_entry(devices, e.major, e.minor);
        match e.op {
            BlkioOp::Read => dev.read_bytes = e.value,
            BlkioOp::Write => dev.write_bytes = e.value,
            _ => {}
        }
    })
}

/// Whether a v1 blkio file has any per-device entry: cAdvisor uses the
/// first file set whose first file "yields data".
pub fn blkio_has_data(text: &str) -> bool {
    parse::blkio_v1(text).next().is_some()
}

/// The entry for `major:minor`, appended if new. Linear search: a cgroup
/// touches a handful of devices.
pub(crate) fn device_entry(
    devices: &mut Vec<BlkioDevice>,
    major: u64,
    minor: u64,
) -> &mut BlkioDevice {
    let index = match devices
        .iter()
        .position(|d| d.major == major && d.minor == minor)
    {
        Some(i) => i,
        None => {
            devices.push(BlkioDevice {
                major,
                minor,
                ..BlkioDevice::default()
            });
            devices.len() - 1
        }
    };
    &mut devices[index]
}

/// The v1 blkio file pairs (operations, bytes) in cAdvisor's order of
/// preference: BFQ, CFQ, throttle recursive, throttle. (The BFQ "debug"
/// set reads the same two files as the plain BFQ set for the counters
/// kept here, so it is not listed separately.)
pub const BLKIO_FILE_SETS: [(&str, &str); 4] = [
    (
        "blkio.bfq.io_serviced_recursive",
        "blkio.bfq.io_service_bytes_recursive",
    ),
    (
        "blkio.io_serviced_recursive",
        "blkio.io_service_bytes_recursive",
    ),
    (
        "blkio.throttle.io_serviced_recursive",
        "blkio.throttle.io_service_bytes_recursive",
    ),
    (
        "blkio.throttle.io_serviced",
        "blkio.throttle.io_service_bytes",
    ),
];

/// Drops from `sets` (pairs of [`BLKIO_FILE_SETS`] a cgroup has) each set
/// whose `_recursive` sibling is there too. Both files of a policy list
/// the same devices (the cgroup's own block groups), the recursive one
/// with its descendants' counts added: where it is empty the plain one is
/// too, and where it has data it comes first. Probing the plain set would
/// cost a file open and read a minute per cgroup (half the probes on a 6.x
/// kernel, whose throttle files stay empty) and never be chosen.
pub fn drop_sets_shadowed_by_recursive(sets: &mut Vec<(&'static str, &'static str)>) {
    let recursive: Vec<&str> = sets
        .iter()
        .filter_map(|(serviced, _)| serviced.strip_suffix("_recursive"))
        .collect();
    sets.retain(|(serviced, _)| !recursive.contains(serviced));
}

/// Where the limit files of a v1 cgroup live (`None` when the controller
/// is not mounted or the cgroup does not exist in its hierarchy).
#[derive(Debug, Clone, Default)]
pub struct SpecDirs {
    /// The `cpu` controller directory.
    pub cpu: Option<std::sync::Arc<std::path::Path>>,
    /// The `memory` controller directory.
    pub memory: Option<std::sync::Arc<std::path::Path>>,
    /// The `pids` controller directory.
    pub pids: Option<std::sync::Arc<std::path::Path>>,
}

/// The files [`read_spec`] reads in each controller directory of
/// [`SpecDirs`] (`cpu`, `memory`, `pids`), for the benchmark's floor.
pub const SPEC_FILES: [&[&str]; 3] = [
    &["cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us"],
    &[
        "memory.limit_in_bytes",
        "memory.memsw.limit_in_bytes",
        "memory.soft_limit_in_bytes",
    ],
    &["pids.max"],
];

/// Reads the limits of a v1 cgroup: `cpu.shares`, `cpu.cfs_period_us`,
/// `cpu.cfs_quota_us` (`-1` → unlimited), `memory.limit_in_bytes`,
/// `memory.memsw.limit_in_bytes` (memory + swap), `memory.soft_limit_in_bytes`
/// (reservation), `pids.max`. Byte limits above 2^62 are unlimited.
pub fn read_spec(cgroup: &str, dirs: &SpecDirs) -> Result<ContainerSpec, ReadError> {
    let mut spec = ContainerSpec::default();
    if let Some(dir) = &dirs.cpu {
        spec.cpu_shares = read_u64(cgroup, dir, "cpu.shares")?;
        spec.cpu_period_us = read_u64(cgroup, dir, "cpu.cfs_period_us")?;
        if let Some((path, text)) = read_optional(cgroup, dir, "cpu.cfs_quota_us")? {
            let quota = parse::single_i64(&text).map_err(|e| ReadError::parse(&path, e))?;
            spec.cpu_quota_us = u64::try_from(quota).ok();
        }
    }
    if let Some(dir) = &dirs.memory {
        spec.memory_limit =
            read_u64(cgroup, dir, "memory.limit_in_bytes")?.and_then(limit_or_unlimited);
        spec.memory_swap_limit =
            read_u64(cgroup, dir, "memory.memsw.limit_in_bytes")?.and_then(limit_or_unlimited);
        spec.memory_reservation =
            read_u64(cgroup, dir, "memory.soft_limit_in_bytes")?.and_then(limit_or_unlimited);
    }
    if let Some(dir) = &dirs.pids
        && let Some((path, text)) = read_optional(cgroup, dir, "pids.max")?
    {
        spec.pids_limit =
            parse::single_u64_or_max(&text).map_err(|e| ReadError::parse(&path, e))?;
    }
    Ok(spec)
}

/// Reads an optional single-value file.
pub(crate) fn read_u64(cgroup: &str, dir: &Path, name: &str) -> Result<Option<u64>, ReadError> {
    match read_optional(cgroup, dir, name)? {
        Some((path, text)) => parse::single_u64(&text)
            .map(Some)
            .map_err(|e| ReadError::parse(&path, e)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_blkio_sets_with_a_recursive_sibling_are_not_probed() {
        let mut all = BLKIO_FILE_SETS.to_vec();
        drop_sets_shadowed_by_recursive(&mut all);
        assert_eq!(all, BLKIO_FILE_SETS[..3].to_vec());
        // Without the recursive files (older kernels) the plain set stays.
        let mut plain = vec![BLKIO_FILE_SETS[0], BLKIO_FILE_SETS[3]];
        drop_sets_shadowed_by_recursive(&mut plain);
        assert_eq!(plain, vec![BLKIO_FILE_SETS[0], BLKIO_FILE_SETS[3]]);
    }

    #[test]
    fn ticks_convert_to_nanoseconds() {
        assert_eq!(ticks_to_ns(150, 100), 1_500_000_000);
        assert_eq!(ticks_to_ns(3, 250), 12_000_000);
        assert_eq!(ticks_to_ns(u64::MAX, 1), u64::MAX);
        assert_eq!(ticks_to_ns(5, 0), 5_000_000_000);
    }

    #[test]
    fn memory_stat_hierarchy_choice() {
        let text = "cache 1\nrss 2\nswap 3\nmapped_file 4\npgfault 5\npgmajfault 6\ninactive_file 7\nactive_file 8\n\
                    total_cache 10\ntotal_rss 20\ntotal_swap 30\ntotal_mapped_file 40\ntotal_pgfault 50\ntotal_pgmajfault 60\n\
                    total_inactive_file 70\ntotal_active_file 80\n";
        let mut m = MemoryStats::default();
        apply_memory_stat(text, true, &mut m).unwrap();
        assert_eq!((m.cache, m.rss, m.swap, m.mapped_file), (10, 20, 30, 40));
        assert_eq!((m.pgfault, m.pgmajfault), (5, 6));
        assert_eq!((m.inactive_file, m.active_file), (70, 80));
        let mut m = MemoryStats::default();
        apply_memory_stat(text, false, &mut m).unwrap();
        assert_eq!((m.cache, m.rss, m.swap, m.mapped_file), (1, 2, 3, 4));
        assert_eq!((m.pgfault, m.pgmajfault), (5, 6));
        assert_eq!((m.inactive_file, m.active_file), (70, 80));
    }
}
