//! Recognises what a cgroup is from its path alone: the root, a
//! container (and of which runtime), a Kubernetes pod or QoS class, a
//! systemd unit, or a plain cgroup.
//!
//! The forms recognised (cAdvisor §5.2; `<id>` is 64 lower-case hex):
//!
//! | path (last components) | kind | runtime |
//! |---|---|---|
//! | `/` | Root | – |
//! | `/docker/<id>`, `…/docker-<id>.scope` | Container | Docker |
//! | `…/cri-containerd-<id>.scope`, `/containerd/…/<id>`, `/k8s.io/<id>` | Container | containerd |
//! | `…/crio-<id>.scope`, `…/crio-<id>` (not `crio-conmon-<id>…`) | Container | CRI-O |
//! | `…/libpod-<id>.scope` (not `libpod-conmon-<id>…`) | Container | Podman |
//! | `/kubepods…/pod<uid>/<id>` (cgroupfs driver) | Container | containerd (see below) |
//! | any other `<id>` leaf | Container | unknown |
//! | `kubepods[-<qos>]-pod<uid_with_underscores>.slice`, `kubepods[/<qos>]/pod<uid>` | Pod | – |
//! | `kubepods.slice`, `kubepods-<qos>.slice`, `/kubepods`, `/kubepods/<qos>` | QosClass | – |
//! | `….service`, `….slice`, `….scope`, `….socket`, `….swap`, `….mount` | SystemdUnit | – |
//! | anything else | Raw | – |
//!
//! A bare id below `kubepods` is attributed to containerd, the common
//! runtime with the cgroupfs driver; the path cannot tell containerd from
//! cri-dockerd, so [`crate::metadata`] looks at Docker's files for every
//! id regardless of this guess.
//!
//! Containers and pods below `kubepods` also carry the pod uid and QoS
//! class of their ancestors. The `kubepods` tree is recognised below other
//! components too (`/node-1/kubepods/…`): where a Kubernetes node is itself
//! a container (kind, k3d) and the agent sees its cgroups from the host.

use std::fmt;

/// What kind of thing a cgroup is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CgroupKind {
    /// The root cgroup `/`: machine totals.
    Root,
    /// A container of some runtime.
    Container,
    /// A Kubernetes pod's cgroup (parent of its containers).
    Pod,
    /// A Kubernetes QoS-class cgroup, or the `kubepods` parent itself.
    QosClass,
    /// A systemd unit (service, slice, scope, …) that is not a container.
    SystemdUnit,
    /// Any other cgroup.
    Raw,
}

/// The container runtime a container cgroup belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Runtime {
    /// Docker (also cri-dockerd).
    Docker,
    /// containerd (also its CRI plugin).
    Containerd,
    /// CRI-O.
    CriO,
    /// Podman.
    Podman,
}

impl Runtime {
    /// The runtime's name as used in container ids (`containerd://…`).
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Containerd => "containerd",
            Runtime::CriO => "cri-o",
            Runtime::Podman => "podman",
        }
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a cgroup path says about the cgroup.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CgroupIdentity {
    /// What the cgroup is.
    pub kind: CgroupKind,
    /// The runtime, for containers whose path names it.
    pub runtime: Option<Runtime>,
    /// The 64-hex container id, for containers.
    pub container_id: Option<String>,
    /// The Kubernetes pod uid (with `-`), for pods and their containers.
    pub pod_uid: Option<String>,
    /// The Kubernetes QoS class (`guaranteed`, `burstable`, `besteffort`)
    /// for QoS cgroups, pods and their containers; `None` for the
    /// `kubepods` parent itself.
    pub qos: Option<String>,
    /// The systemd unit name (`ssh.service`), for systemd units.
    pub unit: Option<String>,
}

impl CgroupIdentity {
    fn of_kind(kind: CgroupKind) -> Self {
        Self {
            kind,
            runtime: None,
            container_id: None,
            pod_uid: None,
            qos: None,
            unit: None,
        }
    }
}

const SYSTEMD_UNIT_SUFFIXES: &[&str] =
    &[".service", ".slice", ".scope", ".socket", ".swap", ".mount"];

/// Says what the cgroup at `path` (relative to its hierarchy root, e.g.
/// `/system.slice/docker-<id>.scope`) is. Never fails: anything not
/// recognised is [`CgroupKind::Raw`].
pub fn identify(path: &str) -> CgroupIdentity {
    let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    let Some((&leaf, ancestors)) = components.split_last() else {
        return CgroupIdentity::of_kind(CgroupKind::Root);
    };

    let kubepods = kubepods_start(&components);
    let (pod_uid, qos) = kubepods.map_or((None, None), |at| kubernetes_context(&components[at..]));
    let under_kubepods = kubepods.is_some();

    if let Some((runtime, id)) = container_in_leaf(leaf, ancestors, under_kubepods) {
        return CgroupIdentity {
            kind: CgroupKind::Container,
            runtime,
            container_id: Some(id.to_owned()),
            pod_uid,
            qos,
            ..CgroupIdentity::of_kind(CgroupKind::Container)
        };
    }

    if under_kubepods {
        if pod_uid_of(leaf).is_some() {
            return CgroupIdentity {
                pod_uid,
                qos,
                ..CgroupIdentity::of_kind(CgroupKind::Pod)
            };
        }
        if is_kubepods(leaf) || qos_of(leaf).is_some() {
            return CgroupIdentity {
                qos,
                ..CgroupIdentity::of_kind(CgroupKind::QosClass)
            };
        }
    }

    if SYSTEMD_UNIT_SUFFIXES.iter().any(|s| leaf.ends_with(s)) {
        return CgroupIdentity {
            unit: Some(leaf.to_owned()),
            pod_uid,
            qos,
            ..CgroupIdentity::of_kind(CgroupKind::SystemdUnit)
        };
    }
    CgroupIdentity::of_kind(CgroupKind::Raw)
}

/// The runtime and id of a container leaf, if it is one.
fn container_in_leaf<'a>(
    leaf: &'a str,
    ancestors: &[&str],
    under_kubepods: bool,
) -> Option<(Option<Runtime>, &'a str)> {
    if let Some(scope) = leaf.strip_suffix(".scope") {
        for (prefix, runtime) in [
            ("docker-", Runtime::Docker),
            ("cri-containerd-", Runtime::Containerd),
            ("crio-", Runtime::CriO),
            ("libpod-", Runtime::Podman),
        ] {
            // `crio-conmon-<id>` / `libpod-conmon-<id>` fail the hex check.
            if let Some(id) = scope.strip_prefix(prefix).filter(|id| is_container_id(id)) {
                return Some((Some(runtime), id));
            }
        }
        return None;
    }
    // CRI-O with the cgroupfs driver: `…/pod<uid>/crio-<id>`.
    if let Some(id) = leaf.strip_prefix("crio-").filter(|id| is_container_id(id)) {
        return Some((Some(Runtime::CriO), id));
    }
    if !is_container_id(leaf) {
        return None;
    }
    let runtime = if ancestors.contains(&"docker") {
        Some(Runtime::Docker)
    } else if ancestors.contains(&"containerd") || ancestors.contains(&"k8s.io") || under_kubepods {
        Some(Runtime::Containerd)
    } else if ancestors.contains(&"libpod_parent") {
        Some(Runtime::Podman)
    } else {
        None
    };
    Some((runtime, leaf))
}

/// Where the kubelet's tree starts in a cgroup path: at the root on a
/// node, deeper when the node itself is a container whose cgroups the
/// agent sees from outside (kind, k3d: `/docker/<id>/kubepods/…`).
fn kubepods_start(components: &[&str]) -> Option<usize> {
    components.iter().position(|c| is_kubepods(c))
}

/// The pod uid and QoS class named by the components of a kubepods tree
/// (`components[0]` is `kubepods` or `kubepods.slice`).
fn kubernetes_context(components: &[&str]) -> (Option<String>, Option<String>) {
    let mut pod_uid = None;
    let mut qos = None;
    for component in &components[1..] {
        if let Some(uid) = pod_uid_of(component) {
            pod_uid = Some(uid);
            // A pod directly below kubepods is a guaranteed pod.
            qos.get_or_insert_with(|| "guaranteed".to_owned());
            break;
        }
        if let Some(q) = qos_of(component) {
            qos = Some(q.to_owned());
        }
    }
    (pod_uid, qos)
}

fn is_kubepods(component: &str) -> bool {
    component == "kubepods" || component == "kubepods.slice"
}

/// `burstable` / `besteffort` from `burstable` (cgroupfs) or
/// `kubepods-burstable.slice` (systemd).
fn qos_of(component: &str) -> Option<&str> {
    let name = component
        .strip_prefix("kubepods-")
        .and_then(|c| c.strip_suffix(".slice"))
        .unwrap_or(component);
    ["burstable", "besteffort"].into_iter().find(|q| *q == name)
}

/// The pod uid (with `-`) from `pod<uid>` (cgroupfs) or
/// `kubepods[-<qos>]-pod<uid_with_underscores>.slice` (systemd).
fn pod_uid_of(component: &str) -> Option<String> {
    let uid = if let Some(slice) = component
        .strip_prefix("kubepods-")
        .and_then(|c| c.strip_suffix(".slice"))
    {
        let slice = slice
            .strip_prefix("burstable-")
            .or_else(|| slice.strip_prefix("besteffort-"))
            .unwrap_or(slice);
        slice.strip_prefix("pod")?
    } else {
        component.strip_prefix("pod")?
    };
    // Uids are UUIDs, or 32-hex hashes for static pods.
    let valid = uid.len() >= 32
        && uid
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'-' || b == b'_');
    valid.then(|| uid.replace('_', "-"))
}

/// Whether `s` is a 64-hex container id.
pub fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f2a5e4d2f1b0e3c7d9a8b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e";
    const UID: &str = "0b4e3c9a-1f2d-4e5a-9b8c-7d6e5f4a3b2c";
    const UID_: &str = "0b4e3c9a_1f2d_4e5a_9b8c_7d6e5f4a3b2c";

    struct Case {
        path: String,
        kind: CgroupKind,
        runtime: Option<Runtime>,
        id: bool,
        pod_uid: bool,
        qos: Option<&'static str>,
        unit: Option<String>,
    }

    fn case(path: String, kind: CgroupKind) -> Case {
        Case {
            path,
            kind,
            runtime: None,
            id: false,
            pod_uid: false,
            qos: None,
            unit: None,
        }
    }

    fn container(path: String, runtime: Option<Runtime>) -> Case {
        Case {
            runtime,
            id: true,
            ..case(path, CgroupKind::Container)
        }
    }

    fn in_pod(c: Case, qos: &'static str) -> Case {
        Case {
            pod_uid: true,
            qos: Some(qos),
            ..c
        }
    }

    #[test]
    fn identifies_every_path_form() {
        use CgroupKind::*;
        use Runtime::*;
        let cases = vec![
            case("/".into(), Root),
            case("".into(), Root),
            // Docker, both cgroup drivers.
            container(format!("/docker/{ID}"), Some(Docker)),
            container(format!("/system.slice/docker-{ID}.scope"), Some(Docker)),
            // containerd outside Kubernetes.
            container(format!("/containerd/default/{ID}"), Some(Containerd)),
            container(format!("/k8s.io/{ID}"), Some(Containerd)),
            container(
                format!("/system.slice/cri-containerd-{ID}.scope"),
                Some(Containerd),
            ),
            // Podman.
            container(format!("/machine.slice/libpod-{ID}.scope"), Some(Podman)),
            Case {
                unit: Some(format!("libpod-conmon-{ID}.scope")),
                ..case(
                    format!("/machine.slice/libpod-conmon-{ID}.scope"),
                    SystemdUnit,
                )
            },
            container(format!("/machine.slice/libpod_parent/{ID}"), Some(Podman)),
            // Unknown runtime.
            container(format!("/custom/{ID}"), None),
            // Kubernetes, systemd driver.
            case("/kubepods.slice".into(), QosClass),
            Case {
                qos: Some("burstable"),
                ..case("/kubepods.slice/kubepods-burstable.slice".into(), QosClass)
            },
            in_pod(
                case(
                    format!(
                        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice"
                    ),
                    Pod,
                ),
                "burstable",
            ),
            in_pod(
                container(
                    format!(
                        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/cri-containerd-{ID}.scope"
                    ),
                    Some(Containerd),
                ),
                "burstable",
            ),
            in_pod(
                container(
                    format!(
                        "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/crio-{ID}.scope"
                    ),
                    Some(CriO),
                ),
                "besteffort",
            ),
            in_pod(
                Case {
                    unit: Some(format!("crio-conmon-{ID}.scope")),
                    ..case(
                        format!(
                            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/crio-conmon-{ID}.scope"
                        ),
                        SystemdUnit,
                    )
                },
                "besteffort",
            ),
            in_pod(
                container(
                    format!("/kubepods.slice/kubepods-pod{UID_}.slice/docker-{ID}.scope"),
                    Some(Docker),
                ),
                "guaranteed",
            ),
            in_pod(
                case(format!("/kubepods.slice/kubepods-pod{UID_}.slice"), Pod),
                "guaranteed",
            ),
            // Kubernetes, cgroupfs driver.
            case("/kubepods".into(), QosClass),
            Case {
                qos: Some("besteffort"),
                ..case("/kubepods/besteffort".into(), QosClass)
            },
            in_pod(
                case(format!("/kubepods/burstable/pod{UID}"), Pod),
                "burstable",
            ),
            in_pod(
                container(
                    format!("/kubepods/burstable/pod{UID}/{ID}"),
                    Some(Containerd),
                ),
                "burstable",
            ),
            in_pod(
                container(format!("/kubepods/pod{UID}/{ID}"), Some(Containerd)),
                "guaranteed",
            ),
            in_pod(
                container(format!("/kubepods/pod{UID}/crio-{ID}"), Some(CriO)),
                "guaranteed",
            ),
            // systemd units and plain cgroups.
            Case {
                unit: Some("ssh.service".into()),
                ..case("/system.slice/ssh.service".into(), SystemdUnit)
            },
            Case {
                unit: Some("system.slice".into()),
                ..case("/system.slice".into(), SystemdUnit)
            },
            Case {
                unit: Some("session-3.scope".into()),
                ..case(
                    "/user.slice/user-0.slice/session-3.scope".into(),
                    SystemdUnit,
                )
            },
            case("/process_api/7a042d2786c462c55b18be4b7ec9c2fa".into(), Raw),
            case("/osprey-test/a".into(), Raw),
            // A node that is itself a container (kind, k3d), seen from
            // its host: the kubelet's tree starts below the node's cgroup.
            case("/node-1/kubepods".into(), QosClass),
            in_pod(
                case(format!("/node-1/kubepods/burstable/pod{UID}"), Pod),
                "burstable",
            ),
            in_pod(
                container(
                    format!(
                        "/node-1/kubepods.slice/kubepods-besteffort.slice/\
                         kubepods-besteffort-pod{UID_}.slice/cri-containerd-{ID}.scope"
                    ),
                    Some(Containerd),
                ),
                "besteffort",
            ),
            // Near misses stay raw.
            case(format!("/docker/{}", &ID[..63]), Raw),
            case(format!("/docker/{}", ID.to_uppercase()), Raw),
            case("/kubepods/burstable/podnotauid".into(), Raw),
        ];

        for c in cases {
            let got = identify(&c.path);
            assert_eq!(got.kind, c.kind, "kind of {}", c.path);
            assert_eq!(got.runtime, c.runtime, "runtime of {}", c.path);
            assert_eq!(
                got.container_id.as_deref(),
                c.id.then_some(ID),
                "id of {}",
                c.path
            );
            assert_eq!(
                got.pod_uid.as_deref(),
                c.pod_uid.then_some(UID),
                "pod uid of {}",
                c.path
            );
            assert_eq!(got.qos.as_deref(), c.qos, "qos of {}", c.path);
            assert_eq!(got.unit, c.unit, "unit of {}", c.path);
        }
    }

    #[test]
    fn static_pod_hash_uids_are_pods() {
        let uid = "6e1d8c0a7f3b4c2d9e8f7a6b5c4d3e2f";
        let got = identify(&format!("/kubepods/burstable/pod{uid}"));
        assert_eq!(got.kind, CgroupKind::Pod);
        assert_eq!(got.pod_uid.as_deref(), Some(uid));
    }
}
