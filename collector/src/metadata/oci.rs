//! What containerd and CRI-O leave on disk for a running container: the
//! OCI bundle's `config.json` (whose annotations name the pod, container
//! and image under Kubernetes) and the init pid file.
//!
//! * containerd: `/run/containerd/io.containerd.runtime.v2.task/<ns>/<id>/`
//!   with `config.json` and `init.pid`; CRI annotations
//!   `io.kubernetes.cri.{container-type,sandbox-name,sandbox-namespace,
//!   sandbox-uid,container-name,image-name}`.
//! * CRI-O: `/run/containers/storage/overlay-containers/<id>/userdata/`
//!   with `config.json` and `pidfile`; annotations
//!   `io.kubernetes.cri-o.{ContainerType,ImageName}` and
//!   `io.kubernetes.{pod.name,pod.namespace,pod.uid,container.name}`.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::MetadataError;

/// What the agent uses of an OCI bundle.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OciContainer {
    /// The bundle directory it was read from.
    pub bundle: PathBuf,
    /// Kubernetes pod name.
    pub pod: Option<String>,
    /// Kubernetes namespace.
    pub namespace: Option<String>,
    /// Kubernetes pod uid.
    pub pod_uid: Option<String>,
    /// Kubernetes container name (none for a sandbox).
    pub container: Option<String>,
    /// Image reference.
    pub image: Option<String>,
    /// Whether this is the pod's sandbox (pause) container.
    pub is_sandbox: bool,
    /// The init process, from the pid file.
    pub pid: Option<u32>,
    /// The raw annotations.
    pub annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Spec {
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
}

/// Looks for container `id`'s bundle below each of `roots`, as
/// `<root>/<id>` (containerd) or `<root>/<id>/userdata` (CRI-O).
/// `Ok(None)` when there is none.
pub fn read_container(roots: &[PathBuf], id: &str) -> Result<Option<OciContainer>, MetadataError> {
    for root in roots {
        for bundle in [root.join(id), root.join(id).join("userdata")] {
            if let Some(found) = read_bundle(&bundle)? {
                return Ok(Some(found));
            }
        }
    }
    Ok(None)
}

fn read_bundle(bundle: &Path) -> Result<Option<OciContainer>, MetadataError> {
    let config_path = bundle.join("config.json");
    let text = match fs::read(&config_path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(MetadataError::Read {
                path: config_path,
                source,
            });
        }
    };
    let spec: Spec = serde_json::from_slice(&text).map_err(|source| MetadataError::Parse {
        path: config_path,
        source,
    })?;
    let annotations = spec.annotations.unwrap_or_default();
    let get = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| annotations.get(*k))
            .filter(|v| !v.is_empty())
            .cloned()
    };
    let kind = get(&[
        "io.kubernetes.cri.container-type",
        "io.kubernetes.cri-o.ContainerType",
    ]);
    let pid = ["init.pid", "pidfile"]
        .iter()
        .find_map(|f| fs::read_to_string(bundle.join(f)).ok())
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|pid| *pid > 0);
    Ok(Some(OciContainer {
        bundle: bundle.to_path_buf(),
        pod: get(&["io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name"]),
        namespace: get(&[
            "io.kubernetes.cri.sandbox-namespace",
            "io.kubernetes.pod.namespace",
        ]),
        pod_uid: get(&["io.kubernetes.cri.sandbox-uid", "io.kubernetes.pod.uid"]),
        container: get(&[
            "io.kubernetes.cri.container-name",
            "io.kubernetes.container.name",
        ])
        .filter(|c| c != "POD"),
        image: get(&[
            "io.kubernetes.cri.image-name",
            "io.kubernetes.cri-o.ImageName",
        ]),
        is_sandbox: kind.as_deref() == Some("sandbox"),
        pid,
        annotations,
    }))
}
