//! Running the agent: the collection thread, the HTTP API and the shipper,
//! wired together.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::collect::Collector;
use crate::config::AgentConfig;
use crate::expose::families::{DeviceNames, ExposeOptions};
use crate::expose::visit_samples;
use crate::http::AgentState;
use crate::self_metrics::SelfMetrics;
use crate::ship::remote_write::{Label, Sample, TimeSeries};
use crate::ship::{Shipper, ShipperHandle};
use crate::snapshot::Snapshot;
use crate::window::RecentSamples;

/// Why the agent stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The collector could not start.
    #[error(transparent)]
    Collector(#[from] crate::collect::CollectorError),
    /// The shipper could not start.
    #[error("cannot start remote-write shipping: {0}")]
    Ship(#[from] crate::ship::ShipError),
    /// Log shipping could not start.
    #[error("cannot start log shipping: {0}")]
    Logs(#[from] crate::logs::LogsError),
    /// The HTTP listener could not be bound.
    #[error(
        "cannot listen on {addr}: {source} (is another agent running? choose another --listen)"
    )]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// Serving HTTP failed.
    #[error("HTTP server failed: {0}")]
    Serve(std::io::Error),
    /// The TLS settings of the agent's API cannot be used.
    #[error("agent TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
}

/// A running agent's handles, for `osprey up` which also runs a server.
pub struct RunningAgent {
    /// Shared state (latest snapshot, recent window).
    pub state: Arc<AgentState>,
    stop: mpsc::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
    shipper: Option<ShipperHandle>,
    logs: Option<(crate::logs::LogShipperHandle, std::time::Duration)>,
}

impl RunningAgent {
    /// Stops collecting and flushes the shipper's queue (bounded by its
    /// `shutdown_flush_timeout`), persisting what remains.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        if let Some((logs, flush)) = self.logs.take() {
            let _ = tokio::task::spawn_blocking(move || logs.shutdown(flush)).await;
        }
        if let Some(s) = self.shipper.take() {
            let stats = s.shutdown().await;
            tracing::info!(
                queued_batches = stats.queue_batches,
                sent_samples = stats.samples_sent,
                "remote-write shipper stopped"
            );
        }
    }
}

/// Starts collecting (on its own thread) and, when configured, shipping.
/// Must be called within a tokio runtime.
pub fn start(config: AgentConfig) -> Result<RunningAgent, AgentError> {
    let mut collector = Collector::new(config.clone())?;
    let tls = config.tls.client();
    let shipper = match config.remote_write.clone() {
        Some(mut rw) => {
            if rw.spill_dir.is_none() {
                rw.spill_dir = Some(config.data_dir.join("remote-write-queue"));
            }
            tracing::info!(url = %rw.url, "shipping samples by remote-write");
            Some(Shipper::spawn_with_tls(
                rw,
                crate::ship::Payload::RemoteWrite,
                crate::ship::sender::AGENT,
                &tls,
            )?)
        }
        None => None,
    };
    let ship_stats = shipper.as_ref().map(ShipperHandle::feed);
    let node = node_name(&config);
    // The log shipper reads container metadata from the published
    // snapshot, which lives in the state built below: hand it a slot.
    let latest: Arc<Mutex<Option<std::sync::Weak<AgentState>>>> = Arc::new(Mutex::new(None));
    let logs = match config.logs.clone() {
        Some(logs_config) => {
            let flush = logs_config.shutdown_flush_timeout;
            let slot = latest.clone();
            let handle = crate::logs::LogShipper::spawn_with_tls(
                logs_config,
                crate::logs::LogsContext {
                    node: node.clone(),
                    data_dir: config.data_dir.clone(),
                    pod_log_root: config.pod_log_root.clone(),
                    container_log_root: config.container_log_root.clone(),
                    docker_root: config.docker_root.clone(),
                    metadata: Box::new(move || {
                        let state = slot
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .as_ref()?
                            .upgrade()?;
                        let snap = state
                            .latest
                            .read()
                            .unwrap_or_else(|e| e.into_inner())
                            .clone();
                        Some(snap)
                    }),
                },
                &tls,
            )?;
            Some((handle, flush))
        }
        None => None,
    };
    let log_stats = logs.as_ref().map(|(h, _)| h.stats());
    let state = Arc::new(AgentState {
        latest: RwLock::new(Arc::new(Snapshot::default())),
        recent: Mutex::new(RecentSamples::new(
            config.window.as_millis() as i64,
            config.window_samples,
        )),
        self_metrics: SelfMetrics::new(),
        devices: Arc::new(DeviceNames::new(&config.sys_root)),
        expose: ExposeOptions {
            container_labels: config.container_labels.clone(),
        },
        interval: config.interval,
        gzip: config.metrics_gzip,
        extra_metrics: Box::new(move || {
            let mut families = match &ship_stats {
                Some(s) => crate::self_metrics::shipper_families(&s.stats()),
                None => Vec::new(),
            };
            if let Some(l) = &log_stats {
                families.extend(crate::self_metrics::log_families(l));
            }
            families
        }),
    });
    *latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::downgrade(&state));
    let (stop, stopped) = mpsc::channel::<()>();
    let thread_state = state.clone();
    let thread_shipper = shipper.as_ref().map(ShipperHandle::feed);
    let interval = config.interval;
    let thread = std::thread::Builder::new()
        .name("osprey-collect".into())
        .spawn(move || {
            let mut next = Instant::now();
            loop {
                let started = Instant::now();
                let snap = collector.collect();
                thread_state.self_metrics.observe(
                    started.elapsed(),
                    collector.cgroup_count(),
                    collector.open_files(),
                    collector.errors(),
                );
                if let Some(s) = &thread_shipper {
                    s.enqueue(to_time_series(
                        &snap,
                        &thread_state.expose,
                        &thread_state.devices,
                        &node,
                    ));
                }
                thread_state.publish(snap);
                let now = Instant::now();
                next = next_tick(next, interval, now);
                match stopped.recv_timeout(next - now) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
            }
        })
        .expect("spawning a thread");
    Ok(RunningAgent {
        state,
        stop,
        thread: Some(thread),
        shipper,
        logs,
    })
}

/// When the tick after the one due at `due` starts, seen at `now`: on the
/// grid of `interval`s from the first, so that a slow tick does not shift
/// later ones; ticks missed while the process could not run (a tick that
/// overran, a paused VM, SIGSTOP) are skipped, not run back to back: two
/// samples a millisecond apart would give every rate taken between them
/// from a millisecond's change.
fn next_tick(due: Instant, interval: Duration, now: Instant) -> Instant {
    let next = due + interval;
    if next > now {
        return next;
    }
    let missed = (now - next).as_nanos() / interval.as_nanos().max(1) + 1;
    next + interval * u32::try_from(missed).unwrap_or(u32::MAX)
}

/// Runs the agent until `shutdown` completes: collection, the HTTP API on
/// `config.listen`, and shipping when configured.
pub async fn run(
    config: AgentConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    // Certificate problems stop the start, before anything binds.
    let tls = match config.tls.listener()? {
        Some(listener) => Some(listener.server_config()?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| AgentError::Listen {
            addr: config.listen,
            source,
        })?;
    let agent = start(config.clone())?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(listen = %config.listen, scheme, interval = ?config.interval, "agent running; metrics on /metrics");
    let options = crate::serve::ServeOptions {
        header_read_timeout: config.header_read_timeout,
        tls,
        ..Default::default()
    };
    crate::serve::serve(
        listener,
        crate::http::router(agent.state.clone()),
        options,
        shutdown,
    )
    .await
    .map_err(AgentError::Serve)?;
    agent.shutdown().await;
    Ok(())
}

/// Collects once (twice a second apart is not needed: counters are
/// cumulative) and returns the snapshot, for `osprey agent --once`.
pub fn collect_once(config: AgentConfig) -> Result<Snapshot, AgentError> {
    let mut collector = Collector::new(config)?;
    Ok(collector.collect())
}

/// This node's name: `node_name` from the config, else the hostname.
pub fn node_name(config: &AgentConfig) -> String {
    config
        .node_name
        .clone()
        .or_else(sysinfo::System::host_name)
        .unwrap_or_else(|| "unknown".into())
}

/// A snapshot's samples as remote-write series, adding `job` and `node`
/// labels (what a Prometheus scrape would add as `job`/`instance`). Empty
/// label values are left out here; the shipper sorts the labels.
///
/// Samples carried from an earlier tick (those with their own
/// [`timestamp_ms`](crate::expose::families::Sample::timestamp_ms): an
/// aggregate cgroup between its reads) are left out: they were shipped
/// with the tick that read them.
pub fn to_time_series(
    snap: &Snapshot,
    opts: &ExposeOptions,
    devices: &DeviceNames,
    node: &str,
) -> Vec<TimeSeries> {
    let mut out = Vec::new();
    visit_samples(snap, opts, devices, |s| {
        if s.timestamp_ms.is_some() {
            return;
        }
        let mut labels: Vec<Label> = Vec::with_capacity(s.base.len() + s.extra.len() + 3);
        labels.push(Label {
            name: "__name__".into(),
            value: s.name.into(),
        });
        labels.push(Label {
            name: "job".into(),
            value: "osprey-agent".into(),
        });
        labels.push(Label {
            name: "node".into(),
            value: node.into(),
        });
        let base = s.base.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        for (k, v) in base.chain(s.extra.iter().copied()) {
            if !v.is_empty() {
                labels.push(Label {
                    name: k.into(),
                    value: v.into(),
                });
            }
        }
        out.push(TimeSeries {
            labels,
            samples: vec![Sample {
                value: s.value,
                timestamp: snap.timestamp_ms,
            }],
        });
    });
    out
}

/// Tunes glibc's allocator for a process that is only an agent (`osprey
/// agent` calls it first thing; `osprey up`, which also runs the server's
/// many allocating threads, does not, and neither does [`start`]: these
/// settings are process-wide).
///
/// glibc gives every thread that allocates its own arena and keeps what a
/// thread freed in it: a scrape of a large node, served on whichever I/O
/// thread, then pinned several MiB per thread. One arena lets the next
/// scrape reuse the last one's memory (the agent allocates little and
/// rarely contends).
///
/// The mmap threshold is fixed too: glibc raises it each time a large
/// block is freed, so after the first scrape the next scrape's text (~20
/// MB at 2000 cgroups) came from the heap and stayed in the agent's RSS
/// after it was sent. Fixed at 1 MiB, blocks that large are mapped for
/// their lifetime and returned to the system when freed.
pub fn tune_allocator_for_agent_process() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator tunables.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// Returns freed heap memory to the system after a large, rare allocation
/// burst (a scrape), so the agent's RSS reflects what it keeps.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_keep_to_the_grid_and_skip_the_ones_missed() {
        let start = Instant::now();
        let second = Duration::from_secs(1);
        let at = |ms: u64| start + Duration::from_millis(ms);
        // A tick that took 30 ms: the next is a second after the last start.
        assert_eq!(next_tick(start, second, at(30)), at(1000));
        // One that overran by 300 ms: the next grid point, not at once.
        assert_eq!(next_tick(start, second, at(1300)), at(2000));
        // Resumed 10.5 s later: once more on the grid, nothing run twice.
        assert_eq!(next_tick(start, second, at(10_500)), at(11_000));
        // Exactly on a grid point that has come: the one after it.
        assert_eq!(next_tick(start, second, at(2000)), at(3000));
    }
}
