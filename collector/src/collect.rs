//! One collection cycle over every cgroup of the node.
//!
//! The [`Collector`] owns everything a tick needs and is driven by a single
//! thread: discovery events first (so a new cgroup is read in the tick it
//! was noticed), then one `pread` per held-open stat file of each cgroup,
//! then the bounded share of filesystem walking. Limits, metadata and
//! machine facts are refreshed on their own slow cadences, never per tick.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::cgroup::ReadError;
use crate::cgroup::reader::{BLKIO_PROBE_INTERVAL, CgroupReader, ReadCadence};
use crate::config::AgentConfig;
use crate::discovery::mountinfo::{LayoutOptions, discover_layout};
use crate::discovery::{
    CgroupIdentity, CgroupKind, CgroupPath, Discovery, DiscoveryEvent, DiscoveryFilter,
    DiscoveryOptions, identify,
};
use crate::filesystem::{self, LayerWalker, Mount};
use crate::kube_state::KubeState;
use crate::layout::CgroupLayout;
use crate::limit_watch::{LimitWatch, WatchKey, Written};
use crate::load::LoadReader;
use crate::machine::MachineInfo;
use crate::metadata::{ContainerMetadata, MetadataCache};
use crate::network::{NetDevReader, NetnsRegistry};
use crate::prefetch::{prefetch, prefetch_line};
use crate::snapshot::{ContainerInfo, ContainerSample, Snapshot};
use crate::stats::{ContainerSpec, ContainerStats, FilesystemStats};

/// Why the collector could not start.
#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    /// No cgroup hierarchy was found.
    #[error("cannot find the cgroup hierarchies: {0}")]
    Layout(String),
    /// Discovery could not start.
    #[error(transparent)]
    Discovery(#[from] crate::discovery::DiscoveryError),
    /// The metadata sources are misconfigured.
    #[error("cannot set up container metadata: {0}")]
    Metadata(crate::metadata::MetadataError),
}

/// Counters of what went wrong while reading, by reason; exposed as
/// `osprey_agent_read_errors_total{reason}`.
#[derive(Debug, Clone, Default)]
pub struct ErrorCounts {
    /// Count per reason.
    pub by_reason: BTreeMap<&'static str, u64>,
}

struct Tracked {
    identity: CgroupIdentity,
    reader: CgroupReader,
    meta: Arc<ContainerMetadata>,
    spec: ContainerSpec,
    info: Arc<ContainerInfo>,
    net: Option<NetDevReader>,
    layer_device: Option<FilesystemStats>,
    /// The writable layer's directory, when found.
    layer_dir: Option<PathBuf>,
    /// A pod or QoS-class cgroup: read every `aggregate_every` ticks, on
    /// ticks where `(tick + phase) % aggregate_every == 0` (the phases
    /// spread the aggregates over the ticks), its last sample carried in
    /// between.
    aggregate_phase: Option<u64>,
    /// The last sample read, for aggregates.
    last: Option<Box<ContainerStats>>,
    /// Its [`LimitWatch`] watches on its limit files and `cgroup.procs`.
    /// While it has them, its limits are re-read on a write and, as a
    /// backstop, every `spec_refresh_interval`; otherwise every minute.
    limit_watches: Option<WatchKey>,
    /// The tick its limits were last read at.
    spec_read_tick: u64,
}

/// Reads every cgroup of the node, tick after tick.
pub struct Collector {
    config: AgentConfig,
    layout: CgroupLayout,
    discovery: Discovery,
    metadata: MetadataCache,
    netns: NetnsRegistry,
    walker: LayerWalker,
    machine: Arc<MachineInfo>,
    mounts: Vec<Mount>,
    node_filesystems: Arc<Vec<FilesystemStats>>,
    /// The filesystem holding the kubelet's root directory.
    kubelet_filesystem: Option<Arc<FilesystemStats>>,
    /// Boxed: a B-tree node holds eleven entries, and its leaves fill to
    /// about half when cgroups arrive in path order, so unboxed (~1.3 KB
    /// each) half the map's memory was empty slots.
    tracked: BTreeMap<String, Box<Tracked>>,
    /// One read buffer shared by every cgroup's reader.
    scratch: Vec<u8>,
    /// The process's open-file limit, and the descriptors the readers
    /// held at the end of the last tick (plus those opened since), as
    /// [`budgeted_descriptors`] counts them.
    fd_limit: u64,
    fds_in_use: u64,
    /// Descriptors the readers held at the end of the last tick.
    files_held: u64,
    /// Whether some reader may hold its slow files open (see
    /// `Collector::make_room`).
    slow_files_held: bool,
    /// Whether some reader does not hold its slow files, and when holding
    /// was last granted (see `Collector::grant_slow_files`).
    slow_files_wanted: bool,
    last_slow_grant: Instant,
    errors: ErrorCounts,
    logged: HashSet<(String, &'static str)>,
    /// Writes to the cgroups' limit files and task lists; `None` when
    /// inotify cannot be used (limits are then re-read every minute).
    limit_watch: Option<LimitWatch>,
    /// A limit watch could not be added (logged once).
    limit_watch_exhausted: bool,
    /// Until this tick, every cgroup's upkeep re-reads its limits: writes
    /// may have gone unreported (the limit watch's queue overflowed).
    spec_refresh_forced_until: u64,
    /// The last cgroup whose upkeep ran: the next tick's share of the
    /// round starts after it.
    upkeep_cursor: Option<String>,
    last_fs_refresh: Instant,
    last_machine_refresh: Instant,
    /// Pod status of the last pod-list refresh, and when it was taken.
    kube: Arc<KubeState>,
    last_pod_status: Option<Instant>,
    /// The CPU load sampler, when `cpu_load` is on.
    load: Option<LoadReader>,
    /// Kubelet log bytes per pod container, from the last filesystem
    /// refresh.
    log_usage: Arc<Vec<(String, u64)>>,
    last_log_measure: Option<Instant>,
    /// Collections so far.
    tick: u64,
    /// Aggregate cgroups are read every this many ticks (≥ 1).
    aggregate_every: u64,
    /// Aggregate cgroups added so far, to give each its phase.
    aggregates_added: u64,
    /// How long, and for how small a move of the usage, a cgroup's
    /// `memory.stat` may lag (see [`CgroupReader::set_memory_stat_lag`]).
    memory_stat_lag: (Duration, u64),
}

/// A pod or QoS-class cgroup reads its slow files (peak usage, limit
/// hits, OOM counts, v1 kernel memory and user/system split) at every
/// this many of its reads, a minute at the defaults, rather than at each
/// (every 10 s): they were half of what such cgroups read, and an OOM
/// kill is counted where the killed task lives, in its container's
/// cgroup, read at the usual cadence.
const AGGREGATE_SLOW_READS: u64 = 6;

/// Per-tick files a cgroup holds open, at most (v2 with PSI: nine), for
/// budgeting descriptors before the cgroups of a discovery round are opened.
const PER_TICK_FILES_ESTIMATE: u64 = 9;

/// Every tracked cgroup's upkeep (its names looked up, its limits re-read
/// when due) comes round once in this period (or `spec_refresh_interval`
/// when shorter), a share of the cgroups each tick: at 2000 cgroups, all
/// at once made one tick a minute ~150 ms longer.
const UPKEEP_ROUND: Duration = Duration::from_secs(60);

/// How often the limits of a cgroup whose limit files cannot be watched
/// are re-read, at most.
const UNWATCHED_SPEC_REFRESH: Duration = Duration::from_secs(60);

/// A cgroup's first minutes, while its runtime is still setting it up: its
/// tasks join, enter their network namespace (runc moves its own first
/// task in, which starts the container's in a namespace later, with no
/// write to report), and the runtime's and kubelet's files about it are
/// written. Each upkeep round in this time looks again for what was not
/// found; later only a write to its tasks, changed names or the limits'
/// backstop do.
const SETTLING_TIME: Duration = Duration::from_secs(120);

impl Tracked {
    /// Starts loading the cache lines a tick reads through this cgroup's
    /// pointers (see [`prefetch`]).
    fn prefetch_what_it_points_to(&self) {
        self.reader.prefetch();
        prefetch_line(Arc::as_ptr(&self.info));
        if let Some(last) = &self.last {
            prefetch(&**last);
        }
    }
}

/// Descriptors a tracked cgroup holds open.
fn held_descriptors(t: &Tracked) -> u64 {
    (t.reader.open_file_count() + t.net.is_some() as usize) as u64
}

/// Descriptors a tracked cgroup holds, or may open and hold soon (a v1
/// blkio pair before its first probe), for the descriptor budget.
fn budgeted_descriptors(t: &Tracked) -> u64 {
    held_descriptors(t) + t.reader.file_count_to_come() as u64
}

/// Descriptors kept for everything besides cgroup files (see
/// `Collector::spare_descriptors`), at most a quarter of the limit.
const SPARE_DESCRIPTORS: u64 = 1024;

impl Collector {
    /// Finds the cgroup hierarchies and reads machine facts; the first
    /// [`Collector::collect`] then discovers every cgroup.
    pub fn new(config: AgentConfig) -> Result<Self, CollectorError> {
        // Every cgroup keeps 7–13 files open; 1000 containers pass the
        // usual soft limit of 1024.
        let fd_limit = match crate::cgroup::raise_open_file_limit() {
            Ok(limit) => {
                tracing::debug!(limit, "open file limit");
                limit
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot raise the open file limit; many cgroups may fail to open");
                1024
            }
        };
        let layout = discover_layout(&LayoutOptions {
            proc_root: config.proc_root.clone(),
            cgroup_root: config.cgroup_root.clone(),
        })
        .map_err(|e| CollectorError::Layout(e.to_string()))?;
        tracing::info!(mode = ?layout.mode(), v1 = layout.v1.len(), unified = ?layout.unified, "cgroup layout");
        let discovery = Discovery::new(
            layout.clone(),
            DiscoveryFilter {
                containers_only: config.containers_only,
                subtrees: config.subtrees.clone(),
            },
            DiscoveryOptions {
                rescan_interval: config.rescan_interval,
                ..DiscoveryOptions::default()
            },
        )?;
        let metadata = MetadataCache::new(crate::metadata::MetadataConfig {
            docker_root: config.docker_root.clone(),
            pod_log_root: config.pod_log_root.clone(),
            container_log_root: config.container_log_root.clone(),
            proc_root: config.proc_root.clone(),
            kubelet_pods_url: config.kubelet_pods_url.clone(),
            kube_api: config.kubernetes_api.as_ref().map(|api| {
                crate::metadata::kube_api::KubeApiConfig::new(
                    api.clone(),
                    &config.kubernetes_service_account_dir,
                    crate::agent::node_name(&config),
                )
            }),
            refresh_interval: config.metadata_refresh_interval,
            ..Default::default()
        })
        .map_err(CollectorError::Metadata)?;
        let mut machine = MachineInfo::read(&config.rootfs, &config.proc_root);
        if let Some(name) = &config.node_name {
            machine.hostname = name.clone();
        }
        if let Some(address) = &config.node_address {
            machine.address = address.clone();
        }
        let mounts = read_mounts(&config);
        let now = Instant::now();
        let load = config.cpu_load.then(|| LoadReader::new(&config.proc_root));
        let aggregate_every = ticks_per(config.interval, config.aggregate_interval);
        let interval = config.interval;
        Ok(Self {
            netns: NetnsRegistry::new(&config.proc_root),
            walker: LayerWalker::new(config.fs_walk_budget),
            node_filesystems: Arc::new(filesystem::node_filesystems(&mounts)),
            kubelet_filesystem: kubelet_filesystem(&config, &mounts),
            machine: Arc::new(machine),
            mounts,
            config,
            layout,
            discovery,
            metadata,
            tracked: BTreeMap::new(),
            scratch: Vec::new(),
            fd_limit,
            fds_in_use: 0,
            files_held: 0,
            slow_files_held: false,
            slow_files_wanted: false,
            last_slow_grant: now,
            errors: ErrorCounts::default(),
            logged: HashSet::new(),
            limit_watch: LimitWatch::new()
                .map_err(|e| {
                    tracing::warn!(error = %e, "cannot watch cgroup limits with inotify; re-reading them every minute");
                })
                .ok(),
            limit_watch_exhausted: false,
            spec_refresh_forced_until: 0,
            upkeep_cursor: None,
            last_fs_refresh: now,
            last_machine_refresh: now,
            kube: Arc::default(),
            last_pod_status: None,
            load,
            log_usage: Arc::default(),
            last_log_measure: None,
            tick: 0,
            aggregate_every,
            aggregates_added: 0,
            memory_stat_lag: crate::cgroup::kernel_memory_stat_lag(interval),
        })
    }

    /// The layout the collector reads.
    pub fn layout(&self) -> &CgroupLayout {
        &self.layout
    }

    /// Cgroups being read.
    pub fn cgroup_count(&self) -> usize {
        self.tracked.len()
    }

    /// File handles held open for per-tick reads, as of the end of the
    /// last [`collect`](Self::collect).
    pub fn open_files(&self) -> usize {
        self.files_held as usize
    }

    /// The per-tick files read for every cgroup (for the benchmark's floor).
    pub fn per_tick_files(&self) -> Vec<PathBuf> {
        self.tracked
            .values()
            .flat_map(|t| t.reader.files())
            .collect()
    }

    /// Every cgroup file the collector reads and how often, as the
    /// tracked cgroups stand after the last [`collect`](Self::collect):
    /// the statistics files, held open, and those it opens when due (the
    /// limits at each `spec_refresh_interval`, v1 blkio sets without data
    /// at each probe). The benchmark's floor reads exactly these, so that
    /// the agent's cost is compared with reading the same files at the
    /// same cadence.
    pub fn read_plan(&self) -> Vec<PlannedRead> {
        let slow_every = ticks_per(self.config.interval, self.config.slow_stat_interval);
        // The bench's activities move memory by less than the kernel's
        // batch: `memory.stat` at most once per lag.
        let lag_every = ticks_per(self.config.interval, self.memory_stat_lag.0);
        let probe_every = ticks_per(self.config.interval, BLKIO_PROBE_INTERVAL);
        let mut out = Vec::new();
        for (cgroup, t) in self.tracked.values().enumerate() {
            let every = match t.aggregate_phase {
                Some(_) => self.aggregate_every,
                None => 1,
            };
            let slow = match t.aggregate_phase {
                Some(_) => slow_every.max(every * AGGREGATE_SLOW_READS),
                None => slow_every,
            };
            for (path, cadence) in t.reader.read_plan() {
                let (every, quiet_every, quiet_when) = match cadence {
                    ReadCadence::Tick => (every, every, None),
                    ReadCadence::WhileRunning => (every, slow, Some(Probe::CpuTime)),
                    ReadCadence::WhileMemoryMoves { lagged: true } => {
                        (every.max(lag_every), slow, Some(Probe::MemoryUsage))
                    }
                    ReadCadence::WhileMemoryMoves { lagged: false } => {
                        (every, slow, Some(Probe::MemoryUsage))
                    }
                    ReadCadence::Slow => (slow, slow, None),
                };
                out.push(PlannedRead {
                    path,
                    cgroup,
                    every,
                    quiet_every,
                    quiet_when,
                    held: true,
                });
            }
            // Opened when due: the limits at each refresh, the empty blkio
            // sets at each probe.
            let opened = |path, every| PlannedRead {
                path,
                cgroup,
                every,
                quiet_every: every,
                quiet_when: None,
                held: false,
            };
            let spec_every = self.spec_every(t);
            out.extend(
                t.reader
                    .spec_files()
                    .into_iter()
                    .map(|p| opened(p, spec_every)),
            );
            out.extend(
                t.reader
                    .probe_files()
                    .into_iter()
                    .map(|p| opened(p, probe_every)),
            );
            if let Some(net) = &t.net {
                out.push(PlannedRead {
                    path: net.path(&self.config.proc_root),
                    cgroup,
                    every,
                    quiet_every: every,
                    quiet_when: None,
                    held: true,
                });
            }
        }
        out
    }

    /// The limit files and task lists watched for writes (see
    /// [`LimitWatch`]).
    pub fn limit_watch_count(&self) -> usize {
        self.limit_watch.as_ref().map_or(0, LimitWatch::watch_count)
    }

    /// Read errors so far, by reason.
    pub fn errors(&self) -> &ErrorCounts {
        &self.errors
    }

    /// Runs one cycle and returns what it read.
    pub fn collect(&mut self) -> Snapshot {
        self.grant_slow_files();
        let events = self.discovery.refresh();
        let mut to_add = events
            .iter()
            .filter(|e| matches!(e, DiscoveryEvent::Added(_)))
            .count() as u64;
        for event in events {
            match event {
                DiscoveryEvent::Added(p) => {
                    to_add -= 1;
                    self.add(p.as_str(), to_add)
                }
                DiscoveryEvent::Removed(p) => self.remove(p.as_str()),
            }
        }
        self.apply_writes();
        self.refresh_slow_state();
        self.refresh_pod_status();
        self.walker.step();

        // The samples' time is taken here, when the reads begin, not when
        // the tick did: the housekeeping above can take long (a walk of
        // 2000 cgroups after lost events ~160 ms, a slow pod list
        // seconds), and a rate between this sample and the last would be
        // off by as much as it took.
        let timestamp_ms = now_ms();
        let tick_started = Instant::now();

        let tick = self.tick;
        self.tick += 1;
        let mut containers = Vec::with_capacity(self.tracked.len());
        let mut vanished = Vec::new();
        // The descriptors are counted here, where each cgroup is in the
        // cache anyway: a pass of its own over thousands of boxed cgroups
        // was a sixth of the loop's own time in cache misses.
        let (mut budgeted, mut held) = (0, 0);
        let mut entries: Vec<(&String, &mut Box<Tracked>)> = self.tracked.iter_mut().collect();
        for i in 0..entries.len() {
            // The loop's own time was mostly cache misses: on each boxed
            // cgroup, then on what it points to (its open files, its last
            // sample, its identity's count), a second since they were last
            // touched. Each cgroup's reads take microseconds in the
            // kernel; the lines of the cgroups ahead load meanwhile.
            if let Some((_, ahead)) = entries.get(i + 2) {
                prefetch(&***ahead);
            }
            if let Some((_, next)) = entries.get(i + 1) {
                next.prefetch_what_it_points_to();
            }
            let (path, t) = &mut entries[i];
            let path: &String = path;
            // An aggregate not due this tick: its last sample, with the
            // time it was read.
            if let (Some(phase), Some(last)) = (t.aggregate_phase, &t.last)
                && !(tick + phase).is_multiple_of(self.aggregate_every)
            {
                containers.push(ContainerSample {
                    info: t.info.clone(),
                    stats: ContainerStats::clone(last),
                });
                budgeted += budgeted_descriptors(t);
                held += held_descriptors(t);
                continue;
            }
            match t
                .reader
                .read_stats_with(timestamp_ms, tick_started, &mut self.scratch)
            {
                Ok(mut stats) => {
                    stats.pids.limit = t.spec.pids_limit;
                    if let Some(net) = &mut t.net {
                        match net.read() {
                            Ok(ifaces) => stats.network = ifaces,
                            Err(_) => t.net = None, // the task exited; find another on refresh
                        }
                    }
                    if let Some(dev) = &t.layer_device
                        && let Some(u) = self.walker.usage(path)
                    {
                        stats.filesystem.push(FilesystemStats {
                            usage: u.bytes,
                            inodes: u.inodes,
                            inodes_free: 0,
                            ..dev.clone()
                        });
                    }
                    if t.aggregate_phase.is_some() {
                        t.last = Some(Box::new(stats.clone()));
                    }
                    containers.push(ContainerSample {
                        info: t.info.clone(),
                        stats,
                    });
                }
                Err(e) if e.is_vanished() => vanished.push(path.clone()),
                Err(e) => {
                    let reason = error_reason(&e);
                    *self.errors.by_reason.entry(reason).or_default() += 1;
                    if self.logged.insert((path.clone(), reason)) {
                        tracing::warn!(cgroup = %path, error = %e, "cannot read cgroup; other cgroups are unaffected");
                    }
                }
            }
            budgeted += budgeted_descriptors(t);
            held += held_descriptors(t);
        }
        (self.fds_in_use, self.files_held) = (budgeted, held);
        for path in vanished {
            *self.errors.by_reason.entry("vanished").or_default() += 1;
            self.remove(&path);
        }
        // Metadata sources that failed (unreadable runtime records, a pod
        // list that did not answer): counted by the cache, shown here.
        let metadata_errors = self.metadata.errors();
        if metadata_errors > 0 {
            self.errors.by_reason.insert("metadata", metadata_errors);
        }
        let cpu_load = self.sample_load(&containers, timestamp_ms);
        Snapshot {
            timestamp_ms,
            machine: self.machine.clone(),
            node_filesystems: self.node_filesystems.clone(),
            kubelet_filesystem: self.kubelet_filesystem.clone(),
            containers,
            kube: self.kube.clone(),
            cpu_load,
            log_usage: self.log_usage.clone(),
        }
    }

    /// Re-reads pod status (restart counts, namespaces) from the pod
    /// lists every `pod_status_interval`; the lists themselves are fetched
    /// at most every 30 s whoever asks.
    fn refresh_pod_status(&mut self) {
        if !self.metadata.has_pod_source()
            || self
                .last_pod_status
                .is_some_and(|t| t.elapsed() < self.config.pod_status_interval)
        {
            return;
        }
        self.last_pod_status = Some(Instant::now());
        self.kube = Arc::new(KubeState::from_pod_lists(self.metadata.pod_lists()));
    }

    /// The CPU load of every cgroup read this tick, when `cpu_load` is on.
    fn sample_load(&mut self, containers: &[ContainerSample], now_ms: i64) -> Vec<(String, f64)> {
        let Some(load) = &mut self.load else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(containers.len());
        for c in containers {
            // Aggregates carried from an earlier tick (pod and QoS
            // cgroups, read every `aggregate_interval`) get no load figure
            // stamped with this tick.
            if c.stats.timestamp_ms != now_ms {
                continue;
            }
            let id = c.info.id.as_str();
            let counts = if id == "/" {
                load.count_machine()
            } else {
                let list = match self.layout.mode() {
                    crate::layout::CgroupMode::V1 => {
                        self.layout.v1_dir("cpu", id).map(|d| d.join("tasks"))
                    }
                    crate::layout::CgroupMode::V2 => {
                        self.layout.v2_dir(id).map(|d| d.join("cgroup.threads"))
                    }
                };
                match list {
                    Some(list) => load.count_tasks(&list),
                    None => continue,
                }
            };
            // A cgroup that vanished since its stats were read: no figure.
            if let Ok(counts) = counts {
                out.push((id.to_string(), load.update(id, counts, now_ms)));
            }
        }
        out
    }

    /// Starts reading cgroup `path`; `still_to_add` more cgroups are being
    /// added in the same discovery round.
    fn add(&mut self, path: &str, still_to_add: u64) {
        if self.tracked.contains_key(path) {
            return;
        }
        // Slow files are held open too while the descriptors allow it: the
        // per-tick files of the cgroups still to be added come first, and
        // the rest of the process keeps what it needs.
        let reserved = still_to_add * PER_TICK_FILES_ESTIMATE;
        let spare = self.spare_descriptors(still_to_add);
        let hold_slow =
            self.config.hold_slow_files && self.fds_in_use + reserved + spare < self.fd_limit;
        if hold_slow {
            self.slow_files_held = true;
        } else if self.config.hold_slow_files {
            self.slow_files_wanted = true;
            self.make_room(PER_TICK_FILES_ESTIMATE + spare);
        }
        let identity = identify(path);
        let aggregate = is_aggregate(identity.kind);
        let reader = match CgroupReader::open_with(&self.layout, path, hold_slow) {
            Ok(mut r) => {
                r.set_slow_interval(self.slow_interval(aggregate));
                r.set_carry_quiet_memory_stat(self.config.carry_quiet_memory_stat);
                r.set_memory_stat_lag(self.memory_stat_lag.0, self.memory_stat_lag.1);
                r.set_carry_idle_pids(self.config.carry_idle_pids);
                r.set_carry_idle_pressure(self.config.carry_idle_pressure);
                r
            }
            Err(e) => {
                if !e.is_vanished() {
                    *self.errors.by_reason.entry(error_reason(&e)).or_default() += 1;
                    tracing::warn!(cgroup = %path, error = %e, "cannot open cgroup");
                }
                return;
            }
        };
        let meta = self.metadata.resolve(&CgroupPath::new(path), &identity);
        let aggregate_phase = aggregate.then(|| {
            self.aggregates_added += 1;
            self.aggregates_added % self.aggregate_every
        });
        let mut t = Tracked {
            identity,
            reader,
            meta,
            spec: ContainerSpec::default(),
            info: Arc::default(),
            net: None,
            layer_device: None,
            layer_dir: None,
            aggregate_phase,
            last: None,
            limit_watches: None,
            spec_read_tick: self.tick,
        };
        t.limit_watches = self.watch_limits(path, &t.reader);
        // After the spec is read: it decides whether v1 `cpu.stat` stays open.
        self.refresh_tracked(path, &mut t);
        self.fds_in_use += budgeted_descriptors(&t);
        self.tracked.insert(path.to_string(), Box::new(t));
    }

    /// How often a cgroup's slow files are read: every
    /// `slow_stat_interval`; an aggregate's at every
    /// [`AGGREGATE_SLOW_READS`]th of its reads (less half a tick, so that
    /// the jitter of the ticks does not put it off by a read).
    fn slow_interval(&self, aggregate: bool) -> Duration {
        let slow = self.config.slow_stat_interval;
        if !aggregate {
            return slow;
        }
        let reads = self.config.aggregate_interval * AGGREGATE_SLOW_READS as u32;
        reads.saturating_sub(self.config.interval / 2).max(slow)
    }

    /// Closes other cgroups' held slow files until `wanted` descriptors
    /// are free under the limit (or none is left to close): cgroups that
    /// arrive after the slow files of the first ones filled the budget
    /// still get their per-tick files.
    fn make_room(&mut self, wanted: u64) {
        if !self.slow_files_held || self.fds_in_use + wanted <= self.fd_limit {
            return;
        }
        self.slow_files_held = false;
        self.slow_files_wanted = true;
        for t in self.tracked.values_mut() {
            self.fds_in_use = self
                .fds_in_use
                .saturating_sub(t.reader.release_slow_files() as u64);
            if self.fds_in_use + wanted <= self.fd_limit {
                // Some readers further on may still hold theirs.
                self.slow_files_held = true;
                return;
            }
        }
    }

    /// Lets cgroups that were opened without holding their slow files
    /// hold them, while the budget allows: the budget at discovery counts
    /// descriptors that may never be opened (a v1 blkio pair before its
    /// probe), and cgroups go away. At most once per slow interval.
    fn grant_slow_files(&mut self) {
        if !self.slow_files_wanted
            || self.last_slow_grant.elapsed() < self.config.slow_stat_interval
        {
            return;
        }
        self.last_slow_grant = Instant::now();
        self.slow_files_wanted = false;
        let spare = self.spare_descriptors(0);
        for t in self.tracked.values_mut() {
            if t.reader.holds_slow_files() {
                continue;
            }
            // Slow files are five at most: room for them and for one more
            // cgroup's per-tick files besides the spare.
            if self.fds_in_use + 5 + PER_TICK_FILES_ESTIMATE + spare >= self.fd_limit {
                self.slow_files_wanted = true;
                return;
            }
            self.fds_in_use += t.reader.hold_slow_files() as u64;
            self.slow_files_held = true;
        }
    }

    /// Descriptors left to the rest of the process when deciding whether a
    /// cgroup's slow files are held open: the HTTP server's connections,
    /// the shipper's spill files, files opened for a moment (a slow file,
    /// a spec or metadata read, the writable-layer walk), and, when
    /// container logs are tailed, two per cgroup (a log file and, around a
    /// rotation, its successor). A fixed share of the limit was too much
    /// at a 20 000-descriptor limit without logs: a thousand cgroups
    /// reopened their slow files every few seconds for nothing.
    fn spare_descriptors(&self, still_to_add: u64) -> u64 {
        let logs = match self.config.logs {
            Some(_) => 2 * (self.tracked.len() as u64 + still_to_add),
            None => 0,
        };
        (self.fd_limit / 4).min(SPARE_DESCRIPTORS) + logs
    }

    fn remove(&mut self, path: &str) {
        if let Some(t) = self.tracked.remove(path) {
            self.fds_in_use = self.fds_in_use.saturating_sub(budgeted_descriptors(&t));
            self.files_held = self.files_held.saturating_sub(held_descriptors(&t));
            self.netns.release(path);
            self.walker.forget(path);
            if let (Some(watch), Some(key)) = (&mut self.limit_watch, t.limit_watches) {
                watch.unwatch(key);
            }
            if let Some(load) = &mut self.load {
                load.forget(path);
            }
            self.metadata.forget(&CgroupPath::new(path));
            self.logged.retain(|(p, _)| p != path);
        }
    }

    /// Re-reads limits, metadata, the network task and the writable layer
    /// of one cgroup, and rebuilds its [`ContainerInfo`].
    fn refresh_tracked(&mut self, path: &str, t: &mut Tracked) {
        self.read_limits(t);
        self.look_again(path, t);
    }

    /// Re-reads the cgroup's limits (its [`ContainerInfo`] is rebuilt by
    /// [`Collector::look_again`]).
    fn read_limits(&mut self, t: &mut Tracked) {
        match t.reader.read_spec() {
            Ok(mut spec) => {
                if t.identity.kind == CgroupKind::Root && spec.memory_limit.is_none() {
                    // The root's limit is the machine (cAdvisor's rule).
                    spec.memory_limit = Some(self.machine.memory_bytes);
                }
                t.spec = spec;
            }
            Err(e) if !e.is_vanished() => {
                *self.errors.by_reason.entry(error_reason(&e)).or_default() += 1;
            }
            Err(_) => {}
        }
    }

    /// Looks for what the cgroup did not have yet (a network namespace of
    /// its own, a writable layer), and rebuilds its [`ContainerInfo`] from
    /// its names and limits.
    fn look_again(&mut self, path: &str, t: &mut Tracked) {
        if t.net.is_none() {
            t.net = if t.identity.kind == CgroupKind::Root {
                // The root cgroup carries the node's totals: the host's
                // interfaces, as seen by pid 1 (cAdvisor's rule).
                NetDevReader::open(&self.config.proc_root, 1).ok()
            } else {
                self.network_reader(path, &t.meta)
            };
        }
        let layer = match (&t.layer_device, &t.identity.container_id) {
            (None, Some(id)) => {
                filesystem::writable_layer(&self.config.docker_root, &self.mounts, id)
            }
            _ => None,
        };
        if let Some(dir) = layer {
            t.layer_device = backing_filesystem(&dir, &self.mounts);
            t.layer_dir = Some(dir.clone());
            self.walker.track(path, dir);
        }
        // Taken once, when the cgroup is first seen: its directory's mtime
        // moves whenever a child cgroup is made in it (on cgroupfs once the
        // directory's attributes were set, as a chown does), and a pod's
        // start time must not follow its containers'.
        let created = match t.info.creation_time_seconds {
            known if known > 0.0 => known,
            _ => self.creation_time(path),
        };
        let info = container_info(path, &t.identity, &t.meta, &t.spec, created);
        // Unchanged (the usual outcome of a look while a cgroup settles),
        // the identity keeps its `Arc`: the window shares the previous
        // tick's list of identities only while every one is the same
        // value, and a new `Arc` for one cgroup made it copy the list of
        // all of them and compare their ids.
        if *t.info != info {
            t.info = Arc::new(info);
        }
    }

    /// Opens the network counters a cgroup should report: those of its
    /// own namespace, unless it is a pod container whose sandbox reports
    /// the pod's, or its namespace is the host's or already reported
    /// ([`NetnsRegistry`]). Plain cgroups and services are tried too: a
    /// task in a namespace of its own is worth reporting wherever it runs.
    fn network_reader(&mut self, path: &str, meta: &ContainerMetadata) -> Option<NetDevReader> {
        if meta.kind == CgroupKind::Container && meta.carries_network() == Some(false) {
            return None;
        }
        let pid = meta
            .pid
            .filter(|p| *p > 0)
            .or_else(|| self.first_task(path))?;
        // The namespace first: most tasks share one already reported (the
        // host's, their pod's), and then nothing needs opening.
        let netns = crate::network::netns_of(&self.config.proc_root, pid).ok()?;
        if !self.netns.claim(netns, path, meta.is_pod_sandbox) {
            return None;
        }
        match NetDevReader::open(&self.config.proc_root, pid) {
            Ok(reader) if reader.netns() == netns => Some(reader),
            // The task exited or moved on in between: try again later.
            _ => {
                self.netns.release(path);
                None
            }
        }
    }

    /// Some task of the cgroup (from `cgroup.procs`), for its network
    /// namespace.
    fn first_task(&self, path: &str) -> Option<u32> {
        let dir = match self.layout.mode() {
            crate::layout::CgroupMode::V1 => self
                .layout
                .v1_dir("cpu", path)
                .or_else(|| self.layout.v1_dir("memory", path))?,
            crate::layout::CgroupMode::V2 => self.layout.v2_dir(path)?,
        };
        let procs = fs::read_to_string(dir.join("cgroup.procs")).ok()?;
        procs.lines().find_map(|l| l.trim().parse().ok())
    }

    /// The cgroup's creation time: the mtime of its directory, never
    /// earlier than boot (cAdvisor's rule).
    fn creation_time(&self, path: &str) -> f64 {
        let dir = match self.layout.mode() {
            crate::layout::CgroupMode::V1 => self
                .layout
                .v1_dir("memory", path)
                .or_else(|| self.layout.v1_dir("cpu", path)),
            crate::layout::CgroupMode::V2 => self.layout.v2_dir(path),
        };
        let mtime = dir
            .and_then(|d| fs::metadata(d).ok())
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        mtime.max(self.machine.boot_time_seconds as f64)
    }

    /// Watches the cgroup's limit files and its `cgroup.procs` (in the
    /// first hierarchy holding limits: runtimes move a task into every
    /// hierarchy). `None` when they cannot be watched.
    fn watch_limits(&mut self, path: &str, reader: &CgroupReader) -> Option<WatchKey> {
        let watch = self.limit_watch.as_mut()?;
        let dirs = reader.spec_dirs();
        let mut files: Vec<(PathBuf, Written)> = dirs
            .iter()
            .flat_map(|(dir, names)| names.iter().map(|n| (dir.join(n), Written::Limits)))
            .collect();
        if let Some((dir, _)) = dirs.first() {
            files.push((dir.join("cgroup.procs"), Written::Tasks));
        }
        let files: Vec<(&std::path::Path, Written)> =
            files.iter().map(|(f, w)| (f.as_path(), *w)).collect();
        match watch.watch(&Arc::from(path), &files) {
            Ok(key) => key,
            Err(e) => {
                if !self.limit_watch_exhausted {
                    self.limit_watch_exhausted = true;
                    tracing::warn!(
                        cgroup = %path,
                        error = %e,
                        "cannot watch cgroup limits (raise fs.inotify.max_user_watches if it says \"no space left on device\"); \
                         the limits of cgroups not watched are re-read every minute"
                    );
                }
                None
            }
        }
    }

    /// Re-reads what the writes reported since the last tick may have
    /// changed: a cgroup's limits, or the network namespace of tasks moved
    /// into a cgroup without one.
    fn apply_writes(&mut self) {
        let Some(watch) = &mut self.limit_watch else {
            return;
        };
        let writes = match watch.poll() {
            Ok(writes) => writes,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read cgroup limit writes; re-reading limits every minute");
                self.limit_watch = None;
                for t in self.tracked.values_mut() {
                    t.limit_watches = None;
                }
                return;
            }
        };
        if writes.overflowed {
            tracing::debug!(
                "limit writes lost (inotify queue overflow); re-reading every cgroup's limits"
            );
            // A round from wherever it stands now, and the tick a round
            // can take to start again at the first cgroup.
            self.spec_refresh_forced_until = self.tick + self.upkeep_round() + 1;
        }
        let mut tracked = std::mem::take(&mut self.tracked);
        for (path, written) in writes.cgroups {
            let Some(t) = tracked.get_mut(&*path) else {
                continue;
            };
            if written == Written::Limits {
                self.refresh_tracked(&path, t);
                t.spec_read_tick = self.tick;
            } else if t.net.is_none() {
                self.look_again(&path, t);
            }
        }
        self.tracked = tracked;
    }

    /// Ticks in an upkeep round (see [`UPKEEP_ROUND`]).
    fn upkeep_round(&self) -> u64 {
        ticks_per(
            self.config.interval,
            UPKEEP_ROUND.min(self.config.spec_refresh_interval),
        )
    }

    /// Ticks between two reads of the cgroup's limits when nothing was
    /// written to them.
    fn spec_every(&self, t: &Tracked) -> u64 {
        let backstop = if t.limit_watches.is_some() {
            self.config.spec_refresh_interval
        } else {
            self.config
                .spec_refresh_interval
                .min(UNWATCHED_SPEC_REFRESH)
        };
        ticks_per(self.config.interval, backstop).max(self.upkeep_round())
    }

    /// The upkeep of this tick's share of the cgroups, in path order after
    /// the last tick's: every cgroup comes round once per upkeep round.
    fn upkeep_step(&mut self) {
        use std::ops::Bound;
        let share = (self.tracked.len() as u64).div_ceil(self.upkeep_round()) as usize;
        if share == 0 {
            return;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let mut tracked = std::mem::take(&mut self.tracked);
        let after = match &self.upkeep_cursor {
            Some(cursor) => Bound::Excluded(cursor.as_str()),
            None => Bound::Unbounded,
        };
        let mut visited = 0;
        let mut last = None;
        for (path, t) in tracked
            .range_mut::<str, _>((after, Bound::Unbounded))
            .take(share)
        {
            self.upkeep(path, t, now);
            visited += 1;
            last = Some(path);
        }
        // At the end of the map the round is over; the next starts afresh.
        self.upkeep_cursor = last.filter(|_| visited == share).cloned();
        self.tracked = tracked;
    }

    /// One cgroup's turn in the upkeep round: its names looked up (cached
    /// unless due), and its limits, network namespace and writable layer
    /// read again while it settles, when its names changed, or when its
    /// limits are due.
    fn upkeep(&mut self, path: &str, t: &mut Tracked, now_seconds: f64) {
        let meta = self.metadata.resolve(&CgroupPath::new(path), &t.identity);
        // The cache keeps the `Arc` of names read again unchanged.
        let renamed = !Arc::ptr_eq(&meta, &t.meta);
        t.meta = meta;
        let settling = now_seconds - t.info.creation_time_seconds < SETTLING_TIME.as_secs_f64();
        let spec_due = self.tick >= t.spec_read_tick + self.spec_every(t)
            || self.tick < self.spec_refresh_forced_until;
        if spec_due {
            self.refresh_tracked(path, t);
            t.spec_read_tick = self.tick;
        } else if settling || renamed {
            // Its limits are watched: only what a write does not report.
            self.look_again(path, t);
        }
    }

    fn refresh_slow_state(&mut self) {
        self.upkeep_step();
        if self.last_fs_refresh.elapsed() >= self.config.fs_interval {
            self.last_fs_refresh = Instant::now();
            self.mounts = read_mounts(&self.config);
            self.node_filesystems = Arc::new(filesystem::node_filesystems(&self.mounts));
            self.kubelet_filesystem = kubelet_filesystem(&self.config, &self.mounts);
            self.refresh_layer_capacity();
        }
        if self
            .last_log_measure
            .is_none_or(|t| t.elapsed() >= self.config.fs_interval)
        {
            self.last_log_measure = Some(Instant::now());
            self.log_usage = Arc::new(self.measure_logs());
        }
        if self.last_machine_refresh.elapsed() >= Duration::from_secs(300) {
            self.last_machine_refresh = Instant::now();
            let mut m = MachineInfo::read(&self.config.rootfs, &self.config.proc_root);
            if let Some(name) = &self.config.node_name {
                m.hostname = name.clone();
            }
            if let Some(address) = &self.config.node_address {
                m.address = address.clone();
            }
            self.machine = Arc::new(m);
        }
    }
}

impl Collector {
    /// Refreshes the size and free space of the filesystems holding the
    /// containers' writable layers (read once when a layer is found), one
    /// `statvfs` per distinct filesystem.
    fn refresh_layer_capacity(&mut self) {
        // Keyed by the directory's device: overlay and tmpfs mounts share
        // meaningless source names.
        let mut by_dev: HashMap<u64, Option<FilesystemStats>> = HashMap::new();
        for t in self.tracked.values_mut() {
            let (Some(current), Some(dir)) = (&mut t.layer_device, &t.layer_dir) else {
                continue;
            };
            let Ok(meta) = fs::metadata(dir) else {
                continue;
            };
            let fresh = by_dev
                .entry(meta.dev())
                .or_insert_with(|| backing_filesystem(dir, &self.mounts));
            if let Some(f) = fresh {
                current.limit = f.limit;
                current.available = f.available;
            }
        }
    }

    /// Bytes of each pod container's kubelet log files
    /// (`<pod_log_root>/<namespace>_<pod>_<uid>/<container>/`, current and
    /// rotated), the `logs` part of its ephemeral storage.
    fn measure_logs(&self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for (path, t) in &self.tracked {
            let i = &t.info;
            if i.container.is_empty() || i.pod.is_empty() || i.pod_uid.is_empty() {
                continue;
            }
            let dir = self
                .config
                .pod_log_root
                .join(format!("{}_{}_{}", i.namespace, i.pod, i.pod_uid))
                .join(&i.container);
            if let Some(bytes) = filesystem::dir_file_bytes(&dir) {
                out.push((path.clone(), bytes));
            }
        }
        out
    }
}

fn read_mounts(config: &AgentConfig) -> Vec<Mount> {
    // pid 1's view is the host's when the agent runs in a container with
    // the host's /proc mounted; our own view otherwise.
    let text = fs::read_to_string(config.proc_root.join("1/mountinfo"))
        .or_else(|_| fs::read_to_string(config.proc_root.join("self/mountinfo")))
        .unwrap_or_default();
    filesystem::parse_mountinfo(&text)
}

/// The node's ephemeral storage: the filesystem holding the kubelet's
/// root directory, else the root filesystem.
fn kubelet_filesystem(config: &AgentConfig, mounts: &[Mount]) -> Option<Arc<FilesystemStats>> {
    filesystem::filesystem_of(&config.kubelet_root_dir, &config.rootfs, mounts).map(Arc::new)
}

/// The filesystem a directory lives on: its device name and capacity.
fn backing_filesystem(dir: &std::path::Path, mounts: &[Mount]) -> Option<FilesystemStats> {
    let dev = fs::metadata(dir).ok()?.dev();
    let (major, minor) = (rustix::fs::major(dev) as u64, rustix::fs::minor(dev) as u64);
    let mount = mounts.iter().find(|m| m.dev == (major, minor))?;
    let fs = filesystem::node_filesystems(std::slice::from_ref(mount)).pop();
    Some(FilesystemStats {
        device: mount.source.clone(),
        mountpoint: None,
        fs_type: Some(mount.fs_type.clone()),
        limit: fs.as_ref().map(|f| f.limit).unwrap_or(0),
        available: fs.as_ref().map(|f| f.available).unwrap_or(0),
        ..Default::default()
    })
}

fn container_info(
    path: &str,
    identity: &CgroupIdentity,
    meta: &ContainerMetadata,
    spec: &ContainerSpec,
    creation_time_seconds: f64,
) -> ContainerInfo {
    let kind = match identity.kind {
        CgroupKind::Root => "root",
        CgroupKind::Container => "container",
        CgroupKind::Pod => "pod",
        CgroupKind::QosClass => "qos",
        CgroupKind::SystemdUnit => "systemd",
        CgroupKind::Raw => "raw",
    };
    ContainerInfo {
        id: path.to_string(),
        name: if meta.name.is_empty() {
            path.to_string()
        } else {
            meta.name.clone()
        },
        kind: kind.to_string(),
        runtime: identity.runtime.map(|r| r.as_str().to_string()),
        container_id: identity.container_id.clone(),
        image: meta.image.clone(),
        namespace: meta.namespace.clone(),
        pod: meta.pod.clone(),
        pod_uid: if meta.pod_uid.is_empty() {
            identity.pod_uid.clone().unwrap_or_default()
        } else {
            meta.pod_uid.clone()
        },
        container: meta.container.clone(),
        labels: meta.labels.clone(),
        qos_class: identity.qos.clone(),
        spec: spec.clone(),
        creation_time_seconds,
    }
}

/// Whether a cgroup of this kind only aggregates others: pod and QoS-class
/// cgroups hold no processes of their own (on v2 the kernel forbids it
/// once their children have controllers; on v1 the kubelet puts none
/// there), so everything they report is their containers' sum.
fn is_aggregate(kind: CgroupKind) -> bool {
    matches!(kind, CgroupKind::Pod | CgroupKind::QosClass)
}

/// One file of [`Collector::read_plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRead {
    /// The file.
    pub path: PathBuf,
    /// The cgroup it is read for, by its place in the reading order: a
    /// cgroup's due files are read together, at one tick, one after the
    /// other (its kernel structures warm in the caches from the first).
    pub cgroup: usize,
    /// Read every this many ticks while its cgroup is busy.
    pub every: u64,
    /// Read every this many ticks while its cgroup is quiet: while the
    /// figure [`quiet_when`](Self::quiet_when) names stands still.
    pub quiet_every: u64,
    /// The figure of its cgroup whose standing still makes the file due
    /// only every `quiet_every` ticks; `None`: always every `every`.
    pub quiet_when: Option<Probe>,
    /// Held open between reads while the open-file limit leaves room
    /// (the statistics files); `false`: opened, read and closed when due
    /// (the limit files at each refresh, the empty v1 blkio sets at each
    /// probe).
    pub held: bool,
}

/// A figure read every tick that tells whether a cgroup is busy (see
/// [`PlannedRead::quiet_when`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// The cgroup's CPU time (`pids.current` is carried while it stands
    /// still).
    CpuTime,
    /// The cgroup's memory usage (`memory.stat` is carried while it
    /// stands still).
    MemoryUsage,
}

/// How many ticks of `interval` make `period` (aggregates' and slow
/// files' cadences), rounded up, at least one.
fn ticks_per(interval: Duration, period: Duration) -> u64 {
    if interval.is_zero() {
        return 1;
    }
    period.as_nanos().div_ceil(interval.as_nanos()).max(1) as u64
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A short, stable name for a read error's kind: the `reason` label of
/// `osprey_agent_read_errors_total`.
fn error_reason(e: &ReadError) -> &'static str {
    match e {
        ReadError::Vanished { .. } => "vanished",
        ReadError::NotMounted { .. } => "not_mounted",
        ReadError::Io { .. } => "io",
        ReadError::Parse { .. } => "parse",
    }
}
