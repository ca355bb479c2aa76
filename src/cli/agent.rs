//! `osprey agent` and the agent options `osprey up` shares.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use osprey_collector::config::AgentConfig;

use super::config::ConfigFile;

/// Options of the node agent. Each overrides the `[agent]` table of the
/// config file; each can also be set by the environment variable shown.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Collection interval, e.g. `1s`, `10s` [default: 10s].
    #[arg(long, env = "OSPREY_INTERVAL", value_parser = humantime::parse_duration)]
    pub interval: Option<Duration>,
    /// This node's name in shipped series [default: the hostname].
    #[arg(long, env = "OSPREY_NODE_NAME")]
    pub node_name: Option<String>,
    /// This node's address shown by the dashboard [default: the address of the default route's interface].
    #[arg(long, env = "OSPREY_NODE_ADDRESS", value_name = "ADDRESS")]
    pub node_address: Option<String>,
    /// Directory holding the cgroup hierarchies [default: found in mountinfo].
    #[arg(long, env = "OSPREY_CGROUP_ROOT", value_name = "DIR")]
    pub cgroup_root: Option<PathBuf>,
    /// The host's /proc [default: /proc].
    #[arg(long, env = "OSPREY_PROC_ROOT", value_name = "DIR")]
    pub proc_root: Option<PathBuf>,
    /// The host's /sys [default: /sys].
    #[arg(long, env = "OSPREY_SYS_ROOT", value_name = "DIR")]
    pub sys_root: Option<PathBuf>,
    /// The host's root filesystem, for machine id and OS release [default: /].
    #[arg(long, env = "OSPREY_ROOTFS", value_name = "DIR")]
    pub rootfs: Option<PathBuf>,
    /// Docker's data root [default: /var/lib/docker].
    #[arg(long, env = "OSPREY_DOCKER_ROOT", value_name = "DIR")]
    pub docker_root: Option<PathBuf>,
    /// The kubelet's pod log directory [default: /var/log/pods].
    #[arg(long, env = "OSPREY_POD_LOG_ROOT", value_name = "DIR")]
    pub pod_log_root: Option<PathBuf>,
    /// The kubelet's container log symlinks [default: /var/log/containers].
    #[arg(long, env = "OSPREY_CONTAINER_LOG_ROOT", value_name = "DIR")]
    pub container_log_root: Option<PathBuf>,
    /// The kubelet's root directory, whose filesystem is the node's
    /// ephemeral storage [default: /var/lib/kubelet; the root filesystem
    /// when it does not exist].
    #[arg(long, env = "OSPREY_KUBELET_ROOT_DIR", value_name = "DIR")]
    pub kubelet_root_dir: Option<PathBuf>,
    /// The kubelet's read-only pod list for pod metadata, e.g. http://127.0.0.1:10255/pods.
    #[arg(long, env = "OSPREY_KUBELET_PODS_URL", value_name = "URL")]
    pub kubelet_pods_url: Option<String>,
    /// The Kubernetes API server for pod metadata: `in-cluster` (service account) or a URL.
    #[arg(long, env = "OSPREY_KUBERNETES_API", value_name = "in-cluster|URL")]
    pub kubernetes_api: Option<String>,
    /// The service account directory holding `token` and `ca.crt`
    /// [default: /var/run/secrets/kubernetes.io/serviceaccount].
    #[arg(
        long,
        env = "OSPREY_KUBERNETES_SERVICE_ACCOUNT_DIR",
        value_name = "DIR"
    )]
    pub kubernetes_service_account_dir: Option<PathBuf>,
    /// Report only containers (plus the root cgroup), not every cgroup.
    #[arg(long, env = "OSPREY_CONTAINERS_ONLY")]
    pub containers_only: bool,
    /// Measure each cgroup's 10 s CPU load (container_cpu_load_average_10s):
    /// one /proc/<tid>/stat read per thread per tick, hence off by default.
    #[arg(long, env = "OSPREY_CPU_LOAD")]
    pub cpu_load: bool,
    /// How often the pod list is read for restart counts and namespace UIDs
    /// [default: 60s].
    #[arg(long, env = "OSPREY_POD_STATUS_INTERVAL", value_parser = humantime::parse_duration)]
    pub pod_status_interval: Option<Duration>,
    /// Report only this cgroup subtree (repeatable), e.g. /kubepods.slice.
    #[arg(
        long = "subtree",
        env = "OSPREY_SUBTREES",
        value_delimiter = ',',
        value_name = "PATH"
    )]
    pub subtrees: Vec<String>,
    /// Backstop for changes inotify missed: every cgroup directory checked
    /// once in this period, a share each tick [default: 5m].
    #[arg(long, env = "OSPREY_RESCAN_INTERVAL", value_parser = humantime::parse_duration)]
    pub rescan_interval: Option<Duration>,
    /// Backstop re-read of limits; a write to a limit is seen by inotify
    /// and read at the next tick [default: 10m].
    #[arg(long, env = "OSPREY_SPEC_REFRESH_INTERVAL", value_parser = humantime::parse_duration)]
    pub spec_refresh_interval: Option<Duration>,
    /// How long container names, labels and images are kept before being
    /// read again; missing names are retried sooner [default: 5m].
    #[arg(long, env = "OSPREY_METADATA_REFRESH_INTERVAL", value_parser = humantime::parse_duration)]
    pub metadata_refresh_interval: Option<Duration>,
    /// How often pod and QoS-class cgroups (sums of their containers) are
    /// read when the interval is shorter; 0s: every tick [default: 10s].
    #[arg(long, env = "OSPREY_AGGREGATE_INTERVAL", value_parser = humantime::parse_duration)]
    pub aggregate_interval: Option<Duration>,
    /// Read memory.stat of every cgroup every tick, even of cgroups whose
    /// memory usage has not moved since its last read (by default their
    /// last figures are reported until the next slow read, 10 s, and
    /// those of cgroups whose usage moved a little for up to 2 s, as the
    /// kernel refreshes them).
    #[arg(long, env = "OSPREY_ALWAYS_READ_MEMORY_STAT")]
    pub always_read_memory_stat: bool,
    /// Read pids.current of every cgroup every tick, even of cgroups whose
    /// CPU time has not moved since its last read (by default their last
    /// count is reported until the next slow read, 10 s).
    #[arg(long, env = "OSPREY_ALWAYS_READ_PIDS")]
    pub always_read_pids: bool,
    /// Read the cgroup v2 pressure files (cpu/memory/io.pressure) of every
    /// cgroup every tick, even of cgroups whose CPU time has stood still
    /// for two ticks and whose stall totals did not move (by default their
    /// last totals are reported until the next slow read, 10 s).
    #[arg(long, env = "OSPREY_ALWAYS_READ_PRESSURE")]
    pub always_read_pressure: bool,
    /// Open the slow files (peak memory, limit hits, OOM counts, v1 kernel
    /// memory, user/system split) when due instead of holding them open:
    /// ~22 KiB less kernel memory per cgroup, charged to the agent's
    /// cgroup, for ~3.5 µs per file read (see `hold_slow_files`).
    #[arg(long, env = "OSPREY_OPEN_SLOW_FILES_WHEN_DUE")]
    pub open_slow_files_when_due: bool,
    /// Send /metrics as plain text even to scrapers that accept gzip (by
    /// default gzip: an eighth of the bytes for ~2.5 ms of CPU per MB of
    /// text; see `metrics_gzip`).
    #[arg(long, env = "OSPREY_NO_METRICS_GZIP")]
    pub no_metrics_gzip: bool,
    /// Directory entries the writable-layer walker may examine per tick [default: 20000].
    #[arg(long, env = "OSPREY_FS_WALK_BUDGET")]
    pub fs_walk_budget: Option<usize>,
    /// History kept for /api/v1/containers/{id}/stats [default: 2m].
    #[arg(long, env = "OSPREY_WINDOW", value_parser = humantime::parse_duration)]
    pub window: Option<Duration>,
    /// Runtime/pod label exported as container_label_<key> (repeatable).
    #[arg(
        long = "container-label",
        env = "OSPREY_CONTAINER_LABELS",
        value_delimiter = ','
    )]
    pub container_labels: Vec<String>,
    /// Push every collection to this Prometheus remote-write URL.
    #[arg(long, env = "OSPREY_REMOTE_WRITE", value_name = "URL")]
    pub remote_write: Option<String>,
    /// Tail container logs and push them to this Loki push URL (e.g.
    /// http://server:9090/loki/api/v1/push); other settings from `[agent.logs]`.
    #[arg(long, env = "OSPREY_LOGS_URL", value_name = "URL")]
    pub logs_url: Option<String>,
    /// Bearer token for the server: remote-write and, when logs are
    /// shipped, the log push.
    #[arg(long, env = "OSPREY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the bearer token (used like --token).
    #[arg(long, env = "OSPREY_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// PEM CA that the server's certificate (https:// URLs) must be signed
    /// by [default: the built-in public roots].
    #[arg(long, env = "OSPREY_SERVER_CA", value_name = "FILE")]
    pub server_ca: Option<PathBuf>,
    /// PEM client certificate for a server requiring mutual TLS (needs
    /// --client-key).
    #[arg(long, env = "OSPREY_CLIENT_CERT", value_name = "FILE")]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(long, env = "OSPREY_CLIENT_KEY", value_name = "FILE")]
    pub client_key: Option<PathBuf>,
}

impl AgentArgs {
    /// Applies the flags (and environment) over the file's settings, and
    /// refuses settings the agent cannot run with.
    pub fn apply(&self, c: AgentConfig) -> anyhow::Result<AgentConfig> {
        let c = self.apply_unchecked(c);
        // A zero interval would read every cgroup in a busy loop.
        anyhow::ensure!(
            !c.interval.is_zero(),
            "the collection interval must be longer than 0s (--interval, OSPREY_INTERVAL or `interval` in [agent]), e.g. 1s or 10s"
        );
        Ok(c)
    }

    fn apply_unchecked(&self, mut c: AgentConfig) -> AgentConfig {
        macro_rules! set {
            ($($field:ident),*) => {$(
                if let Some(v) = &self.$field { c.$field = v.clone(); }
            )*};
        }
        set!(
            interval,
            proc_root,
            sys_root,
            rootfs,
            docker_root,
            pod_log_root,
            container_log_root,
            kubelet_root_dir,
            rescan_interval,
            spec_refresh_interval,
            metadata_refresh_interval,
            aggregate_interval,
            fs_walk_budget,
            pod_status_interval,
            window
        );
        if self.cpu_load {
            c.cpu_load = true;
        }
        if self.always_read_memory_stat {
            c.carry_quiet_memory_stat = false;
        }
        if self.always_read_pids {
            c.carry_idle_pids = false;
        }
        if self.always_read_pressure {
            c.carry_idle_pressure = false;
        }
        if self.open_slow_files_when_due {
            c.hold_slow_files = false;
        }
        if self.no_metrics_gzip {
            c.metrics_gzip = false;
        }
        if self.node_name.is_some() {
            c.node_name = self.node_name.clone();
        }
        if self.node_address.is_some() {
            c.node_address = self.node_address.clone();
        }
        if self.cgroup_root.is_some() {
            c.cgroup_root = self.cgroup_root.clone();
        }
        if self.kubelet_pods_url.is_some() {
            c.kubelet_pods_url = self.kubelet_pods_url.clone();
        }
        if self.kubernetes_api.is_some() {
            c.kubernetes_api = self.kubernetes_api.clone();
        }
        if let Some(dir) = &self.kubernetes_service_account_dir {
            c.kubernetes_service_account_dir = dir.clone();
        }
        if self.containers_only {
            c.containers_only = true;
        }
        if !self.subtrees.is_empty() {
            c.subtrees = self.subtrees.clone();
        }
        if !self.container_labels.is_empty() {
            c.container_labels = self.container_labels.clone();
        }
        if self.remote_write.is_some() || self.token.is_some() || self.token_file.is_some() {
            let mut rw = c.remote_write.take().unwrap_or_default();
            if let Some(url) = &self.remote_write {
                rw.url = url.clone();
            }
            if self.token.is_some() {
                rw.bearer_token = self.token.clone();
            }
            if self.token_file.is_some() {
                rw.bearer_token_file = self.token_file.clone();
            }
            c.remote_write = Some(rw);
        }
        if let Some(url) = &self.logs_url {
            c.logs.get_or_insert_with(Default::default).url = url.clone();
        }
        // One token for both pushes: they go to the same server, and a
        // token given on the command line should not leave the log push
        // with a stale one from the file.
        if let Some(logs) = c.logs.as_mut() {
            if self.token.is_some() {
                logs.bearer_token = self.token.clone();
                logs.bearer_token_file = None;
            }
            if self.token_file.is_some() {
                logs.bearer_token_file = self.token_file.clone();
            }
        }
        if self.server_ca.is_some() {
            c.tls.server_ca = self.server_ca.clone();
        }
        if self.client_cert.is_some() {
            c.tls.client_cert = self.client_cert.clone();
        }
        if self.client_key.is_some() {
            c.tls.client_key = self.client_key.clone();
        }
        c
    }
}

/// `osprey agent`: where it listens and keeps state, plus the agent options.
#[derive(Debug, Args)]
pub struct AgentCommand {
    /// Address of the HTTP API (`/metrics`, `/api/v1/containers`, `/healthz`)
    /// [default: 127.0.0.1:9101].
    #[arg(long, env = "OSPREY_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Where the agent keeps state (the remote-write spill queue)
    /// [default: /var/lib/osprey/agent].
    #[arg(long, env = "OSPREY_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The agent's options.
    #[command(flatten)]
    pub agent: AgentArgs,
    /// HTTPS on the agent's API.
    #[command(flatten)]
    pub tls: super::tls::ListenerTlsArgs,
    /// Print the effective configuration (file, environment and flags
    /// merged) as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Collect once, print to stdout and exit.
    #[arg(long)]
    pub once: bool,
    /// Output format of --once.
    #[arg(long, default_value = "json", value_parser = ["json", "prometheus"], requires = "once")]
    pub format: String,
}

/// Merges the file, environment and flags into the agent's configuration.
pub fn agent_config(file: AgentConfig, cmd: &AgentCommand) -> anyhow::Result<AgentConfig> {
    let mut c = cmd.agent.apply(file)?;
    let listener = cmd.tls.apply(c.tls.listener()?)?;
    set_listener_tls(&mut c, listener);
    if let Some(l) = cmd.listen {
        c.listen = l;
    }
    if let Some(d) = &cmd.data_dir {
        c.data_dir = d.clone();
    }
    Ok(c)
}

/// Sets (or clears) HTTPS on the agent's API.
pub fn set_listener_tls(c: &mut AgentConfig, tls: Option<osprey_collector::tls::ListenerTls>) {
    c.tls.cert_file = tls.as_ref().map(|t| t.cert_file.clone());
    c.tls.key_file = tls.as_ref().map(|t| t.key_file.clone());
    c.tls.client_ca_file = tls.and_then(|t| t.client_ca_file);
}

/// Prints the effective configuration as TOML.
pub fn print_config<T: serde::Serialize>(config: &T) -> anyhow::Result<ExitCode> {
    print!(
        "{}",
        toml::to_string(config).context("encoding the configuration")?
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs `osprey agent`.
pub fn run(file: ConfigFile, cmd: AgentCommand) -> anyhow::Result<ExitCode> {
    let config = agent_config(file.agent, &cmd)?;
    let args = &cmd;
    if args.print_config {
        #[derive(serde::Serialize)]
        struct Effective<'a> {
            agent: &'a AgentConfig,
        }
        return print_config(&Effective { agent: &config });
    }
    if args.once {
        let snap = osprey_collector::agent::collect_once(config.clone())?;
        let out = match args.format.as_str() {
            "prometheus" => {
                let devices =
                    osprey_collector::expose::families::DeviceNames::new(&config.sys_root);
                let opts = osprey_collector::expose::families::ExposeOptions {
                    container_labels: config.container_labels.clone(),
                };
                // The same text as a scrape of /metrics gives.
                osprey_collector::expose::text::TextChunks::snapshot(
                    std::sync::Arc::new(snap),
                    &opts,
                    std::sync::Arc::new(devices),
                    Vec::new(),
                )
                .collect::<Result<Vec<_>, _>>()
                .context("encoding metrics")?
                .concat()
            }
            _ => serde_json::to_vec_pretty(&snap).context("encoding JSON")?,
        };
        use std::io::Write;
        std::io::stdout().write_all(&out)?;
        return Ok(ExitCode::SUCCESS);
    }
    osprey_collector::agent::tune_allocator_for_agent_process();
    let rt = runtime()?;
    rt.block_on(osprey_collector::agent::run(config, shutdown_signal()))?;
    Ok(ExitCode::SUCCESS)
}

/// The async runtime: one I/O thread is plenty; collection and storage
/// work run on their own threads.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("osprey-io")
        .build()
        .context("starting the async runtime")
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}
