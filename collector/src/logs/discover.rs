//! Finding the files to tail and naming what wrote them.
//!
//! Container logs come from three places, which may name the same file
//! (they are merged by device and inode):
//! - `<container_log_root>/<pod>_<namespace>_<container>-<id>.log`
//!   (kubelet's symlinks): pod, namespace, container name and container id;
//! - `<pod_log_root>/<namespace>_<pod>_<uid>/<container>/<n>.log`: the
//!   files themselves, with the pod uid;
//! - `<docker_root>/containers/<id>/<id>-json.log` (Docker's json-file).
//!
//! Rotated siblings (`0.log.20261126-…`, `…-json.log.1`, `.gz`) are not
//! matched: a rotated file is followed through its open descriptor, never
//! found again under its new name (which would read it twice). Plain files
//! come from the configured paths and globs.
//!
//! [`MetaIndex`] adds what the metadata layer knows of a container (image,
//! pod labels, names the path does not carry) from the agent's latest
//! snapshot, or from Docker's record for a Docker container not seen yet.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use regex::Regex;

use super::file_id::FileKey;
use super::format::Stream;
use super::labels::{StreamLabels, sanitize_label_name};
use crate::discovery::runtime::is_container_id;
use crate::metadata::kubelet_logs::{parse_container_log_name, parse_pod_log_dir};
use crate::snapshot::{ContainerInfo, Snapshot};

/// The `job` label of container logs.
pub const CONTAINERS_JOB: &str = "osprey/containers";

/// Where to look.
#[derive(Debug, Clone, Default)]
pub struct Roots {
    /// The kubelet's container log symlinks; `None`: not looked at.
    pub container_log_root: Option<PathBuf>,
    /// The kubelet's pod log directories.
    pub pod_log_root: Option<PathBuf>,
    /// Docker's data root (its `containers/` directory is listed).
    pub docker_root: Option<PathBuf>,
    /// Plain sources: job name and compiled globs.
    pub plain: Vec<PlainSource>,
}

/// A configured set of plain files.
#[derive(Debug, Clone)]
pub struct PlainSource {
    /// The `job` label.
    pub job: String,
    /// The paths/globs.
    pub patterns: Vec<String>,
}

/// What a container's log path says about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerRef {
    /// Kubernetes namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Pod uid.
    pub pod_uid: String,
    /// Container name.
    pub container: String,
    /// 64-hex container id.
    pub container_id: String,
    /// Found in Docker's directory.
    pub docker: bool,
}

impl ContainerRef {
    fn merge(&mut self, other: &ContainerRef) {
        let fill = |a: &mut String, b: &String| {
            if a.is_empty() {
                a.clone_from(b);
            }
        };
        fill(&mut self.namespace, &other.namespace);
        fill(&mut self.pod, &other.pod);
        fill(&mut self.pod_uid, &other.pod_uid);
        fill(&mut self.container, &other.container);
        fill(&mut self.container_id, &other.container_id);
        self.docker |= other.docker;
    }
}

/// Which source a file belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A container's log.
    Container(ContainerRef),
    /// A plain file of source number `.0` in [`Roots::plain`].
    Plain(usize),
}

/// A file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    /// The path it is read under (and reported as `filename`).
    pub path: PathBuf,
    /// Its identity (of the target, for symlinks).
    pub key: FileKey,
    /// What wrote it.
    pub origin: Origin,
}

/// Lists every file to tail now.
pub fn discover(roots: &Roots) -> Vec<Discovered> {
    // Ordered by key so the result is stable; pods paths win as `filename`
    // (the real file), then Docker's, then the symlinks.
    let mut found: BTreeMap<FileKey, (u8, Discovered)> = BTreeMap::new();
    let mut add = |rank: u8, path: PathBuf, origin: Origin| {
        let Ok(meta) = fs::metadata(&path) else {
            return;
        };
        if !meta.is_file() {
            return;
        }
        let key = FileKey::of(&meta);
        match found.get_mut(&key) {
            Some((r, d)) => {
                if let (Origin::Container(a), Origin::Container(b)) = (&mut d.origin, &origin) {
                    a.merge(b);
                }
                if rank < *r {
                    *r = rank;
                    d.path = path;
                }
            }
            None => {
                found.insert(key, (rank, Discovered { path, key, origin }));
            }
        }
    };
    if let Some(root) = &roots.pod_log_root {
        for (dir, ns, pod, uid) in list_dir(root).filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_owned();
            let (ns, pod, uid) = parse_pod_log_dir(&name)?;
            Some((p.clone(), ns.to_owned(), pod.to_owned(), uid.to_owned()))
        }) {
            for cdir in list_dir(&dir) {
                let Some(container) = cdir.file_name().and_then(|n| n.to_str()).map(str::to_owned)
                else {
                    continue;
                };
                for file in list_dir(&cdir) {
                    if file.extension().is_some_and(|e| e == "log") {
                        add(
                            0,
                            file,
                            Origin::Container(ContainerRef {
                                namespace: ns.clone(),
                                pod: pod.clone(),
                                pod_uid: uid.clone(),
                                container: container.clone(),
                                ..ContainerRef::default()
                            }),
                        );
                    }
                }
            }
        }
    }
    if let Some(root) = &roots.docker_root {
        for dir in list_dir(&root.join("containers")) {
            let Some(id) = dir.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            if !is_container_id(&id) {
                continue;
            }
            let file = dir.join(format!("{id}-json.log"));
            add(
                1,
                file,
                Origin::Container(ContainerRef {
                    container_id: id,
                    docker: true,
                    ..ContainerRef::default()
                }),
            );
        }
    }
    if let Some(root) = &roots.container_log_root {
        for file in list_dir(root) {
            let Some(name) = file.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if let Some((id, log)) = parse_container_log_name(name) {
                let r = ContainerRef {
                    namespace: log.namespace,
                    pod: log.pod,
                    container: log.container,
                    container_id: id.to_owned(),
                    ..ContainerRef::default()
                };
                add(2, file, Origin::Container(r));
            }
        }
    }
    for (i, source) in roots.plain.iter().enumerate() {
        for pattern in &source.patterns {
            for path in expand_glob(pattern) {
                add(3, path, Origin::Plain(i));
            }
        }
    }
    found.into_values().map(|(_, d)| d).collect()
}

fn list_dir(dir: &Path) -> impl Iterator<Item = PathBuf> {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .map(|it| it.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    entries.sort();
    entries.into_iter()
}

/// The existing paths matching `pattern`, where `*`, `?` and `[…]` match
/// within one path component. A pattern without them is returned as is
/// when the file exists.
pub fn expand_glob(pattern: &str) -> Vec<PathBuf> {
    let is_wild = |c: &str| c.contains(['*', '?', '[']);
    let mut bases = vec![PathBuf::from(if pattern.starts_with('/') {
        "/"
    } else {
        "."
    })];
    for component in pattern.split('/').filter(|c| !c.is_empty()) {
        let mut next = Vec::new();
        if is_wild(component) {
            let Some(re) = glob_regex(component) else {
                return Vec::new();
            };
            for base in &bases {
                for p in list_dir(base) {
                    if p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| re.is_match(n) && !n.starts_with('.'))
                    {
                        next.push(p);
                    }
                }
            }
        } else {
            next = bases.iter().map(|b| b.join(component)).collect();
        }
        bases = next;
    }
    bases.retain(|p| p.exists());
    bases
}

fn glob_regex(component: &str) -> Option<Regex> {
    let mut re = String::from("^");
    let mut chars = component.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            '[' => {
                re.push('[');
                if chars.peek() == Some(&'!') {
                    chars.next();
                    re.push('^');
                }
                for c in chars.by_ref() {
                    if c == ']' {
                        break;
                    }
                    if c == '\\' || c == '[' {
                        re.push('\\');
                    }
                    re.push(c);
                }
                re.push(']');
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    Regex::new(&re).ok()
}

/// Container metadata from the agent's latest snapshot, by container id and
/// by (pod uid, container name).
#[derive(Debug, Default)]
pub struct MetaIndex {
    by_id: HashMap<String, Arc<ContainerInfo>>,
    by_pod_container: HashMap<(String, String), Arc<ContainerInfo>>,
    /// The snapshot's timestamp, to rebuild only when it changes.
    pub timestamp_ms: i64,
}

impl MetaIndex {
    /// Indexes a snapshot's containers.
    pub fn from_snapshot(snap: &Snapshot) -> Self {
        let mut index = Self {
            timestamp_ms: snap.timestamp_ms,
            ..Self::default()
        };
        for c in &snap.containers {
            let info = &c.info;
            if let Some(id) = &info.container_id {
                index.by_id.insert(id.clone(), info.clone());
            }
            if !info.pod_uid.is_empty() && !info.container.is_empty() {
                index
                    .by_pod_container
                    .insert((info.pod_uid.clone(), info.container.clone()), info.clone());
            }
        }
        index
    }

    fn find(&self, r: &ContainerRef) -> Option<&ContainerInfo> {
        if !r.container_id.is_empty()
            && let Some(i) = self.by_id.get(&r.container_id)
        {
            return Some(i);
        }
        self.by_pod_container
            .get(&(r.pod_uid.clone(), r.container.clone()))
            .map(|i| &**i)
    }
}

/// What labels a file's lines carry, per stream.
#[derive(Debug, Clone)]
pub struct FileLabels {
    /// Index by [`Stream::index`].
    pub by_stream: [Arc<StreamLabels>; 3],
    /// Whether the container's image (and so its record) is still unknown:
    /// worth looking again later.
    pub incomplete: bool,
}

/// Builds the label sets of a file.
pub fn file_labels(
    found: &Discovered,
    node: &str,
    plain_jobs: &[PlainSource],
    index: &MetaIndex,
    docker_root: Option<&Path>,
) -> FileLabels {
    let mut base: Vec<(String, String)> = vec![
        ("node".into(), node.to_owned()),
        ("filename".into(), found.path.to_string_lossy().into_owned()),
    ];
    let mut incomplete = false;
    match &found.origin {
        Origin::Plain(i) => {
            base.push((
                "job".into(),
                plain_jobs
                    .get(*i)
                    .map(|s| s.job.clone())
                    .unwrap_or_default(),
            ));
        }
        Origin::Container(r) => {
            let mut r = r.clone();
            let mut image = String::new();
            let mut labels = BTreeMap::new();
            if let Some(info) = index.find(&r) {
                let known = ContainerRef {
                    namespace: info.namespace.clone(),
                    pod: info.pod.clone(),
                    pod_uid: info.pod_uid.clone(),
                    container: info.container.clone(),
                    container_id: info.container_id.clone().unwrap_or_default(),
                    docker: false,
                };
                r.merge(&known);
                if r.container.is_empty() && r.pod.is_empty() {
                    r.container.clone_from(&info.name);
                }
                image.clone_from(&info.image);
                labels.clone_from(&info.labels);
            } else if r.docker
                && let Some(root) = docker_root
                && let Ok(Some(d)) = crate::metadata::docker::read_container(root, &r.container_id)
            {
                let l = |k: &str| d.labels.get(k).cloned().unwrap_or_default();
                let known = ContainerRef {
                    namespace: l("io.kubernetes.pod.namespace"),
                    pod: l("io.kubernetes.pod.name"),
                    pod_uid: l("io.kubernetes.pod.uid"),
                    container: l("io.kubernetes.container.name"),
                    ..ContainerRef::default()
                };
                r.merge(&known);
                if r.container.is_empty() {
                    r.container = d.name.clone();
                }
                image = d.image.clone();
                labels = d.labels.clone();
            }
            incomplete = image.is_empty();
            base.extend([
                ("job".into(), CONTAINERS_JOB.into()),
                ("namespace".into(), r.namespace.clone()),
                ("pod".into(), r.pod.clone()),
                ("pod_uid".into(), r.pod_uid.clone()),
                ("container".into(), r.container.clone()),
                ("image".into(), image),
            ]);
            if !r.pod.is_empty() {
                for (k, v) in &labels {
                    if is_runtime_label(k) {
                        continue;
                    }
                    base.push((format!("label_{}", sanitize_label_name(k)), v.clone()));
                }
            }
        }
    }
    let with_stream = |s: Stream| {
        let mut pairs = base.clone();
        if let Some(l) = s.label() {
            pairs.push(("stream".into(), l.into()));
        }
        StreamLabels::new(pairs)
    };
    FileLabels {
        by_stream: [
            with_stream(Stream::Stdout),
            with_stream(Stream::Stderr),
            with_stream(Stream::Unknown),
        ],
        incomplete,
    }
}

/// Labels runtimes add themselves (not the pod's own labels).
fn is_runtime_label(k: &str) -> bool {
    [
        "io.kubernetes.",
        "io.cri-containerd.",
        "org.opencontainers.",
        "annotation.",
    ]
    .iter()
    .any(|p| k.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f2a5e4d2f1b0e3c7d9a8b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e";

    #[test]
    fn finds_kubelet_docker_and_plain_files_once_each() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let pod_dir = root.join("pods/shop_web-0_uid-1/nginx");
        fs::create_dir_all(&pod_dir).unwrap();
        fs::write(pod_dir.join("0.log"), "x\n").unwrap();
        fs::write(pod_dir.join("0.log.20261126-230000"), "old\n").unwrap();
        fs::create_dir_all(root.join("containers")).unwrap();
        std::os::unix::fs::symlink(
            pod_dir.join("0.log"),
            root.join(format!("containers/web-0_shop_nginx-{ID}.log")),
        )
        .unwrap();
        let docker = root.join(format!("docker/containers/{ID}"));
        fs::create_dir_all(&docker).unwrap();
        fs::write(docker.join(format!("{ID}-json.log")), "{}\n").unwrap();
        fs::write(docker.join(format!("{ID}-json.log.1")), "{}\n").unwrap();
        fs::create_dir_all(root.join("var")).unwrap();
        fs::write(root.join("var/syslog"), "s\n").unwrap();
        fs::write(root.join("var/a.log"), "a\n").unwrap();
        fs::write(root.join("var/b.txt"), "b\n").unwrap();
        let roots = Roots {
            container_log_root: Some(root.join("containers")),
            pod_log_root: Some(root.join("pods")),
            docker_root: Some(root.join("docker")),
            plain: vec![PlainSource {
                job: "node".into(),
                patterns: vec![
                    format!("{}/var/syslog", root.display()),
                    format!("{}/var/*.log", root.display()),
                ],
            }],
        };
        let found = discover(&roots);
        let paths: Vec<_> = found
            .iter()
            .map(|d| {
                d.path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        let mut sorted = paths.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            [
                format!("docker/containers/{ID}/{ID}-json.log"),
                "pods/shop_web-0_uid-1/nginx/0.log".into(),
                "var/a.log".into(),
                "var/syslog".into(),
            ]
        );
        let pod_file = found
            .iter()
            .find(|d| d.path.ends_with("nginx/0.log"))
            .unwrap();
        assert_eq!(
            pod_file.origin,
            Origin::Container(ContainerRef {
                namespace: "shop".into(),
                pod: "web-0".into(),
                pod_uid: "uid-1".into(),
                container: "nginx".into(),
                container_id: ID.into(),
                docker: false,
            }),
            "the symlink's id merged into the pod file"
        );
        let labels = file_labels(pod_file, "n1", &roots.plain, &MetaIndex::default(), None);
        assert_eq!(
            labels.by_stream[1].rendered(),
            format!(
                r#"{{container="nginx", filename="{}", job="osprey/containers", namespace="shop", node="n1", pod="web-0", pod_uid="uid-1", stream="stderr"}}"#,
                pod_file.path.display()
            )
        );
        assert!(labels.incomplete);
    }

    #[test]
    fn metadata_from_the_snapshot_adds_image_and_pod_labels() {
        let mut info = ContainerInfo {
            container_id: Some(ID.into()),
            image: "nginx:1.25".into(),
            namespace: "shop".into(),
            pod: "web-0".into(),
            pod_uid: "uid-1".into(),
            container: "nginx".into(),
            ..ContainerInfo::default()
        };
        info.labels
            .insert("app.kubernetes.io/name".into(), "web".into());
        info.labels
            .insert("io.kubernetes.pod.name".into(), "web-0".into());
        let snap = Snapshot {
            timestamp_ms: 5,
            containers: vec![crate::snapshot::ContainerSample {
                info: Arc::new(info),
                stats: Default::default(),
            }],
            ..Snapshot::default()
        };
        let index = MetaIndex::from_snapshot(&snap);
        let found = Discovered {
            path: "/var/log/containers/x.log".into(),
            key: FileKey { dev: 1, inode: 2 },
            origin: Origin::Container(ContainerRef {
                container_id: ID.into(),
                ..ContainerRef::default()
            }),
        };
        let labels = file_labels(&found, "n1", &[], &index, None);
        let l = &labels.by_stream[0];
        assert_eq!(l.get("image"), Some("nginx:1.25"));
        assert_eq!(l.get("pod"), Some("web-0"));
        assert_eq!(l.get("label_app_kubernetes_io_name"), Some("web"));
        assert_eq!(l.get("label_io_kubernetes_pod_name"), None);
        assert_eq!(l.get("stream"), Some("stdout"));
        assert!(!labels.incomplete);
    }

    #[test]
    fn globs_match_within_a_component() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["a.log", "b.log", "c.txt", ".hidden.log"] {
            fs::write(dir.path().join(n), "").unwrap();
        }
        let got = expand_glob(&format!("{}/[ab].log", dir.path().display()));
        assert_eq!(got.len(), 2);
        let got = expand_glob(&format!("{}/*.log", dir.path().display()));
        assert_eq!(got.len(), 2, "hidden files are not matched");
        assert!(expand_glob(&format!("{}/nope.log", dir.path().display())).is_empty());
    }
}
