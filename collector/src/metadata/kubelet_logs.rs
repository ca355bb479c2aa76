//! The kubelet's log directories, which name pods and containers without
//! asking anyone:
//!
//! * `<pod-log-root>/<namespace>_<pod>_<uid>/<container>/` (default root
//!   `/var/log/pods`): pod uid → namespace, pod name and container names;
//! * `<container-log-root>/<pod>_<namespace>_<container>-<id>.log`
//!   (default `/var/log/containers`, symlinks into the former): container
//!   id → pod, namespace and container name.
//!
//! Kubernetes names (DNS labels and subdomains) cannot contain `_`, so
//! splitting on it is unambiguous.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use crate::discovery::runtime::is_container_id;

/// A pod as its log directory names it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodLogDir {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
    /// Names of the containers that have logged (sorted).
    pub containers: Vec<String>,
}

/// A container as its log symlink names it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerLog {
    /// The pod's name.
    pub pod: String,
    /// The pod's namespace.
    pub namespace: String,
    /// The container's name.
    pub container: String,
}

/// Pods by uid, from the pod log root. A missing or unreadable root gives
/// an empty map (not a Kubernetes node, or logs elsewhere).
pub fn read_pod_log_root(root: &Path) -> HashMap<String, PodLogDir> {
    let Ok(entries) = fs::read_dir(root) else {
        return HashMap::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let dir_name = entry.file_name().into_string().ok()?;
            let (namespace, name, uid) = parse_pod_log_dir(&dir_name)?;
            let mut containers: Vec<String> = fs::read_dir(entry.path())
                .map(|it| {
                    it.filter_map(Result::ok)
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                        .filter_map(|e| e.file_name().into_string().ok())
                        .collect()
                })
                .unwrap_or_default();
            containers.sort();
            Some((
                uid.to_owned(),
                PodLogDir {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                    containers,
                },
            ))
        })
        .collect()
}

/// Containers by id, from the container log root. A missing or
/// unreadable root gives an empty map.
pub fn read_container_log_root(root: &Path) -> HashMap<String, ContainerLog> {
    let Ok(entries) = fs::read_dir(root) else {
        return HashMap::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let file_name = entry.file_name().into_string().ok()?;
            let (id, log) = parse_container_log_name(&file_name)?;
            Some((id.to_owned(), log))
        })
        .collect()
}

/// `<namespace>_<pod>_<uid>` → its three parts.
pub fn parse_pod_log_dir(name: &str) -> Option<(&str, &str, &str)> {
    let mut parts = name.splitn(3, '_');
    let (namespace, pod, uid) = (parts.next()?, parts.next()?, parts.next()?);
    (!namespace.is_empty() && !pod.is_empty() && !uid.is_empty() && !uid.contains('_'))
        .then_some((namespace, pod, uid))
}

/// `<pod>_<namespace>_<container>-<64hex id>.log` → the id and names.
pub fn parse_container_log_name(name: &str) -> Option<(&str, ContainerLog)> {
    let stem = name.strip_suffix(".log")?;
    let (rest, id) = stem.rsplit_once('-')?;
    if !is_container_id(id) {
        return None;
    }
    let mut parts = rest.splitn(3, '_');
    let (pod, namespace, container) = (parts.next()?, parts.next()?, parts.next()?);
    if pod.is_empty() || namespace.is_empty() || container.is_empty() || container.contains('_') {
        return None;
    }
    Some((
        id,
        ContainerLog {
            pod: pod.to_owned(),
            namespace: namespace.to_owned(),
            container: container.to_owned(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f2a5e4d2f1b0e3c7d9a8b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e";

    #[test]
    fn parses_kubelet_names() {
        assert_eq!(
            parse_pod_log_dir(
                "kube-system_coredns-5d78c9869d-x2x7p_0b4e3c9a-1f2d-4e5a-9b8c-7d6e5f4a3b2c"
            ),
            Some((
                "kube-system",
                "coredns-5d78c9869d-x2x7p",
                "0b4e3c9a-1f2d-4e5a-9b8c-7d6e5f4a3b2c"
            ))
        );
        assert_eq!(parse_pod_log_dir("no-underscores"), None);
        assert_eq!(parse_pod_log_dir("a__uid"), None);

        let name = format!("web-0_shop_nginx-sidecar-{ID}.log");
        let (id, log) = parse_container_log_name(&name).unwrap();
        assert_eq!(id, ID);
        assert_eq!(
            log,
            ContainerLog {
                pod: "web-0".into(),
                namespace: "shop".into(),
                container: "nginx-sidecar".into()
            }
        );
        assert!(parse_container_log_name(&format!("web-0_shop_nginx-{}.log", &ID[1..])).is_none());
        assert!(parse_container_log_name(&format!("web-0_nginx-{ID}.log")).is_none());
        assert!(parse_container_log_name(&format!("web-0_shop_nginx-{ID}.log.1")).is_none());
    }

    #[test]
    fn missing_roots_are_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_pod_log_root(&dir.path().join("nope")).is_empty());
        assert!(read_container_log_root(&dir.path().join("nope")).is_empty());
    }
}
