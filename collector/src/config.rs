//! The agent's configuration: a plain serde struct, read from the
//! `[agent]` table of the TOML file, then overridden by `OSPREY_*`
//! environment variables and command-line flags (the binary does that
//! merge).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Everything `osprey agent` can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// Address of the agent's HTTP API (`/metrics`, `/api/v1/containers`,
    /// `/healthz`). Loopback by default; a DaemonSet sets `0.0.0.0:9101`.
    pub listen: SocketAddr,
    /// Answer a `/metrics` scrape with gzip when the scraper accepts it,
    /// as Prometheus does by default: the text of a dense node (16.5 MB at
    /// 1000 containers in pods) crosses the network in an eighth of that,
    /// for ~42 ms of CPU per such scrape (0.28 % of a core at a 15 s
    /// scrape interval; `docs/benchmarks.md`, session 12). `false` always
    /// sends plain text, for scrapers that ask for gzip on a fast network
    /// (Prometheus before 2.49 cannot be told not to).
    pub metrics_gzip: bool,
    /// Collection interval.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Name of this node in shipped series (`node` label); the hostname by
    /// default.
    pub node_name: Option<String>,
    /// This node's address, shipped as the `address` label of
    /// `machine_info` and shown by the dashboard (e.g. a DaemonSet passes
    /// the pod's `status.hostIP`). Unset: the IPv4 address of the
    /// interface holding the default route.
    pub node_address: Option<String>,
    /// Directory holding the cgroup hierarchies. Unset: found from
    /// `<proc_root>/self/mountinfo`. Set it to point the agent at another
    /// tree (a fixture in tests, a host mount in a container).
    pub cgroup_root: Option<PathBuf>,
    /// The host's `/proc` (for `mountinfo`, per-task network counters,
    /// `meminfo`); `/rootfs/proc` when the agent runs in a container.
    pub proc_root: PathBuf,
    /// The host's `/sys` (block device names).
    pub sys_root: PathBuf,
    /// The host's root filesystem (machine id, os-release).
    pub rootfs: PathBuf,
    /// Docker's data root (`containers/<id>/config.v2.json`, overlay2 layers).
    pub docker_root: PathBuf,
    /// The kubelet's pod log directory (`<ns>_<pod>_<uid>/<container>/`).
    pub pod_log_root: PathBuf,
    /// The kubelet's container log symlinks (`<pod>_<ns>_<container>-<id>.log`).
    pub container_log_root: PathBuf,
    /// The kubelet's root directory (`--root-dir`): the used bytes and
    /// size of the filesystem holding it are the node's ephemeral storage,
    /// shipped as `node_ephemeral_storage_usage_bytes` and
    /// `node_ephemeral_storage_capacity_bytes{device}` (Heapster's node
    /// `ephemeral_storage/usage`, and its capacity without the API server).
    /// When it does not exist, the root filesystem (`rootfs`) is measured.
    /// `statvfs`'d every `fs_interval`. When the agent runs in a container,
    /// point it at the host directory as mounted in the container.
    pub kubelet_root_dir: PathBuf,
    /// The kubelet's read-only pod list (e.g. `http://127.0.0.1:10255/pods`), asked
    /// for pod metadata on discovery events and for pod status (restart
    /// counts, requests and limits) every `pod_status_interval`, at most
    /// every 30 s. Unset: not asked.
    pub kubelet_pods_url: Option<String>,
    /// The Kubernetes API server to list this node's pods from, for pod
    /// labels and names the node's files do not give: `"in-cluster"` (the
    /// address Kubernetes puts in every pod's environment) or a URL such
    /// as `https://10.96.0.1:443`. Asked on discovery events and every
    /// `pod_status_interval`, at most every 30 s; each namespace with pods
    /// on the node is read once an hour for its UID, and the node's own
    /// `Node` object with every list for its capacity and allocatable
    /// (`kube_node_status_capacity|allocatable`; needs `get` on nodes).
    /// Unset: not asked.
    pub kubernetes_api: Option<String>,
    /// Where the service account's `token` and `ca.crt` are, for
    /// `kubernetes_api`.
    pub kubernetes_service_account_dir: PathBuf,
    /// Report only containers (and the root cgroup for node totals), not
    /// every systemd service, slice and pod cgroup.
    pub containers_only: bool,
    /// Report only these cgroup subtrees (e.g. `/kubepods.slice`); empty:
    /// all. The root cgroup is always reported.
    pub subtrees: Vec<String>,
    /// The backstop for cgroups inotify did not report (a directory it
    /// could not watch): every known cgroup directory is checked once in
    /// this period, a share each tick, and the tree is walked when one
    /// disagrees. Lost events make the next tick walk at once.
    #[serde(with = "humantime_serde")]
    pub rescan_interval: Duration,
    /// How often the slow-moving cgroup figures (peak memory, limit hits,
    /// OOM counts, v1 kernel memory) are re-read when the interval is
    /// shorter; in between, their last figures are reported.
    #[serde(with = "humantime_serde")]
    pub slow_stat_interval: Duration,
    /// Between slow reads, skip `memory.stat` for a cgroup whose memory
    /// usage has not moved since it was last read, reporting its last
    /// figures: the kernel's dearest file (v1 renders ~80 numbers per
    /// read), for the cgroups whose memory stands still, which on a dense
    /// node are most even while they run. What the usage does not show
    /// (pages moving between the LRU lists, which shifts the working set;
    /// faults on pages already charged) then waits for the next slow read.
    /// While the usage moves by less than the kernel's flush batch (64
    /// pages per CPU), `memory.stat` is read at most every 2 s, as often
    /// as the kernel itself refreshes it for such a cgroup. v2's swap
    /// usage is carried with it while the usage stands still.
    /// `false` reads it every tick.
    pub carry_quiet_memory_stat: bool,
    /// Between slow reads, skip `pids.current` for a cgroup whose CPU time
    /// has not moved since it was last read (its tasks fork and exit only
    /// by running), reporting its last count. `false` reads it every tick.
    pub carry_idle_pids: bool,
    /// Between slow reads, skip the v2 pressure files of a cgroup whose
    /// CPU time has stood still for two ticks, while their totals stand
    /// still too, reporting their last totals: a stall starts only with a
    /// task running. `false` reads them every tick.
    pub carry_idle_pressure: bool,
    /// Keep the slow files (above) open between their reads while the
    /// open-file limit leaves room, as the per-tick files are. Each held
    /// cgroup file costs kernel memory charged to the agent's cgroup,
    /// though not in its RSS: its `struct file` and, once read, a page for
    /// its text (~4.4 KiB); five slow files a cgroup come to ~22 KiB, 41
    /// MiB on a node of 2000 cgroups. Opening them when due instead costs
    /// ~3.5 µs a file: ~0.35 % of a core at 2000 cgroups and a 10 s
    /// `slow_stat_interval` (`docs/benchmarks.md`, session 12). `false`
    /// for nodes where the agent's memory limit is tight.
    pub hold_slow_files: bool,
    /// How often cgroups that only aggregate others are read when the
    /// interval is shorter: pod and QoS-class cgroups (`kubepods*.slice`,
    /// `…-pod<uid>.slice`), whose processes all live in their container
    /// cgroups. In between, their last sample is reported with the time it
    /// was read (an explicit timestamp in `/metrics`; remote-write ships
    /// each sample once). Their slow files (see `slow_stat_interval`) are
    /// read at every sixth of their reads. Zero reads them every tick.
    #[serde(with = "humantime_serde")]
    pub aggregate_interval: Duration,
    /// How often limits (quota, memory limit, shares, pids limit) are
    /// re-read as a backstop. A write to a cgroup's limit files is seen by
    /// inotify and its limits are re-read at the next tick; this covers
    /// writes inotify could not report (its queue overflowed, or no watch
    /// was left: `fs.inotify.max_user_watches`). Where a cgroup's limit
    /// files cannot be watched, its limits are re-read every minute (or at
    /// this interval when shorter).
    #[serde(with = "humantime_serde")]
    pub spec_refresh_interval: Duration,
    /// How long a container's names, labels and image are kept before
    /// being read again from the runtime's and the kubelet's files. Names
    /// still missing are tried again sooner: after 10 s, then twice as
    /// long each time up to this interval.
    #[serde(with = "humantime_serde")]
    pub metadata_refresh_interval: Duration,
    /// How often the node's filesystems are `statvfs`'d.
    #[serde(with = "humantime_serde")]
    pub fs_interval: Duration,
    /// How often the pod list (`kubernetes_api` or `kubelet_pods_url`) is
    /// read for pod status: restart counts, requests and limits and
    /// namespace UIDs, shipped as `kube_pod_container_status_restarts_total`,
    /// `kube_pod_container_resource_requests|limits` and
    /// `kube_namespace_created` (see [`crate::kube_state`]). Never more
    /// often than every 30 s (the pod list's own limit). One list per
    /// interval per node, from the API server's watch cache.
    #[serde(with = "humantime_serde")]
    pub pod_status_interval: Duration,
    /// Measure each cgroup's CPU load (cAdvisor's opt-in
    /// `--enable_load_reader`), shipped as `container_cpu_load_average_10s`
    /// (see [`crate::load`]). Off by default: every tick it reads each
    /// cgroup's task list and one `/proc/<tid>/stat` per task, i.e. one
    /// small procfs read per thread on the node: about 10 µs of CPU per
    /// thread (measured with a debug build, `examples/cpu_load_cost.rs`),
    /// so 10 ms per tick on a node running 1000 threads.
    pub cpu_load: bool,
    /// Directory entries the writable-layer walker may examine per tick,
    /// across all containers: bounds the disk-usage cost whatever the
    /// number of containers and files.
    pub fs_walk_budget: usize,
    /// How much history `/api/v1/containers/{id}/stats` keeps in memory.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// At most this many collections are kept in that window, so memory
    /// stays flat at short intervals.
    pub window_samples: usize,
    /// Runtime or pod label keys exported as `container_label_<key>`.
    pub container_labels: Vec<String>,
    /// Where the agent keeps state (the remote-write spill queue).
    pub data_dir: PathBuf,
    /// Ship every collection to a remote-write receiver (`[agent.remote_write]`).
    pub remote_write: Option<crate::ship::RemoteWriteConfig>,
    /// Tail container and node logs and push them to a Loki-compatible
    /// endpoint (`[agent.logs]`, see [`crate::logs::LogsConfig`]); state
    /// is kept under `<data_dir>/logs`.
    pub logs: Option<crate::logs::LogsConfig>,
    /// Time a client of the agent's API has for the TLS handshake and
    /// each request head; slower ones are disconnected (see
    /// [`crate::serve`]).
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// TLS: for the agent's own API and for its pushes to the server
    /// (`[agent.tls]`, see [`AgentTlsConfig`]).
    pub tls: AgentTlsConfig,
}

/// `[agent.tls]`: HTTPS on the agent's API, and how the remote-write
/// shipper and the log pusher verify the server and identify themselves.
///
/// ```toml
/// [agent.tls]
/// server_ca = "/etc/osprey/tls/ca.crt"          # verify the server (https:// URLs)
/// client_cert = "/etc/osprey/tls/agent.crt"     # when the server requires client certificates
/// client_key = "/etc/osprey/tls/agent.key"
/// cert_file = "/etc/osprey/tls/node.crt"        # HTTPS on the agent's own API (/metrics …)
/// key_file = "/etc/osprey/tls/node.key"
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentTlsConfig {
    /// PEM CA the server's certificate must be signed by (`--server-ca`);
    /// unset: the built-in public roots.
    pub server_ca: Option<PathBuf>,
    /// PEM client certificate for servers requiring mutual TLS
    /// (`--client-cert`); needs `client_key`.
    pub client_cert: Option<PathBuf>,
    /// Its PEM private key (`--client-key`).
    pub client_key: Option<PathBuf>,
    /// Trust exactly this certificate for the server (see
    /// [`crate::tls::ClientTls::pinned_server_cert`]); set by `osprey up`.
    pub pinned_server_cert: Option<PathBuf>,
    /// PEM certificate chain of the agent's own API (`--tls-cert`): with
    /// `key_file` set, the API speaks HTTPS only.
    pub cert_file: Option<PathBuf>,
    /// Its PEM private key (`--tls-key`).
    pub key_file: Option<PathBuf>,
    /// PEM CA that clients of the agent's API must present a certificate
    /// from (mutual TLS); needs `cert_file`.
    pub client_ca_file: Option<PathBuf>,
}

impl AgentTlsConfig {
    /// The client side: what the pushes use.
    pub fn client(&self) -> crate::tls::ClientTls {
        crate::tls::ClientTls {
            server_ca: self.server_ca.clone(),
            client_cert: self.client_cert.clone(),
            client_key: self.client_key.clone(),
            pinned_server_cert: self.pinned_server_cert.clone(),
        }
    }

    /// The listener side, `None` for plain HTTP; an error when only half of
    /// it is given.
    pub fn listener(&self) -> Result<Option<crate::tls::ListenerTls>, crate::tls::TlsError> {
        match (&self.cert_file, &self.key_file) {
            (Some(cert_file), Some(key_file)) => Ok(Some(crate::tls::ListenerTls {
                cert_file: cert_file.clone(),
                key_file: key_file.clone(),
                client_ca_file: self.client_ca_file.clone(),
            })),
            (None, None) if self.client_ca_file.is_none() => Ok(None),
            _ => Err(crate::tls::TlsError::Config(
                "HTTPS on the agent's API needs both a certificate and its key: give --tls-cert and --tls-key ([agent.tls] cert_file, key_file), and client_ca_file only with them".into(),
            )),
        }
    }
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9101)),
            metrics_gzip: true,
            interval: Duration::from_secs(10),
            node_name: None,
            node_address: None,
            cgroup_root: None,
            proc_root: PathBuf::from("/proc"),
            sys_root: PathBuf::from("/sys"),
            rootfs: PathBuf::from("/"),
            docker_root: PathBuf::from("/var/lib/docker"),
            pod_log_root: PathBuf::from("/var/log/pods"),
            container_log_root: PathBuf::from("/var/log/containers"),
            kubelet_root_dir: PathBuf::from("/var/lib/kubelet"),
            kubelet_pods_url: None,
            kubernetes_api: None,
            kubernetes_service_account_dir: PathBuf::from(
                crate::metadata::kube_api::SERVICE_ACCOUNT_DIR,
            ),
            containers_only: false,
            subtrees: Vec::new(),
            rescan_interval: Duration::from_secs(300),
            slow_stat_interval: Duration::from_secs(10),
            carry_quiet_memory_stat: true,
            carry_idle_pids: true,
            carry_idle_pressure: true,
            hold_slow_files: true,
            aggregate_interval: Duration::from_secs(10),
            spec_refresh_interval: Duration::from_secs(600),
            metadata_refresh_interval: Duration::from_secs(300),
            fs_interval: Duration::from_secs(60),
            pod_status_interval: Duration::from_secs(60),
            cpu_load: false,
            fs_walk_budget: 20_000,
            window: Duration::from_secs(120),
            window_samples: 12,
            container_labels: Vec::new(),
            data_dir: PathBuf::from("/var/lib/osprey/agent"),
            remote_write: None,
            logs: None,
            header_read_timeout: crate::serve::DEFAULT_HEADER_READ_TIMEOUT,
            tls: AgentTlsConfig::default(),
        }
    }
}
