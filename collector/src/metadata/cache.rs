//! Resolved metadata per cgroup, re-read on a slow cadence.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::discovery::path::CgroupPath;
use crate::discovery::runtime::{CgroupIdentity, CgroupKind, Runtime};

use super::kube_api::KubeApiPodSource;
use super::kubelet_api::{KubeletPodSource, PodSource};
use super::kubelet_logs::{self, ContainerLog, PodLogDir};
use super::{ContainerMetadata, MetadataConfig, MetadataError, docker, oci};

/// Metadata per cgroup path, resolved from the node's files (and the
/// kubelet when configured) on first use, kept for
/// [`MetadataConfig::refresh_interval`] (or
/// [`MetadataConfig::incomplete_retry`] while a pod's names are missing)
/// and dropped by [`MetadataCache::forget`].
pub struct MetadataCache {
    config: MetadataConfig,
    entries: HashMap<CgroupPath, Entry>,
    pod_logs: LogIndex<PodLogDir>,
    container_logs: LogIndex<ContainerLog>,
    /// The kubelet's and the API server's pod lists, when configured.
    pod_sources: Vec<PodSourceState>,
    runtime_roots: RuntimeRoots,
    errors: u64,
}

/// Which runtimes' state directories exist on the node, looked at again
/// for each cgroup seen for the first time and otherwise once
/// `incomplete_retry` has passed since the last look. A node runs one
/// runtime or two: looking for a container's record under the others'
/// directories was a failed open each (seven in all, a few microseconds
/// apiece on a VM), for every container still unnamed, at each retry.
///
/// A container tried again is tried at least `incomplete_retry` after its
/// last try, so it sees a runtime whose directory appeared since; a new
/// container is looked up after a fresh look.
#[derive(Default)]
struct RuntimeRoots {
    looked_at: Option<Instant>,
    /// `<docker_root>/containers` exists.
    docker: bool,
    /// The OCI bundle roots that exist, in the configured order.
    oci: Vec<std::path::PathBuf>,
}

impl RuntimeRoots {
    fn look_if_due(&mut self, config: &MetadataConfig) {
        if self
            .looked_at
            .is_some_and(|t| t.elapsed() < config.incomplete_retry)
        {
            return;
        }
        self.looked_at = Some(Instant::now());
        self.docker = config.docker_root.join("containers").is_dir();
        self.oci = config
            .oci_bundle_roots
            .iter()
            .filter(|root| root.is_dir())
            .cloned()
            .collect();
    }
}

/// A pod list and whether its last fetch failed: a failure is logged at
/// `warn` once, then at `debug` until the source answers again.
struct PodSourceState {
    source: Box<dyn PodSource>,
    failing: bool,
}

impl PodSourceState {
    /// Fetches the list if due; a failure is counted in `errors` and logged
    /// (at `warn` the first time). Returns whether a new list was fetched.
    fn refresh(&mut self, errors: &mut u64) -> bool {
        match self.source.refresh_if_due() {
            Ok(fetched) => {
                if fetched && self.failing {
                    self.failing = false;
                    tracing::info!(source = %self.source.describe(), "pod list available again");
                }
                fetched
            }
            Err(error) => {
                *errors += 1;
                if self.failing {
                    tracing::debug!(%error, "pod list still unavailable");
                } else {
                    self.failing = true;
                    tracing::warn!(%error, "pod list unavailable; names and labels from the node's files only until it answers");
                }
                false
            }
        }
    }
}

struct Entry {
    metadata: Arc<ContainerMetadata>,
    expires: Instant,
    /// How long it was kept: an incomplete name is tried again after twice
    /// as long each time (a container whose pod was never written to the
    /// node's files must not cost a dozen failed opens every few seconds).
    kept: Duration,
}

/// A kubelet log directory read into a map, re-read on a miss when older
/// than `min_interval`: a container without logs must not cause a
/// directory listing per tick.
struct LogIndex<T> {
    map: HashMap<String, T>,
    read_at: Option<Instant>,
    min_interval: Duration,
}

impl<T> LogIndex<T> {
    fn new(min_interval: Duration) -> Self {
        Self {
            map: HashMap::new(),
            read_at: None,
            min_interval,
        }
    }

    fn get(&mut self, key: &str, read: impl FnOnce() -> HashMap<String, T>) -> Option<&T> {
        let stale = self
            .read_at
            .is_none_or(|t| t.elapsed() >= self.min_interval);
        if !self.map.contains_key(key) && stale {
            self.map = read();
            self.read_at = Some(Instant::now());
        }
        self.map.get(key)
    }
}

impl MetadataCache {
    /// An empty cache. Fails only when the kubelet client cannot be built
    /// (a malformed `kubelet_pods_url` is reported when first fetched).
    pub fn new(config: MetadataConfig) -> Result<Self, MetadataError> {
        let mut pod_sources: Vec<Box<dyn PodSource>> = Vec::new();
        if let Some(url) = &config.kubelet_pods_url {
            pod_sources.push(Box::new(KubeletPodSource::new(
                url.clone(),
                config.kubelet_timeout,
                config.kubelet_min_interval,
            )?));
        }
        if let Some(api) = &config.kube_api {
            pod_sources.push(Box::new(KubeApiPodSource::new(
                api.clone(),
                config.kubelet_timeout,
                config.kubelet_min_interval,
            )));
        }
        let pod_sources = pod_sources
            .into_iter()
            .map(|source| PodSourceState {
                source,
                failing: false,
            })
            .collect();
        Ok(Self {
            entries: HashMap::new(),
            pod_logs: LogIndex::new(config.log_index_min_interval),
            container_logs: LogIndex::new(config.log_index_min_interval),
            config,
            pod_sources,
            runtime_roots: RuntimeRoots::default(),
            errors: 0,
        })
    }

    /// The metadata of the cgroup at `path`, whose identity is
    /// `identity` (from [`crate::discovery::identify`]). Cheap when cached;
    /// otherwise reads a few small files. Never fails: what cannot be
    /// read is left empty, logged and counted in [`MetadataCache::errors`].
    pub fn resolve(
        &mut self,
        path: &CgroupPath,
        identity: &CgroupIdentity,
    ) -> Arc<ContainerMetadata> {
        let last_kept = match self.entries.get(path) {
            Some(entry) if entry.expires > Instant::now() => return Arc::clone(&entry.metadata),
            Some(entry) if entry.metadata.is_incomplete() => Some(entry.kept),
            _ => None,
        };
        if !self.entries.contains_key(path) {
            // A cgroup seen for the first time may be the first container of
            // a runtime started since the last look.
            self.runtime_roots.looked_at = None;
        }
        let built = self.build(path, identity);
        let kept = match (built.is_incomplete(), last_kept) {
            (false, _) => self.config.refresh_interval,
            (true, None) => self.config.incomplete_retry,
            (true, Some(last)) => (last * 2).clamp(
                self.config.incomplete_retry,
                self.config
                    .refresh_interval
                    .max(self.config.incomplete_retry),
            ),
        };
        // The same names read again keep their `Arc`: the collector tells
        // a change from a re-read by the pointer.
        let metadata = match self.entries.get(path) {
            Some(entry) if *entry.metadata == built => Arc::clone(&entry.metadata),
            _ => Arc::new(built),
        };
        self.entries.insert(
            path.clone(),
            Entry {
                metadata: Arc::clone(&metadata),
                expires: Instant::now() + kept,
                kept,
            },
        );
        metadata
    }

    /// How long the names of `path` are kept since they were last read.
    #[cfg(test)]
    pub(crate) fn kept_for(&self, path: &CgroupPath) -> Option<Duration> {
        self.entries.get(path).map(|e| e.kept)
    }

    /// Whether Docker's records, and how many OCI bundle roots, are looked
    /// in (as of the last look at the node's runtime directories).
    #[cfg(test)]
    pub(crate) fn runtimes_looked_in(&self) -> (bool, usize) {
        (self.runtime_roots.docker, self.runtime_roots.oci.len())
    }

    /// Drops the cached metadata of `path` (call on its discovery event).
    pub fn forget(&mut self, path: &CgroupPath) {
        self.entries.remove(path);
    }

    /// The configured pod lists, each fetched again first when its last
    /// fetch is older than the sources' minimum interval (for pod status:
    /// restart counts, namespaces). Empty without a pod source.
    pub fn pod_lists(&mut self) -> Vec<&super::kubelet_api::KubeletPods> {
        for state in &mut self.pod_sources {
            state.refresh(&mut self.errors);
        }
        self.pod_sources
            .iter()
            .map(|s| s.source.snapshot())
            .collect()
    }

    /// Whether a pod list (kubelet or API server) is configured.
    pub fn has_pod_source(&self) -> bool {
        !self.pod_sources.is_empty()
    }

    /// How many metadata sources failed to read or parse so far.
    pub fn errors(&self) -> u64 {
        self.errors
    }

    /// The number of cgroups cached.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn build(&mut self, path: &CgroupPath, identity: &CgroupIdentity) -> ContainerMetadata {
        let mut meta = match identity.kind {
            CgroupKind::Root => {
                let mut root = ContainerMetadata::named("/", CgroupKind::Root);
                // Host interfaces and host filesystems, as cAdvisor.
                root.pid = Some(1);
                return root;
            }
            CgroupKind::SystemdUnit => ContainerMetadata::named(
                identity.unit.clone().unwrap_or_else(|| path.to_string()),
                CgroupKind::SystemdUnit,
            ),
            kind => ContainerMetadata::named(path.as_str(), kind),
        };
        meta.pod_uid = identity.pod_uid.clone().unwrap_or_default();
        meta.runtime = identity.runtime;

        if let (CgroupKind::Container, Some(id)) = (identity.kind, &identity.container_id) {
            meta.name = id.clone();
            meta.container_id = Some(id.clone());
            self.apply_runtime_record(&mut meta, id);
            self.apply_container_log(&mut meta, id);
        }
        if !meta.pod_uid.is_empty() {
            self.apply_pod_log(&mut meta);
        }
        self.apply_kubelet(&mut meta);

        if let Some(pid) = meta.pid
            && !self.config.proc_root.join(pid.to_string()).exists()
        {
            // A stale record (the runtime died without updating it).
            tracing::debug!(cgroup = %path, pid, "recorded pid is not running");
            meta.pid = None;
        }
        meta
    }

    fn note_error(&mut self, error: &MetadataError) {
        self.errors += 1;
        tracing::warn!(%error, "container metadata source failed");
    }

    /// Docker's record, else an OCI bundle.
    fn apply_runtime_record(&mut self, meta: &mut ContainerMetadata, id: &str) {
        self.runtime_roots.look_if_due(&self.config);
        let docker = match self.runtime_roots.docker {
            true => docker::read_container(&self.config.docker_root, id),
            false => Ok(None),
        };
        match docker {
            Ok(Some(d)) => {
                meta.runtime_record_found = true;
                meta.runtime = Some(Runtime::Docker);
                meta.shares_another_netns = d.shares_another_netns();
                if !d.name.is_empty() {
                    meta.name = d.name;
                }
                meta.image = d.image;
                meta.pid = d.pid;
                let label = |k: &str| d.labels.get(k).cloned().unwrap_or_default();
                let container = label("io.kubernetes.container.name");
                meta.is_pod_sandbox =
                    container == "POD" || label("io.kubernetes.docker.type") == "podsandbox";
                if !meta.is_pod_sandbox {
                    meta.container = container;
                }
                fill(&mut meta.pod, label("io.kubernetes.pod.name"));
                fill(&mut meta.namespace, label("io.kubernetes.pod.namespace"));
                fill(&mut meta.pod_uid, label("io.kubernetes.pod.uid"));
                meta.labels = d.labels;
                return;
            }
            Ok(None) => {}
            Err(e) => {
                self.note_error(&e);
                return;
            }
        }
        match oci::read_container(&self.runtime_roots.oci, id) {
            Ok(Some(o)) => {
                meta.runtime_record_found = true;
                let is_crio = o
                    .annotations
                    .contains_key("io.kubernetes.cri-o.ContainerType");
                if meta.runtime.is_none() || meta.runtime == Some(Runtime::Containerd) {
                    meta.runtime = Some(if is_crio {
                        Runtime::CriO
                    } else {
                        Runtime::Containerd
                    });
                }
                meta.is_pod_sandbox = o.is_sandbox;
                meta.pid = o.pid;
                fill(&mut meta.image, o.image.unwrap_or_default());
                fill(&mut meta.pod, o.pod.unwrap_or_default());
                fill(&mut meta.namespace, o.namespace.unwrap_or_default());
                fill(&mut meta.pod_uid, o.pod_uid.unwrap_or_default());
                fill(&mut meta.container, o.container.unwrap_or_default());
                // The labels cAdvisor shows for CRI containers.
                for (key, value) in [
                    ("io.kubernetes.pod.name", &meta.pod),
                    ("io.kubernetes.pod.namespace", &meta.namespace),
                    ("io.kubernetes.pod.uid", &meta.pod_uid),
                    ("io.kubernetes.container.name", &meta.container),
                ] {
                    if !value.is_empty() {
                        meta.labels.insert(key.to_owned(), value.clone());
                    }
                }
                if !is_crio && !meta.pod_uid.is_empty() {
                    let kind = if o.is_sandbox { "sandbox" } else { "container" };
                    meta.labels
                        .insert("io.cri-containerd.kind".to_owned(), kind.to_owned());
                }
            }
            Ok(None) => {}
            Err(e) => self.note_error(&e),
        }
    }

    fn apply_container_log(&mut self, meta: &mut ContainerMetadata, id: &str) {
        if !meta.pod.is_empty() && !meta.namespace.is_empty() && !meta.container.is_empty() {
            return;
        }
        let root = &self.config.container_log_root;
        if let Some(log) = self
            .container_logs
            .get(id, || kubelet_logs::read_container_log_root(root))
        {
            fill(&mut meta.pod, log.pod.clone());
            fill(&mut meta.namespace, log.namespace.clone());
            fill(&mut meta.container, log.container.clone());
        }
    }

    fn apply_pod_log(&mut self, meta: &mut ContainerMetadata) {
        if !meta.pod.is_empty() && !meta.namespace.is_empty() {
            return;
        }
        let root = &self.config.pod_log_root;
        if let Some(pod) = self
            .pod_logs
            .get(&meta.pod_uid, || kubelet_logs::read_pod_log_root(root))
        {
            fill(&mut meta.pod, pod.name.clone());
            fill(&mut meta.namespace, pod.namespace.clone());
        }
    }

    /// Pod labels for pods and their containers, and whatever is still
    /// missing for containers,
    /// from the kubelet's and the API server's pod lists (in that order:
    /// the first that knows a value wins).
    fn apply_kubelet(&mut self, meta: &mut ContainerMetadata) {
        let wanted = match meta.kind {
            CgroupKind::Pod => !meta.pod_uid.is_empty(),
            // Any pod's container: for names still missing and for its
            // pod's labels (CRI runtimes do not copy them to containers).
            CgroupKind::Container => !meta.pod_uid.is_empty() || meta.image.is_empty(),
            _ => false,
        };
        if !wanted {
            return;
        }
        for state in &mut self.pod_sources {
            let known = |k: &dyn PodSource| match meta.kind {
                CgroupKind::Pod => k.snapshot().pods.contains_key(&meta.pod_uid),
                _ => meta
                    .container_id
                    .as_ref()
                    .is_some_and(|id| k.snapshot().containers.contains_key(id)),
            };
            if !known(state.source.as_ref()) {
                state.refresh(&mut self.errors);
            }
            let snapshot = state.source.snapshot();
            if let Some(c) = meta
                .container_id
                .as_ref()
                .and_then(|id| snapshot.containers.get(id))
            {
                fill(&mut meta.pod_uid, c.pod_uid.clone());
                fill(&mut meta.container, c.name.clone());
                fill(&mut meta.image, c.image.clone());
            }
            if let Some(pod) = snapshot.pods.get(&meta.pod_uid) {
                fill(&mut meta.pod, pod.name.clone());
                fill(&mut meta.namespace, pod.namespace.clone());
                match meta.kind {
                    CgroupKind::Pod if meta.labels.is_empty() => meta.labels = pod.labels.clone(),
                    // A container carries its pod's labels under its own
                    // runtime labels (which win on a clash).
                    CgroupKind::Container => {
                        for (k, v) in &pod.labels {
                            meta.labels.entry(k.clone()).or_insert_with(|| v.clone());
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Sets `field` to `value` unless it already holds something: the first
/// source that knows a value wins.
fn fill(field: &mut String, value: String) {
    if field.is_empty() {
        *field = value;
    }
}
