//! [`CgroupReader`]: the per-cgroup hot path.
//!
//! A reader opens the statistics files of one cgroup once, keeps the file
//! descriptors, and on every tick re-reads each with `pread` at offset 0
//! into one reused buffer. Compared with open/read/close per file this
//! saves two syscalls and a path walk per file per tick, which is most of
//! the cost at 1000 cgroups × ~15 files × 1 s.
//!
//! Files that do not exist when the reader is opened (a controller not
//! enabled for the cgroup, files the root cgroup lacks, features of newer
//! kernels) are skipped once and not retried. Limit files are not held:
//! [`CgroupReader::read_spec`] opens them on demand because limits are read
//! rarely.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::v1::{self, BLKIO_FILE_SETS, SpecDirs};
use super::{ParseError, ReadError, is_gone, v2};
use crate::layout::{CgroupLayout, CgroupMode, join_cgroup};
use crate::stats::{ContainerSpec, ContainerStats, MemoryStats, PidsStats, PressureStats};

/// Which statistics file a descriptor reads; decides how its contents are
/// folded into the sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatFile {
    V1CpuacctUsage,
    V1CpuacctStat,
    V1CpuStat,
    V1MemoryUsage,
    V1MemoryMaxUsage,
    V1MemoryFailcnt,
    V1MemoryStat,
    V1KmemUsage,
    V1OomControl,
    PidsCurrent,
    V2CpuStat,
    V2MemoryCurrent,
    V2MemoryPeak,
    V2MemoryStat,
    V2SwapCurrent,
    V2MemoryEvents,
    V2IoStat,
    V2CpuPressure,
    V2MemoryPressure,
    V2IoPressure,
}

/// How often a reader reads one of its files (see
/// [`CgroupReader::read_plan`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadCadence {
    /// At every read.
    Tick,
    /// At every read while the cgroup's CPU time moves; on the slow
    /// cadence while it stands still (`pids.current` when
    /// [`CgroupReader::set_carry_idle_pids`] is on, the pressure files
    /// when [`CgroupReader::set_carry_idle_pressure`] is, also while their
    /// totals move).
    WhileRunning,
    /// At every read while the cgroup's memory usage moves; on the slow
    /// cadence while it stands still (`memory.stat` and v2's
    /// `memory.swap.current` when
    /// [`CgroupReader::set_carry_quiet_memory_stat`] is on). `lagged`:
    /// at most once per [lag](CgroupReader::set_memory_stat_lag) while it
    /// moves by less than the kernel's batch (`memory.stat`).
    WhileMemoryMoves {
        /// Read at most once per lag while the usage moves a little.
        lagged: bool,
    },
    /// On the slow cadence ([`CgroupReader::set_slow_interval`]).
    Slow,
}

/// An open statistics file.
#[derive(Debug)]
struct HeldFile {
    kind: StatFile,
    /// Missing at open time is an error (it is part of every cgroup of the
    /// controller), and failing later means the cgroup is gone.
    required: bool,
    /// The hierarchy the file is in: an index into the reader's mount
    /// points. The file's path is rebuilt from it and the cgroup's path
    /// when needed (opening a slow file, an error): a full path per file,
    /// later per controller, was most of a reader's memory at thousands of
    /// cgroups.
    mount: u8,
    /// Held open for per-tick reads; `None` for the slow files, opened when
    /// due (every few seconds), so that thousands of cgroups fit under the
    /// open-file limit, and for v1 `cpu.stat` while it is not read.
    file: Option<File>,
}

/// A v1 blkio file set: operations and bytes, held open.
#[derive(Debug)]
struct BlkioPair {
    serviced: (PathBuf, File),
    service_bytes: (PathBuf, File),
}

/// The v1 blkio sources of a cgroup. cAdvisor takes the first file set in
/// [`BLKIO_FILE_SETS`] order that yields data. Until one has, the
/// candidates are probed (opened, read, closed) at most every
/// [`BLKIO_PROBE_INTERVAL`]: on 6.x kernels the throttle files stay empty
/// until a rule exists, and probing every set every tick of every cgroup
/// would cost more than everything else read. Once a set has data its two
/// files are held open and the others forgotten: counters never go back to
/// empty while the cgroup lives.
#[derive(Debug, Default)]
struct BlkioV1 {
    /// The blkio hierarchy (an index into the reader's mount points) and
    /// the file sets not yet seen with data.
    mount: Option<u8>,
    candidates: Vec<(&'static str, &'static str)>,
    chosen: Option<BlkioPair>,
    next_probe: Option<Instant>,
}

/// How often a v1 cgroup whose blkio files are all empty is probed again.
pub const BLKIO_PROBE_INTERVAL: Duration = Duration::from_secs(60);

/// Reads one cgroup's statistics every tick through held file descriptors.
///
/// Each reader holds 10–17 descriptors ([`open_file_count`](Self::open_file_count)),
/// so 1000 cgroups need more than the usual soft limit of 1024 open files:
/// call [`raise_open_file_limit`] at start-up. Running out shows as
/// [`ReadError::Io`] with EMFILE from [`open`](Self::open).
///
/// ```no_run
/// # use osprey_collector::{cgroup::CgroupReader, layout::CgroupLayout};
/// # fn f(layout: &CgroupLayout) -> Result<(), osprey_collector::cgroup::ReadError> {
/// let mut reader = CgroupReader::open(layout, "/system.slice/ssh.service")?;
/// let spec = reader.read_spec()?; // on discovery, then rarely
/// let stats = reader.read_stats(1_700_000_000_000)?; // every tick
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct CgroupReader {
    cgroup: String,
    mode: CgroupMode,
    /// Per-tick files, in the order they are read.
    files: Vec<HeldFile>,
    blkio: BlkioV1,
    /// v1 only; read once at open (`memory.use_hierarchy`, treated as 1
    /// when absent: kernels ≥ 5.x no longer allow 0).
    use_hierarchy: bool,
    user_hz: u64,
    /// v2 without `memory.current` (the root): usage is `anon + file`.
    usage_from_stat: bool,
    /// A directory of the cgroup; whether it still exists tells a removed
    /// cgroup from a file the kernel hid.
    primary_dir: Arc<Path>,
    /// The mount points of the hierarchies the reader's files are in.
    mounts: Vec<Arc<Path>>,
    /// v1: the hierarchies of the `cpu`, `memory` and `pids` limit files.
    spec_v1: [Option<u8>; 3],
    /// Slow-moving figures (peak usage, limit hits, OOM counts, v1 kernel
    /// memory) are re-read at most this often; zero reads them every tick.
    slow_interval: Duration,
    next_slow: Option<Instant>,
    slow: SlowFigures,
    /// v1: read `cpu.stat` (CFS throttling) per tick; off once the spec
    /// shows no quota.
    read_cfs: bool,
    /// Keep the slow files open too (see [`CgroupReader::open_with`]).
    hold_slow_files: bool,
    /// Carry `memory.stat` over ticks in which the cgroup's memory usage
    /// stands still (see [`CgroupReader::set_carry_quiet_memory_stat`]).
    carry_quiet_memory_stat: bool,
    /// Carry `pids.current` over ticks in which the cgroup's CPU time
    /// stands still (see [`CgroupReader::set_carry_idle_pids`]).
    carry_idle_pids: bool,
    /// While the usage moves by less than this many bytes since the last
    /// `memory.stat` read, and for less than `memory_stat_lag_age` since
    /// then, it is carried too (see [`CgroupReader::set_memory_stat_lag`]);
    /// zero: only while the usage stands still.
    memory_stat_lag_bytes: u64,
    memory_stat_lag_age: Duration,
    /// The memory figures of the last `memory.stat` read, with the usage
    /// read in the same tick.
    last_memory_stat: Option<MemoryStats>,
    /// When `memory.stat` was last read.
    last_memory_stat_at: Option<Instant>,
    /// The last `pids.current` read: the CPU time read in the same tick,
    /// and the count.
    last_pids: Option<LastPids>,
    /// Carry the pressure files over ticks in which the CPU time stands
    /// still (see [`CgroupReader::set_carry_idle_pressure`]).
    carry_idle_pressure: bool,
    /// The CPU time read at the last read, and whether it had moved since
    /// the read before.
    last_cpu: Option<(u64, bool)>,
    /// The pressure totals as last read, and which files' had moved then.
    last_pressure: Option<LastPressure>,
}

/// The pressure files' totals as last read, with whether each file's
/// moved at that read.
#[derive(Debug, Clone, Default)]
struct LastPressure {
    stats: PressureStats,
    moved: [bool; 3],
}

/// How often the kernel flushes every cgroup's memory statistics
/// (`FLUSH_TIME` in `mm/memcontrol.c`): `memory.stat` of a cgroup whose
/// memory moves a little changes only this often.
const KERNEL_MEMCG_FLUSH_PERIOD: Duration = Duration::from_secs(2);

/// Pages of pending changes per online CPU past which the kernel flushes
/// a cgroup's memory statistics when `memory.stat` is read
/// (`MEMCG_CHARGE_BATCH`).
const KERNEL_MEMCG_CHARGE_BATCH: u64 = 64;

/// The lag of `memory.stat` the kernel itself shows, for ticks of
/// `interval` (the arguments of [`CgroupReader::set_memory_stat_lag`]):
/// its flush period (less half a tick, so that at 1 s it is read every
/// second tick rather than every third as ticks jitter), and its flush
/// threshold in bytes on this machine.
pub fn kernel_memory_stat_lag(interval: Duration) -> (Duration, u64) {
    // SAFETY: sysconf only reads system configuration.
    let (cpus, page) = unsafe {
        (
            libc::sysconf(libc::_SC_NPROCESSORS_ONLN),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let batch = KERNEL_MEMCG_CHARGE_BATCH * cpus.max(1) as u64 * page.max(4096) as u64;
    (
        KERNEL_MEMCG_FLUSH_PERIOD.saturating_sub(interval / 2),
        batch,
    )
}

/// A `pids.current` read and the CPU time read in the same tick.
#[derive(Debug, Clone, Copy)]
struct LastPids {
    cpu_usage_ns: u64,
    current: Option<u64>,
}

/// The figures of the slow files, carried between their reads.
#[derive(Debug, Default, Clone, Copy)]
struct SlowFigures {
    user_ns: u64,
    system_ns: u64,
    max_usage: Option<u64>,
    failcnt: u64,
    kernel: u64,
    oom_events: u64,
    oom_kills: u64,
}

impl StatFile {
    /// The file's name in its controller directory.
    fn file_name(self) -> &'static str {
        match self {
            StatFile::V1CpuacctUsage => "cpuacct.usage",
            StatFile::V1CpuacctStat => "cpuacct.stat",
            StatFile::V1CpuStat | StatFile::V2CpuStat => "cpu.stat",
            StatFile::V1MemoryUsage => "memory.usage_in_bytes",
            StatFile::V1MemoryMaxUsage => "memory.max_usage_in_bytes",
            StatFile::V1MemoryFailcnt => "memory.failcnt",
            StatFile::V1MemoryStat | StatFile::V2MemoryStat => "memory.stat",
            StatFile::V1KmemUsage => "memory.kmem.usage_in_bytes",
            StatFile::V1OomControl => "memory.oom_control",
            StatFile::PidsCurrent => "pids.current",
            StatFile::V2MemoryCurrent => "memory.current",
            StatFile::V2MemoryPeak => "memory.peak",
            StatFile::V2SwapCurrent => "memory.swap.current",
            StatFile::V2MemoryEvents => "memory.events",
            StatFile::V2IoStat => "io.stat",
            StatFile::V2CpuPressure => "cpu.pressure",
            StatFile::V2MemoryPressure => "memory.pressure",
            StatFile::V2IoPressure => "io.pressure",
        }
    }

    /// A pressure file's place in [`PressureStats::slot`].
    fn pressure_slot(self) -> Option<usize> {
        match self {
            StatFile::V2CpuPressure => Some(0),
            StatFile::V2MemoryPressure => Some(1),
            StatFile::V2IoPressure => Some(2),
            _ => None,
        }
    }

    fn is_memory_stat(self) -> bool {
        matches!(self, StatFile::V1MemoryStat | StatFile::V2MemoryStat)
    }

    /// Files whose figures move slowly or rarely (a high-water mark, event
    /// counters, v1 kernel memory) or only refine another one (v1's
    /// user/system split of the CPU total, which `cpuacct.usage` gives every
    /// tick): at intervals shorter than the slow one they are read on the
    /// slower cadence, the dearest part of reading being the kernel's.
    fn is_slow(self) -> bool {
        matches!(
            self,
            StatFile::V1CpuacctStat
                | StatFile::V1MemoryMaxUsage
                | StatFile::V1MemoryFailcnt
                | StatFile::V1KmemUsage
                | StatFile::V1OomControl
                | StatFile::V2MemoryPeak
                | StatFile::V2MemoryEvents
        )
    }
}

impl CgroupReader {
    /// Opens the statistics files of cgroup `cgroup_path` (e.g. `/`,
    /// `/docker/<id>`) in the hierarchies of `layout`.
    ///
    /// Fails with [`ReadError::Vanished`] when the cgroup does not exist
    /// (in any of the v1 hierarchies read), [`ReadError::NotMounted`] when
    /// the layout has no hierarchy to read it from.
    pub fn open(layout: &CgroupLayout, cgroup_path: &str) -> Result<Self, ReadError> {
        Self::open_with(layout, cgroup_path, false)
    }

    /// Like [`open`](Self::open); `hold_slow_files` also keeps the slow
    /// files (read every few seconds) open, which saves their open/close
    /// when the open-file limit leaves room for them.
    pub fn open_with(
        layout: &CgroupLayout,
        cgroup_path: &str,
        hold_slow_files: bool,
    ) -> Result<Self, ReadError> {
        let cgroup = normalise(cgroup_path);
        let mut reader = CgroupReader {
            hold_slow_files,
            slow_interval: Duration::ZERO,
            next_slow: None,
            read_cfs: true,
            slow: SlowFigures::default(),
            carry_quiet_memory_stat: false,
            carry_idle_pids: false,
            memory_stat_lag_bytes: 0,
            memory_stat_lag_age: Duration::ZERO,
            last_memory_stat: None,
            last_memory_stat_at: None,
            carry_idle_pressure: false,
            last_cpu: None,
            last_pressure: None,
            last_pids: None,
            mode: layout.mode(),
            files: Vec::new(),
            blkio: BlkioV1::default(),
            use_hierarchy: true,
            user_hz: v1::user_hz(),
            usage_from_stat: false,
            primary_dir: Arc::from(Path::new("")),
            mounts: Vec::new(),
            spec_v1: [None; 3],
            cgroup,
        };
        match reader.mode {
            CgroupMode::V1 => reader.open_v1(layout)?,
            CgroupMode::V2 => reader.open_v2(layout)?,
        }
        Ok(reader)
    }

    fn open_v1(&mut self, layout: &CgroupLayout) -> Result<(), ReadError> {
        let is_root = self.cgroup == "/";
        let mut any_mounted = false;
        let mut dir_of = |controller: &str| -> Option<(u8, PathBuf)> {
            let mount = layout.v1.get(controller)?;
            any_mounted = true;
            let dir = join_cgroup(mount, &self.cgroup);
            // A cgroup may exist in some hierarchies only (systemd creates
            // service cgroups in `memory` only with MemoryAccounting=yes);
            // cAdvisor skips controllers without a directory likewise.
            dir.is_dir()
                .then(|| (mount_index(&mut self.mounts, mount), dir))
        };
        let cpuacct = dir_of("cpuacct");
        let cpu = dir_of("cpu");
        let memory = dir_of("memory");
        let blkio = dir_of("blkio");
        // The v1 root has no `pids.current`; cAdvisor drops the controller there.
        let pids = if is_root { None } else { dir_of("pids") };
        self.primary_dir = match [&cpuacct, &memory, &cpu, &blkio, &pids]
            .into_iter()
            .flatten()
            .next()
        {
            Some((_, dir)) => Arc::from(dir.as_path()),
            None if any_mounted => return Err(self.vanished()),
            None => {
                return Err(ReadError::NotMounted {
                    what: "the v1 cpuacct, cpu, memory, blkio or pids controllers",
                });
            }
        };

        if let Some(dir) = &cpuacct {
            self.hold(dir, "cpuacct.usage", StatFile::V1CpuacctUsage, true)?;
            self.hold(dir, "cpuacct.stat", StatFile::V1CpuacctStat, true)?;
        }
        if let Some(dir) = &cpu {
            self.hold(dir, "cpu.stat", StatFile::V1CpuStat, false)?;
        }
        if let Some(dir @ (_, path)) = &memory {
            if let Some((path, text)) =
                super::read_optional(&self.cgroup, path, "memory.use_hierarchy")?
            {
                self.use_hierarchy =
                    v1::parse_use_hierarchy(&text).map_err(|e| ReadError::parse(&path, e))?;
            }
            self.hold(dir, "memory.usage_in_bytes", StatFile::V1MemoryUsage, true)?;
            self.hold(
                dir,
                "memory.max_usage_in_bytes",
                StatFile::V1MemoryMaxUsage,
                false,
            )?;
            self.hold(dir, "memory.failcnt", StatFile::V1MemoryFailcnt, false)?;
            self.hold(dir, "memory.stat", StatFile::V1MemoryStat, true)?;
            self.hold(
                dir,
                "memory.kmem.usage_in_bytes",
                StatFile::V1KmemUsage,
                false,
            )?;
            self.hold(dir, "memory.oom_control", StatFile::V1OomControl, false)?;
        }
        if let Some((mount, dir)) = &blkio {
            for (serviced, bytes) in BLKIO_FILE_SETS {
                if dir.join(serviced).exists() && dir.join(bytes).exists() {
                    self.blkio.candidates.push((serviced, bytes));
                }
            }
            v1::drop_sets_shadowed_by_recursive(&mut self.blkio.candidates);
            self.blkio.mount = Some(*mount);
        }
        if let Some(dir) = &pids {
            // `pids.max` is a limit: read with the spec, not every tick.
            self.hold(dir, "pids.current", StatFile::PidsCurrent, true)?;
        }
        self.spec_v1 = [cpu, memory, pids].map(|dir| dir.map(|(mount, _)| mount));
        Ok(())
    }

    fn open_v2(&mut self, layout: &CgroupLayout) -> Result<(), ReadError> {
        let mount = layout.unified.as_ref().ok_or(ReadError::NotMounted {
            what: "the unified (v2) hierarchy",
        })?;
        let path = join_cgroup(mount, &self.cgroup);
        if !path.is_dir() {
            return Err(self.vanished());
        }
        let dir = (mount_index(&mut self.mounts, mount), path);
        // Only `cpu.stat` exists in every v2 cgroup; the rest depends on
        // the controllers enabled by the parent and on root-ness.
        self.hold(&dir, "cpu.stat", StatFile::V2CpuStat, true)?;
        let has_current = self.hold(&dir, "memory.current", StatFile::V2MemoryCurrent, false)?;
        self.hold(&dir, "memory.peak", StatFile::V2MemoryPeak, false)?;
        let has_stat = self.hold(&dir, "memory.stat", StatFile::V2MemoryStat, false)?;
        self.usage_from_stat = !has_current && has_stat;
        self.hold(&dir, "memory.swap.current", StatFile::V2SwapCurrent, false)?;
        self.hold(&dir, "memory.events", StatFile::V2MemoryEvents, false)?;
        self.hold(&dir, "io.stat", StatFile::V2IoStat, false)?;
        self.hold(&dir, "pids.current", StatFile::PidsCurrent, false)?;
        self.hold(&dir, "cpu.pressure", StatFile::V2CpuPressure, false)?;
        self.hold(&dir, "memory.pressure", StatFile::V2MemoryPressure, false)?;
        self.hold(&dir, "io.pressure", StatFile::V2IoPressure, false)?;
        self.primary_dir = Arc::from(dir.1.as_path());
        Ok(())
    }

    /// Opens `dir/name` and keeps it for per-tick reads; returns whether it
    /// exists.
    fn hold(
        &mut self,
        (mount, dir): &(u8, PathBuf),
        name: &str,
        kind: StatFile,
        required: bool,
    ) -> Result<bool, ReadError> {
        debug_assert_eq!(name, kind.file_name());
        match self.open_optional(dir, name)? {
            Some((_, file)) => {
                self.files.push(HeldFile {
                    kind,
                    required,
                    mount: *mount,
                    file: (self.hold_slow_files || !kind.is_slow()).then_some(file),
                });
                Ok(true)
            }
            // The directory exists (`open_optional` checked), so this is a
            // tree that is not a cgroup filesystem, not a removal.
            None if required => Err(ReadError::Io {
                path: dir.join(name),
                source: io::Error::new(
                    io::ErrorKind::NotFound,
                    "a file every cgroup of this controller has is missing",
                ),
            }),
            None => Ok(false),
        }
    }

    fn open_optional(&self, dir: &Path, name: &str) -> Result<Option<(PathBuf, File)>, ReadError> {
        let path = dir.join(name);
        match File::open(&path) {
            Ok(file) => Ok(Some((path, file))),
            Err(err) if is_gone(&err) => {
                if dir.is_dir() {
                    Ok(None)
                } else {
                    Err(self.vanished())
                }
            }
            Err(source) => Err(ReadError::Io { path, source }),
        }
    }

    fn vanished(&self) -> ReadError {
        ReadError::Vanished {
            cgroup: self.cgroup.clone(),
        }
    }

    /// Reads the slow-moving files (peak usage, limit hits, OOM counts, v1
    /// kernel memory) at most every `interval`, carrying their last figures
    /// in between. Zero (the default) reads everything every time.
    /// The next read includes them in any case.
    pub fn set_slow_interval(&mut self, interval: Duration) {
        self.slow_interval = interval;
        self.next_slow = None;
    }

    /// Whether `memory.stat` may be carried over a tick in which the
    /// cgroup's memory usage (`memory.usage_in_bytes`, v2 `memory.current`,
    /// read every tick) has not moved since `memory.stat` was last read.
    /// Its gauges (anonymous and file memory, mapped files) change with
    /// memory charged or freed, which moves the usage; what the usage
    /// cannot show waits at most the slow interval, when every file is
    /// read: pages moving between the LRU lists without being charged
    /// (which shifts the working set), page faults on pages already
    /// charged, and charges smaller than what the kernel charges ahead to
    /// each CPU (64 pages). The kernel itself refreshes these figures only
    /// every 2 s unless many have changed, so little is lost. It matters
    /// because the kernel renders v1 `memory.stat` with ~80 `printf`s on
    /// every read: ~8–11 µs, as much as all other per-tick files of a
    /// cgroup together, and most containers' memory stands still from one
    /// second to the next even while they run (pause containers, idle
    /// sidecars, services between requests).
    ///
    /// v2's `memory.swap.current` is carried with it while the usage
    /// stands still: a page swapped out or in leaves or enters memory.
    ///
    /// Off by default; needs the slow interval set, and a cgroup whose
    /// memory usage is read every tick.
    pub fn set_carry_quiet_memory_stat(&mut self, carry: bool) {
        self.carry_quiet_memory_stat = carry;
    }

    /// Lets `memory.stat` be carried (where
    /// [`set_carry_quiet_memory_stat`](Self::set_carry_quiet_memory_stat)
    /// is on) also while the memory usage moves a little: by less than
    /// `batch` bytes since `memory.stat` was last read, and for less than
    /// `age` since then. It follows how the kernel refreshes that file:
    /// it renders figures flushed from per-CPU counters, and flushes a
    /// cgroup's on read only once more than `MEMCG_CHARGE_BATCH` (64)
    /// pages per online CPU of changes are pending; otherwise every 2 s,
    /// for all cgroups at once. A cgroup whose memory moves a little
    /// (a page a second) shows the same `memory.stat` for 2 s whatever
    /// reads it (measured on 6.18), so reading it every second returns
    /// the same text half the time; a bigger move is read at once. The
    /// usage itself (and so the working set) stays exact every tick.
    ///
    /// `batch` zero (the default) carries only while the usage stands
    /// still.
    pub fn set_memory_stat_lag(&mut self, age: Duration, batch: u64) {
        self.memory_stat_lag_age = age;
        self.memory_stat_lag_bytes = batch;
    }

    /// Whether `pids.current` may be carried over a tick in which the
    /// cgroup's CPU time (read every tick) has not moved since it was last
    /// read. A cgroup's task count changes by its tasks forking and
    /// exiting, which takes CPU time in the cgroup; what the CPU time
    /// cannot show (a task moved in from outside that has not run yet, an
    /// exited task reaped by a parent elsewhere a tick later) waits at
    /// most the slow interval. It saves one read per tick of every cgroup
    /// whose tasks all sleep, a third of what such a v1 cgroup reads.
    ///
    /// Off by default; needs the slow interval set.
    pub fn set_carry_idle_pids(&mut self, carry: bool) {
        self.carry_idle_pids = carry;
    }

    /// Whether the v2 pressure files (`cpu.pressure`, `memory.pressure`,
    /// `io.pressure`) may be carried over a tick in which the cgroup's
    /// CPU time has stood still since the read before last, while each
    /// file's totals stood still at its last read. A task starts a stall
    /// only by running (it issues the I/O, touches the memory, or waits
    /// for the CPU it was using), so a stall begins in a tick in which the
    /// CPU time moved, or the tick after; a stall in progress moves its
    /// totals, which keeps the file read at every tick until they stand
    /// still. What that cannot show waits at most the slow interval. It
    /// saves three of a v2 cgroup's seven per-tick reads for every cgroup
    /// whose tasks all sleep (pause containers, idle sidecars).
    ///
    /// Off by default; needs the slow interval set.
    pub fn set_carry_idle_pressure(&mut self, carry: bool) {
        self.carry_idle_pressure = carry;
    }

    /// The interface this reader reads (v1 or v2).
    pub fn mode(&self) -> CgroupMode {
        self.mode
    }

    /// The cgroup path this reader reads, normalised (`/` for the root).
    pub fn cgroup_path(&self) -> &str {
        &self.cgroup
    }

    /// The path of a held file, for opening it when due and for errors.
    fn file_path(&self, held: &HeldFile) -> PathBuf {
        join_cgroup(&self.mounts[usize::from(held.mount)], &self.cgroup).join(held.kind.file_name())
    }

    /// The files one [`read_stats`](Self::read_stats) reads on an ordinary
    /// tick, in order (a v1 cgroup's blkio files only once a set with data
    /// was chosen; the probes are not per tick): the
    /// [`read_plan`](Self::read_plan) without the slow files.
    pub fn files(&self) -> Vec<PathBuf> {
        self.read_plan()
            .into_iter()
            .filter(|(_, cadence)| *cadence != ReadCadence::Slow)
            .map(|(path, _)| path)
            .collect()
    }

    /// Every file this reader reads and how often (see [`ReadCadence`]):
    /// the per-tick files, the slow ones, and a v1 cgroup's blkio pair
    /// once one with data was chosen. The benchmark's floor reads exactly
    /// these.
    pub fn read_plan(&self) -> Vec<(PathBuf, ReadCadence)> {
        let mut out: Vec<(PathBuf, ReadCadence)> = self
            .files
            .iter()
            .filter(|f| self.read_cfs || f.kind != StatFile::V1CpuStat)
            .map(|f| {
                let cadence = if f.kind.is_slow() {
                    ReadCadence::Slow
                } else if f.kind.is_memory_stat() && self.carry_quiet_memory_stat {
                    ReadCadence::WhileMemoryMoves { lagged: true }
                } else if f.kind == StatFile::V2SwapCurrent && self.carry_quiet_memory_stat {
                    ReadCadence::WhileMemoryMoves { lagged: false }
                } else if (f.kind == StatFile::PidsCurrent && self.carry_idle_pids)
                    || (f.kind.pressure_slot().is_some() && self.carry_idle_pressure)
                {
                    ReadCadence::WhileRunning
                } else {
                    ReadCadence::Tick
                };
                (self.file_path(f), cadence)
            })
            .collect();
        if let Some(pair) = &self.blkio.chosen {
            out.push((pair.serviced.0.clone(), ReadCadence::Tick));
            out.push((pair.service_bytes.0.clone(), ReadCadence::Tick));
        }
        out
    }

    /// The directories holding the limit files [`read_spec`](Self::read_spec)
    /// reads (on v1 one per controller mounted: cpu, memory, pids), each
    /// with the names of the limit files it holds.
    pub fn spec_dirs(&self) -> Vec<(PathBuf, &'static [&'static str])> {
        match self.mode {
            CgroupMode::V1 => self
                .spec_v1
                .iter()
                .zip(v1::SPEC_FILES)
                .filter_map(|(mount, names)| {
                    let mount = &self.mounts[usize::from((*mount)?)];
                    Some((join_cgroup(mount, &self.cgroup), names))
                })
                .collect(),
            CgroupMode::V2 => vec![(self.primary_dir.to_path_buf(), &v2::SPEC_FILES[..])],
        }
    }

    /// The limit files [`read_spec`](Self::read_spec) opens, reads and
    /// closes at each limit refresh (those that exist now).
    pub fn spec_files(&self) -> Vec<PathBuf> {
        self.spec_dirs()
            .into_iter()
            .flat_map(|(dir, names)| names.iter().map(move |name| dir.join(name)))
            .filter(|path| path.exists())
            .collect()
    }

    /// The v1 blkio files probed (opened, read, closed) every
    /// [`BLKIO_PROBE_INTERVAL`] while no set has shown data: the
    /// operations file of each candidate set (the bytes file is opened
    /// only once one has data).
    pub fn probe_files(&self) -> Vec<PathBuf> {
        match (&self.blkio.chosen, self.blkio.mount) {
            (None, Some(mount)) => {
                let dir = join_cgroup(&self.mounts[usize::from(mount)], &self.cgroup);
                self.blkio
                    .candidates
                    .iter()
                    .map(|(serviced, _)| dir.join(serviced))
                    .collect()
            }
            _ => Vec::new(),
        }
    }

    /// Starts loading the cache lines a read goes through besides the
    /// reader itself (its list of open files).
    pub(crate) fn prefetch(&self) {
        crate::prefetch::prefetch(self.files.as_slice());
    }

    /// Number of file descriptors this reader holds open.
    pub fn open_file_count(&self) -> usize {
        self.files.iter().filter(|f| f.file.is_some()).count()
            + 2 * self.blkio.chosen.is_some() as usize
    }

    /// Keeps the slow files open from their next read on (as
    /// [`open_with`](Self::open_with) `hold_slow_files` does from the
    /// start) and returns how many descriptors that will take.
    pub fn hold_slow_files(&mut self) -> usize {
        self.hold_slow_files = true;
        self.files
            .iter()
            .filter(|f| f.kind.is_slow() && f.file.is_none())
            .count()
    }

    /// Whether the slow files are (or will be, from their next read) held
    /// open.
    pub fn holds_slow_files(&self) -> bool {
        self.hold_slow_files
    }

    /// Closes the slow files held open (they are then opened when due, as
    /// when the reader was opened without holding them) and returns how
    /// many were closed: room for another cgroup's per-tick files.
    pub fn release_slow_files(&mut self) -> usize {
        self.hold_slow_files = false;
        let mut closed = 0;
        for held in &mut self.files {
            if held.kind.is_slow() && held.file.take().is_some() {
                closed += 1;
            }
        }
        closed
    }

    /// Descriptors this reader may still open and hold: a v1 blkio file
    /// pair, if the first probe (on the first read) finds one with data,
    /// and the slow files it was told to hold but has not read since
    /// (they are kept open from their next read, which for a pod cgroup is
    /// a minute away). Counted when budgeting descriptors, or the pairs of
    /// a thousand cgroups would find the limit already spent on slow
    /// files, and slow files granted at one tick would be granted again at
    /// the next. After the probe the pair is not counted: on kernels whose
    /// throttle files stay empty, two phantom descriptors per cgroup would
    /// crowd out slow files.
    pub fn file_count_to_come(&self) -> usize {
        let blkio = if self.blkio.chosen.is_none()
            && !self.blkio.candidates.is_empty()
            && self.blkio.next_probe.is_none()
        {
            2
        } else {
            0
        };
        let slow = if self.hold_slow_files {
            self.files
                .iter()
                .filter(|f| f.kind.is_slow() && f.file.is_none())
                .count()
        } else {
            0
        };
        blkio + slow
    }

    /// Reads the statistics of the cgroup now. Network and filesystem are
    /// left empty (other modules fill them).
    ///
    /// [`ReadError::Vanished`] means the cgroup was removed: drop the
    /// reader. A file that disappears while its cgroup still exists (PSI
    /// switched off through `cgroup.pressure`) is dropped from the reader.
    pub fn read_stats(&mut self, timestamp_ms: i64) -> Result<ContainerStats, ReadError> {
        self.read_stats_with(timestamp_ms, Instant::now(), &mut Vec::new())
    }

    /// [`read_stats`](Self::read_stats) with a caller-owned scratch buffer,
    /// so that a thousand readers share one instead of holding one each,
    /// and the tick's monotonic time `now` (when slow files are due), so
    /// that the clock is read once a tick rather than once a cgroup.
    pub fn read_stats_with(
        &mut self,
        timestamp_ms: i64,
        now: Instant,
        buf: &mut Vec<u8>,
    ) -> Result<ContainerStats, ReadError> {
        let mut stats = ContainerStats {
            timestamp_ms,
            ..ContainerStats::default()
        };
        let mut pids = PidsStats::default();
        let mut pressure: Option<PressureStats> = None;
        let mut gone_optional = Vec::new();
        let mut to_hold = Vec::new();
        let read_slow = self.next_slow.is_none_or(|t| now >= t);

        let may_carry_memory_stat =
            self.carry_quiet_memory_stat && !read_slow && !self.usage_from_stat;
        let may_carry_pids = self.carry_idle_pids && !read_slow;
        let may_carry_pressure = self.carry_idle_pressure && !read_slow;
        let path_of = |held: &HeldFile| self.file_path(held);
        let (mut carried_memory_stat, mut carried_pids) = (false, false);
        let mut probes = Probes::default();
        for (index, held) in self.files.iter().enumerate() {
            if (!read_slow && held.kind.is_slow())
                || (!self.read_cfs && held.kind == StatFile::V1CpuStat)
            {
                continue;
            }
            if held.kind.is_memory_stat()
                && let Some(last) = self.last_memory_stat.as_ref().filter(|last| {
                    may_carry_memory_stat
                        && probes.memory
                        && (stats.memory.usage == last.usage
                            || (stats.memory.usage.abs_diff(last.usage)
                                < self.memory_stat_lag_bytes
                                && self
                                    .last_memory_stat_at
                                    .is_some_and(|at| now < at + self.memory_stat_lag_age)))
                })
            {
                copy_memory_stat_figures(self.mode, last, &mut stats.memory);
                carried_memory_stat = true;
                continue;
            }
            // Swapping moves the memory usage (a page leaves memory for
            // swap, or comes back), so v2's swap usage is carried with
            // `memory.stat` while the usage stands still (not while it
            // merely moves a little: the swap counter is exact).
            if held.kind == StatFile::V2SwapCurrent
                && let Some(last) = self.last_memory_stat.as_ref().filter(|last| {
                    may_carry_memory_stat && probes.memory && stats.memory.usage == last.usage
                })
            {
                stats.memory.swap = last.swap;
                continue;
            }
            if let Some(slot) = held.kind.pressure_slot()
                && may_carry_pressure
                && probes.cpu
                && self.last_cpu == Some((stats.cpu.usage_ns, false))
                && let Some(last) = self.last_pressure.as_ref().filter(|l| !l.moved[slot])
            {
                let carried = pressure.get_or_insert_default();
                *carried.slot_mut(slot) = last.stats.slot(slot).clone();
                continue;
            }
            if held.kind == StatFile::PidsCurrent
                && let Some(last) = self.last_pids.filter(|last| {
                    may_carry_pids && probes.cpu && stats.cpu.usage_ns == last.cpu_usage_ns
                })
            {
                pids.current = last.current;
                carried_pids = true;
                continue;
            }
            let mut opened = None;
            let read = match &held.file {
                Some(file) => read_text(file, buf),
                None => match File::open(path_of(held)) {
                    Ok(file) => {
                        let read = read_text(&file, buf);
                        opened = Some(file);
                        read
                    }
                    Err(err) => Err(ReadFailure::Io(err)),
                },
            };
            let text = match read {
                Ok(text) => text,
                Err(ReadFailure::Io(err)) if is_gone(&err) => {
                    if held.required || !self.primary_dir.is_dir() {
                        return Err(ReadError::Vanished {
                            cgroup: self.cgroup.clone(),
                        });
                    }
                    gone_optional.push(index);
                    continue;
                }
                Err(ReadFailure::Io(source)) => {
                    return Err(ReadError::Io {
                        path: path_of(held),
                        source,
                    });
                }
                Err(ReadFailure::NotText) => {
                    return Err(ReadError::parse(&path_of(held), ParseError::NotText));
                }
            };
            apply(
                held.kind,
                text,
                self.use_hierarchy,
                self.user_hz,
                &mut stats,
                &mut pids,
                &mut pressure,
            )
            .map_err(|e| ReadError::parse(&path_of(held), e))?;
            probes.saw(held.kind);
            if self.hold_slow_files && held.kind.is_slow() {
                to_hold.extend(opened.map(|file| (index, file)));
            }
        }
        // Slow files opened on demand, kept since holding was granted.
        for (index, file) in to_hold {
            self.files[index].file = Some(file);
        }
        // What a later tick may carry: figures read this tick, with the
        // probe read beside them.
        if !carried_memory_stat {
            self.last_memory_stat = probes.memory.then(|| stats.memory.clone());
            self.last_memory_stat_at = Some(now);
        }
        // Only v2 has pressure files: a v1 reader keeps nothing for them.
        if self.carry_idle_pressure && self.mode == CgroupMode::V2 {
            self.remember_pressure(&stats, pressure.as_ref(), probes.cpu);
        }
        if !carried_pids {
            self.last_pids = probes.cpu.then_some(LastPids {
                cpu_usage_ns: stats.cpu.usage_ns,
                current: pids.current,
            });
        }
        for index in gone_optional.into_iter().rev() {
            self.files.remove(index);
        }
        self.read_blkio_v1(&mut stats, now, buf)?;

        let memory = &mut stats.memory;
        if read_slow {
            self.slow = SlowFigures {
                user_ns: stats.cpu.user_ns,
                system_ns: stats.cpu.system_ns,
                max_usage: memory.max_usage,
                failcnt: memory.failcnt,
                kernel: memory.kernel,
                oom_events: memory.oom_events,
                oom_kills: memory.oom_kills,
            };
            self.next_slow = Some(now + self.slow_interval);
        } else {
            memory.max_usage = self.slow.max_usage;
            memory.failcnt = self.slow.failcnt;
            memory.oom_events = self.slow.oom_events;
            memory.oom_kills = self.slow.oom_kills;
            if self.mode == CgroupMode::V1 {
                memory.kernel = self.slow.kernel; // v2 reads it from memory.stat
                stats.cpu.user_ns = self.slow.user_ns; // v2 reads them from cpu.stat
                stats.cpu.system_ns = self.slow.system_ns;
            }
        }
        if self.usage_from_stat {
            memory.usage = memory.rss.saturating_add(memory.cache);
        }
        memory.working_set = memory.usage.saturating_sub(memory.inactive_file);
        stats.pids = pids;
        stats.pressure = pressure;
        Ok(stats)
    }

    /// Keeps what the next read's pressure carry looks at: the CPU time
    /// and whether it moved, and each pressure file's totals and whether
    /// they moved (a carried file's did not).
    fn remember_pressure(
        &mut self,
        stats: &ContainerStats,
        pressure: Option<&PressureStats>,
        read_cpu: bool,
    ) {
        self.last_cpu = read_cpu.then(|| {
            let moved = self
                .last_cpu
                .is_none_or(|(before, _)| before != stats.cpu.usage_ns);
            (stats.cpu.usage_ns, moved)
        });
        let Some(now) = pressure else {
            self.last_pressure = None;
            return;
        };
        let last = self.last_pressure.get_or_insert_default();
        for slot in 0..3 {
            last.moved[slot] = last.stats.slot(slot) != now.slot(slot);
        }
        last.stats = now.clone();
    }

    fn read_blkio_v1(
        &mut self,
        stats: &mut ContainerStats,
        now: Instant,
        buf: &mut Vec<u8>,
    ) -> Result<(), ReadError> {
        if let Some(pair) = &self.blkio.chosen {
            let serviced = read_blkio_file(&pair.serviced, buf, &self.cgroup)?;
            v1::apply_blkio_serviced(serviced, &mut stats.blkio)
                .map_err(|e| ReadError::parse(&pair.serviced.0, e))?;
            let bytes = read_blkio_file(&pair.service_bytes, buf, &self.cgroup)?;
            return v1::apply_blkio_service_bytes(bytes, &mut stats.blkio)
                .map_err(|e| ReadError::parse(&pair.service_bytes.0, e));
        }
        let Some(mount) = self.blkio.mount else {
            return Ok(());
        };
        if self.blkio.candidates.is_empty() || self.blkio.next_probe.is_some_and(|t| now < t) {
            return Ok(());
        }
        self.blkio.next_probe = Some(now + BLKIO_PROBE_INTERVAL);
        let dir = join_cgroup(&self.mounts[usize::from(mount)], &self.cgroup);
        for (serviced_name, bytes_name) in &self.blkio.candidates {
            // Out of descriptors: no blkio figures until the next probe,
            // rather than no sample (a set that gets data long after the
            // cgroup was budgeted may find the limit spent).
            let open = |name: &str| match File::open(dir.join(name)) {
                Ok(f) => Ok(Some((dir.join(name), f))),
                Err(e) if is_gone(&e) => Err(ReadError::Vanished {
                    cgroup: self.cgroup.clone(),
                }),
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => Ok(None),
                Err(source) => Err(ReadError::Io {
                    path: dir.join(name),
                    source,
                }),
            };
            let Some(serviced) = open(serviced_name)? else {
                return Ok(());
            };
            if !v1::blkio_has_data(read_blkio_file(&serviced, buf, &self.cgroup)?) {
                continue;
            }
            let Some(service_bytes) = open(bytes_name)? else {
                return Ok(());
            };
            let pair = BlkioPair {
                serviced,
                service_bytes,
            };
            self.blkio.chosen = Some(pair);
            self.blkio.candidates.clear();
            return self.read_blkio_v1(stats, now, buf);
        }
        Ok(())
    }

    /// Starts or stops reading v1 `cpu.stat` every tick. Without a quota
    /// its descriptor is closed too: one per cgroup, at thousands of
    /// cgroups the difference between holding every slow file open and
    /// reopening some of them every few seconds under a 20 000-descriptor
    /// limit. A quota set later reopens it; if that fails the tick's read
    /// opens it on demand, and reports the cgroup gone if it is.
    fn set_read_cfs(&mut self, read: bool) {
        self.read_cfs = read;
        let Some(index) = self
            .files
            .iter()
            .position(|f| f.kind == StatFile::V1CpuStat)
        else {
            return;
        };
        if !read {
            self.files[index].file = None;
        } else if self.files[index].file.is_none() {
            self.files[index].file = File::open(self.file_path(&self.files[index])).ok();
        }
    }

    /// Reads the cgroup's limits (shares, quota/period, memory and swap
    /// limits, reservation, task limit). Opens the limit files on demand:
    /// call on discovery and then on a slow cadence, not every tick.
    ///
    /// On v1 it also decides whether `cpu.stat` is read per tick, and held
    /// open: its CFS counters only move under a quota (cAdvisor exports
    /// them only then), and most cgroups have none.
    pub fn read_spec(&mut self) -> Result<ContainerSpec, ReadError> {
        match self.mode {
            CgroupMode::V1 => {
                let [cpu, memory, pids] = self.spec_v1.map(|mount| {
                    mount.map(|m| {
                        Arc::from(join_cgroup(&self.mounts[usize::from(m)], &self.cgroup).as_path())
                    })
                });
                let spec = v1::read_spec(&self.cgroup, &SpecDirs { cpu, memory, pids })?;
                self.set_read_cfs(spec.cpu_quota_us.is_some());
                Ok(spec)
            }
            CgroupMode::V2 => v2::read_spec(&self.cgroup, &self.primary_dir),
        }
    }
}

/// Reads one v1 blkio file; every error is fatal for the tick (these files
/// exist in every blkio cgroup, so ENOENT/ENODEV means the cgroup is gone).
fn read_blkio_file<'a>(
    (path, file): &(PathBuf, File),
    buf: &'a mut Vec<u8>,
    cgroup: &str,
) -> Result<&'a str, ReadError> {
    match read_text(file, buf) {
        Ok(text) => Ok(text),
        Err(ReadFailure::Io(err)) if is_gone(&err) => Err(ReadError::Vanished {
            cgroup: cgroup.to_owned(),
        }),
        Err(ReadFailure::Io(source)) => Err(ReadError::Io {
            path: path.clone(),
            source,
        }),
        Err(ReadFailure::NotText) => Err(ReadError::parse(path, ParseError::NotText)),
    }
}

/// Raises the limit on open files (`RLIMIT_NOFILE`) and returns the new
/// soft limit. Readers hold their files open, so an agent watching
/// thousands of cgroups needs tens of thousands of descriptors: with
/// `CAP_SYS_RESOURCE` (root) both limits go up to the kernel's `nr_open`,
/// otherwise the soft limit goes up to the hard one.
pub fn raise_open_file_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let wanted = (nr_open as libc::rlim_t).max(limit.rlim_max);
    if wanted > limit.rlim_cur {
        let raised = libc::rlimit {
            rlim_cur: wanted,
            rlim_max: wanted,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return Ok(wanted);
        }
        // Not privileged: the hard limit is as far as we may go.
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(limit.rlim_cur)
}

/// Folds one file's contents into the sample being built.
fn apply(
    kind: StatFile,
    text: &str,
    use_hierarchy: bool,
    user_hz: u64,
    stats: &mut ContainerStats,
    pids: &mut PidsStats,
    pressure: &mut Option<PressureStats>,
) -> Result<(), ParseError> {
    use super::parse::single_u64;
    let memory = &mut stats.memory;
    match kind {
        StatFile::V1CpuacctUsage => v1::apply_cpuacct_usage(text, &mut stats.cpu)?,
        StatFile::V1CpuacctStat => v1::apply_cpuacct_stat(text, user_hz, &mut stats.cpu)?,
        StatFile::V1CpuStat => v1::apply_cpu_stat(text, &mut stats.cpu)?,
        StatFile::V1MemoryUsage | StatFile::V2MemoryCurrent => memory.usage = single_u64(text)?,
        StatFile::V1MemoryMaxUsage | StatFile::V2MemoryPeak => {
            memory.max_usage = Some(single_u64(text)?)
        }
        StatFile::V1MemoryFailcnt => memory.failcnt = single_u64(text)?,
        StatFile::V1MemoryStat => v1::apply_memory_stat(text, use_hierarchy, memory)?,
        StatFile::V1KmemUsage => memory.kernel = single_u64(text)?,
        StatFile::V1OomControl => v1::apply_oom_control(text, memory)?,
        StatFile::PidsCurrent => pids.current = Some(single_u64(text)?),
        StatFile::V2CpuStat => v2::apply_cpu_stat(text, &mut stats.cpu)?,
        StatFile::V2MemoryStat => v2::apply_memory_stat(text, memory)?,
        StatFile::V2SwapCurrent => memory.swap = single_u64(text)?,
        StatFile::V2MemoryEvents => v2::apply_memory_events(text, memory)?,
        StatFile::V2IoStat => v2::apply_io_stat(text, &mut stats.blkio)?,
        StatFile::V2CpuPressure => pressure.get_or_insert_default().cpu = v2::read_pressure(text)?,
        StatFile::V2MemoryPressure => {
            pressure.get_or_insert_default().memory = v2::read_pressure(text)?
        }
        StatFile::V2IoPressure => pressure.get_or_insert_default().io = v2::read_pressure(text)?,
    }
    Ok(())
}

/// The index of `mount` in a reader's mount points, added if new.
fn mount_index(mounts: &mut Vec<Arc<Path>>, mount: &Path) -> u8 {
    match mounts.iter().position(|m| **m == *mount) {
        Some(i) => i as u8,
        None => {
            mounts.push(Arc::from(mount));
            (mounts.len() - 1) as u8
        }
    }
}

/// Which activity probes a tick has read so far: the cgroup's CPU time
/// (read before `pids.current`) and its memory usage (read before
/// `memory.stat`).
#[derive(Debug, Default)]
struct Probes {
    cpu: bool,
    memory: bool,
}

impl Probes {
    fn saw(&mut self, kind: StatFile) {
        match kind {
            StatFile::V1CpuacctUsage | StatFile::V2CpuStat => self.cpu = true,
            StatFile::V1MemoryUsage | StatFile::V2MemoryCurrent => self.memory = true,
            _ => {}
        }
    }
}

/// Copies what `memory.stat` gives in `mode` from `from` to `to`.
fn copy_memory_stat_figures(mode: CgroupMode, from: &MemoryStats, to: &mut MemoryStats) {
    to.rss = from.rss;
    to.cache = from.cache;
    to.mapped_file = from.mapped_file;
    to.active_file = from.active_file;
    to.inactive_file = from.inactive_file;
    to.pgfault = from.pgfault;
    to.pgmajfault = from.pgmajfault;
    match mode {
        CgroupMode::V1 => to.swap = from.swap,
        CgroupMode::V2 => to.kernel = from.kernel,
    }
}

enum ReadFailure {
    Io(io::Error),
    NotText,
}

/// Reads a whole file from offset 0 into `buf` (growing it if needed) and
/// returns it as text.
///
/// A short read is taken as end of file, saving the second `pread` that
/// would return 0. That holds for regular files and for cgroup interface
/// files: the kernel renders a cgroup file in one `seq_show` call into a
/// buffer it enlarges until the whole text fits, and a read copies as much
/// of it as the caller asked for.
fn read_text<'a>(file: &File, buf: &'a mut Vec<u8>) -> Result<&'a str, ReadFailure> {
    let len = crate::readfile::pread_whole(file, buf, true).map_err(ReadFailure::Io)?;
    std::str::from_utf8(&buf[..len]).map_err(|_| ReadFailure::NotText)
}

/// `""`, `/`, `a/b/`, `/a/b` → `/`, `/`, `/a/b`, `/a/b`.
fn normalise(path: &str) -> String {
    let trimmed = path.trim_matches('/');
    format!("/{trimmed}")
}
