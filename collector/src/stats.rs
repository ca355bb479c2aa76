//! The sample model: what one collection reads about one cgroup.
//!
//! Field units follow the kernel (nanoseconds, bytes, counts), not the
//! Prometheus exposition (seconds); conversion happens in
//! [`crate::expose`]. A field the running cgroup version cannot provide is
//! `None` rather than a fake zero, so the exposition can omit it; where
//! cAdvisor documents a fixed zero (e.g. `failcnt` on v2) we take the better
//! value when the kernel offers one (v2 `memory.events max`).

use serde::{Deserialize, Serialize};

/// Everything read about one cgroup at one tick.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerStats {
    /// Collection time, milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// CPU accounting.
    pub cpu: CpuStats,
    /// Memory accounting.
    pub memory: MemoryStats,
    /// Block I/O per device.
    pub blkio: Vec<BlkioDevice>,
    /// Tasks in the cgroup and their limit.
    pub pids: PidsStats,
    /// Pressure stall information (cgroup v2 only).
    pub pressure: Option<PressureStats>,
    /// Network counters per interface (only for cgroups with their own
    /// network namespace; empty otherwise).
    pub network: Vec<InterfaceStats>,
    /// Filesystem usage (the writable layer of a container, or the node's
    /// filesystems for the root cgroup). Refreshed on a slower cadence, so
    /// this may be the value of an earlier tick.
    pub filesystem: Vec<FilesystemStats>,
}

/// CPU time consumed, in nanoseconds, plus CFS bandwidth control counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuStats {
    /// Total CPU time (v1 `cpuacct.usage`, v2 `cpu.stat usage_usec`).
    pub usage_ns: u64,
    /// User CPU time (v1 `cpuacct.stat user` ticks, v2 `user_usec`).
    pub user_ns: u64,
    /// System CPU time (v1 `cpuacct.stat system` ticks, v2 `system_usec`).
    pub system_ns: u64,
    /// CFS throttling counters, present when the kernel reports them.
    pub cfs: Option<CfsStats>,
}

/// CFS bandwidth control counters (`cpu.stat`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CfsStats {
    /// Enforcement periods elapsed (`nr_periods`).
    pub periods: u64,
    /// Periods in which the cgroup was throttled (`nr_throttled`).
    pub throttled_periods: u64,
    /// Total time throttled, ns (v1 `throttled_time`, v2 `throttled_usec`).
    pub throttled_ns: u64,
    /// Periods in which burst was used (`nr_bursts`), when reported.
    pub burst_periods: Option<u64>,
    /// Total burst time, ns (`burst_usec` / `burst_time`), when reported.
    pub burst_ns: Option<u64>,
}

/// Memory accounting in bytes (counts for faults and events).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryStats {
    /// Current usage including page cache (v1 `memory.usage_in_bytes`, v2 `memory.current`).
    pub usage: u64,
    /// Peak usage (v1 `memory.max_usage_in_bytes`, v2 `memory.peak` when the kernel has it).
    pub max_usage: Option<u64>,
    /// Working set: usage − inactive_file, floored at 0 (cAdvisor's rule).
    pub working_set: u64,
    /// Anonymous memory (v1 `total_rss`/`rss`, v2 `anon`).
    pub rss: u64,
    /// Page cache (v1 `total_cache`/`cache`, v2 `file`).
    pub cache: u64,
    /// Swap in use (v1 `total_swap`, v2 `memory.swap.current`).
    pub swap: u64,
    /// Mapped files (v1 `total_mapped_file`, v2 `file_mapped`).
    pub mapped_file: u64,
    /// Kernel memory (v1 `memory.kmem.usage_in_bytes`, v2 `memory.stat kernel`).
    pub kernel: u64,
    /// Active page cache (`total_active_file` / `active_file`).
    pub active_file: u64,
    /// Inactive page cache (`total_inactive_file` / `inactive_file`).
    pub inactive_file: u64,
    /// Times the limit was hit (v1 `memory.failcnt`, v2 `memory.events max`).
    pub failcnt: u64,
    /// Page faults of the cgroup itself (`memory.stat pgfault`; on v1 the
    /// cgroup's own key, as cAdvisor's `scope="container"`).
    pub pgfault: u64,
    /// Major page faults (`pgmajfault`).
    pub pgmajfault: u64,
    /// OOM events (v2 `memory.events oom`; v1 `memory.oom_control` has no
    /// counter before kernel 4.13, `oom_kill` after).
    pub oom_events: u64,
    /// OOM kills (v2 `memory.events oom_kill`, v1 `memory.oom_control oom_kill`).
    pub oom_kills: u64,
}

/// Block I/O counters for one device (`major:minor`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioDevice {
    /// Device major number.
    pub major: u64,
    /// Device minor number.
    pub minor: u64,
    /// Bytes read.
    pub read_bytes: u64,
    /// Bytes written.
    pub write_bytes: u64,
    /// Read operations.
    pub reads: u64,
    /// Write operations.
    pub writes: u64,
}

/// Task counts (`pids` controller).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidsStats {
    /// Tasks now in the cgroup (`pids.current`).
    pub current: Option<u64>,
    /// Task limit (`pids.max`, `None` when "max").
    pub limit: Option<u64>,
}

/// Pressure stall totals for the three resources (v2 only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PressureStats {
    /// `cpu.pressure`.
    pub cpu: Psi,
    /// `memory.pressure`.
    pub memory: Psi,
    /// `io.pressure`.
    pub io: Psi,
}

impl PressureStats {
    /// One file's totals: 0 `cpu`, 1 `memory`, 2 `io`.
    pub fn slot(&self, slot: usize) -> &Psi {
        match slot {
            0 => &self.cpu,
            1 => &self.memory,
            _ => &self.io,
        }
    }

    /// One file's totals, to fill: 0 `cpu`, 1 `memory`, 2 `io`.
    pub fn slot_mut(&mut self, slot: usize) -> &mut Psi {
        match slot {
            0 => &mut self.cpu,
            1 => &mut self.memory,
            _ => &mut self.io,
        }
    }
}

/// One pressure file's cumulative totals, microseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Psi {
    /// `some total=`: time at least one task was stalled.
    pub some_total_us: u64,
    /// `full total=`: time all tasks were stalled.
    pub full_total_us: u64,
}

/// Counters of one network interface (`/proc/<pid>/net/dev`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceStats {
    /// Interface name, e.g. `eth0`.
    pub name: String,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Received packets dropped.
    pub rx_dropped: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Transmit errors.
    pub tx_errors: u64,
    /// Transmitted packets dropped.
    pub tx_dropped: u64,
}

/// Usage of one filesystem or directory tree.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilesystemStats {
    /// Device (block device path or mount source), the `device` label.
    pub device: String,
    /// Mount point, for node filesystems.
    pub mountpoint: Option<String>,
    /// Filesystem type (`ext4`, `overlay`, …) when known.
    pub fs_type: Option<String>,
    /// Bytes used.
    pub usage: u64,
    /// Capacity of the filesystem holding it (the limit), bytes.
    pub limit: u64,
    /// Bytes available to unprivileged users.
    pub available: u64,
    /// Inodes total (for a writable layer: inodes used, as cAdvisor reports).
    pub inodes: u64,
    /// Inodes free.
    pub inodes_free: u64,
}

/// Limits and shares of a cgroup: read when it is discovered and refreshed
/// on a slow cadence, not on every tick (limits rarely change).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// CPU shares (v1 `cpu.shares`; v2 `cpu.weight` mapped to shares with
    /// `2 + (weight − 1) · 262142 / 9999`).
    pub cpu_shares: Option<u64>,
    /// CFS period, µs (`cpu.cfs_period_us` / `cpu.max` second field).
    pub cpu_period_us: Option<u64>,
    /// CFS quota, µs; `None` when unlimited.
    pub cpu_quota_us: Option<u64>,
    /// Memory limit, bytes; `None` when unlimited (or above 2^62).
    pub memory_limit: Option<u64>,
    /// Swap limit, bytes (v1: memory+swap, v2: swap only, as cAdvisor).
    pub memory_swap_limit: Option<u64>,
    /// Memory reservation (v1 soft limit, v2 `memory.min`).
    pub memory_reservation: Option<u64>,
    /// Task limit (`pids.max`).
    pub pids_limit: Option<u64>,
}

impl ContainerSpec {
    /// CPU limit in millicores from quota/period, `None` when unlimited.
    pub fn cpu_limit_millicores(&self) -> Option<u64> {
        match (self.cpu_quota_us, self.cpu_period_us) {
            (Some(q), Some(p)) if p > 0 => Some(q * 1000 / p),
            _ => None,
        }
    }
}
