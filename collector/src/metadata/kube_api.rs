//! The Kubernetes API server's pod list for this node
//! (`GET /api/v1/pods?fieldSelector=spec.nodeName=<node>`), read with the
//! pod's service account: pod labels, names and images when the node's
//! files do not give them and the kubelet's read-only port is closed (as
//! it is on most clusters today).
//!
//! Like [`super::kubelet_api`] it is fetched on demand (a lookup that
//! misses, which happens on discovery events, and the pod-status refresh
//! of [`crate::kube_state`]), at most every
//! [`super::MetadataConfig::kubelet_min_interval`], never per tick. After
//! each list, the namespaces of its pods not read in the last hour are
//! read (`GET /api/v1/namespaces/<name>`) for their UID, and this node's
//! `Node` object (`GET /api/v1/nodes/<name>`) for its capacity and
//! allocatable resources (one small `GET` per pod-list fetch, i.e. every
//! `pod_status_interval` at most; a failed read keeps the last answer). The
//! token is read again on every fetch: projected service-account tokens
//! are rotated by the kubelet (hourly by default). The list asks for
//! `resourceVersion=0`, so the API server answers from its watch cache
//! instead of etcd: one agent per node must cost the control plane little.
//!
//! The client is blocking: call it from the collection thread.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::MetadataError;
use super::kubelet_api::{
    KubeletPods, NamespaceInfo, NodeResources, PodSource, parse_pod_list, quantities,
};

/// How long a namespace's UID is trusted before it is read again (a
/// namespace deleted and re-created under the same name gets a new one).
const NAMESPACE_TTL: Duration = Duration::from_secs(3600);

/// How long after a failed namespace read (typically RBAC without `get` on
/// namespaces) it is tried again.
const NAMESPACE_RETRY: Duration = Duration::from_secs(600);

/// The service account directory every pod gets mounted.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// How to reach the API server, resolved from the agent's
/// `kubernetes_api` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeApiConfig {
    /// `in-cluster` (the `KUBERNETES_SERVICE_HOST`/`_PORT` the kubelet
    /// sets in every container) or a base URL such as
    /// `https://10.96.0.1:443`.
    pub api: String,
    /// The bearer token file (re-read on every fetch).
    pub token_file: PathBuf,
    /// The PEM CA bundle the API server's certificate must chain to.
    pub ca_file: PathBuf,
    /// This node's name, for the field selector.
    pub node_name: String,
}

impl KubeApiConfig {
    /// The in-cluster settings: token and CA from `service_account_dir`
    /// (normally [`SERVICE_ACCOUNT_DIR`]).
    pub fn new(api: String, service_account_dir: &Path, node_name: String) -> Self {
        Self {
            api,
            token_file: service_account_dir.join("token"),
            ca_file: service_account_dir.join("ca.crt"),
            node_name,
        }
    }

    /// The API server's base URL: `api` itself, or for `in-cluster` the
    /// service address from the environment.
    pub fn base_url(&self) -> Result<String, String> {
        base_url(&self.api, |name| std::env::var(name).ok())
    }
}

/// `api`, or for `in-cluster` the address in `KUBERNETES_SERVICE_HOST` and
/// `KUBERNETES_SERVICE_PORT` as `env` gives them.
fn base_url(api: &str, env: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    if api != "in-cluster" {
        if !(api.starts_with("https://") || api.starts_with("http://")) {
            return Err(format!(
                "`{api}` is neither `in-cluster` nor an http(s) URL"
            ));
        }
        return Ok(api.trim_end_matches('/').to_owned());
    }
    let host = env("KUBERNETES_SERVICE_HOST").ok_or_else(|| {
        "KUBERNETES_SERVICE_HOST is not set (not running in a pod?); set `kubernetes_api` to the API server's URL".to_owned()
    })?;
    let port = env("KUBERNETES_SERVICE_PORT").unwrap_or_else(|| "443".into());
    // An IPv6 service address needs brackets in a URL.
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    Ok(format!("https://{host}:{port}"))
}

/// This node's pods from the API server, fetched lazily and rate-limited.
pub struct KubeApiPodSource {
    config: KubeApiConfig,
    timeout: Duration,
    min_interval: Duration,
    /// Built on first use, so a CA file that appears late (or a bad one)
    /// is a counted fetch failure, not a start-up error.
    client: Option<reqwest::blocking::Client>,
    last_fetch: Option<Instant>,
    snapshot: KubeletPods,
    /// Namespaces read so far (`None`: the read failed), and when.
    namespaces: HashMap<String, (Option<NamespaceInfo>, Instant)>,
    /// Whether a failed namespace read was already logged at `warn`.
    namespace_warned: bool,
    /// The node's resources from the last successful read.
    node: Option<NodeResources>,
    /// Whether a failed node read was already logged at `warn`.
    node_warned: bool,
}

/// The part of a `Node` object the agent reads.
#[derive(Deserialize)]
struct Node {
    #[serde(default)]
    status: Option<NodeStatus>,
}

#[derive(Deserialize, Default)]
struct NodeStatus {
    #[serde(default)]
    capacity: std::collections::BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    allocatable: std::collections::BTreeMap<String, serde_json::Value>,
}

/// Parses a `Node` JSON document's `status.capacity` and
/// `status.allocatable` (unparsable quantities are left out). A node
/// without `status.capacity` is an error: nothing would be learnt.
pub fn parse_node(json: &[u8]) -> Result<NodeResources, String> {
    let node: Node = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    let status = node.status.unwrap_or_default();
    let resources = NodeResources {
        capacity: quantities(status.capacity),
        allocatable: quantities(status.allocatable),
    };
    if resources.capacity.is_empty() {
        return Err("the node has no status.capacity".into());
    }
    Ok(resources)
}

/// The part of a `Namespace` object the agent reads.
#[derive(Deserialize)]
struct Namespace {
    metadata: NamespaceMeta,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NamespaceMeta {
    #[serde(default)]
    uid: String,
    #[serde(default)]
    creation_timestamp: Option<String>,
}

/// Parses a `Namespace` JSON document.
pub fn parse_namespace(json: &[u8]) -> Result<NamespaceInfo, String> {
    let ns: Namespace = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    if ns.metadata.uid.is_empty() {
        return Err("the namespace has no metadata.uid".into());
    }
    let created_seconds = match ns.metadata.creation_timestamp {
        Some(t) => Some(
            chrono::DateTime::parse_from_rfc3339(&t)
                .map_err(|e| format!("creationTimestamp `{t}`: {e}"))?
                .timestamp() as f64,
        ),
        None => None,
    };
    Ok(NamespaceInfo {
        uid: ns.metadata.uid,
        created_seconds,
    })
}

impl KubeApiPodSource {
    /// A source for `config`; nothing is read or fetched yet.
    pub fn new(config: KubeApiConfig, timeout: Duration, min_interval: Duration) -> Self {
        Self {
            config,
            timeout,
            min_interval,
            client: None,
            last_fetch: None,
            snapshot: KubeletPods::default(),
            namespaces: HashMap::new(),
            namespace_warned: false,
            node: None,
            node_warned: false,
        }
    }

    /// Reads this node's `Node` object into `pods.node`. A failure
    /// (typically a ClusterRole without `get` on nodes) keeps the last
    /// answer and never fails the pod list.
    fn read_node(
        &mut self,
        client: &reqwest::blocking::Client,
        base: &str,
        token: &str,
        pods: &mut KubeletPods,
    ) {
        // resourceVersion=0: the API server may answer from its cache.
        let read = get_object(
            client,
            &format!(
                "{base}/api/v1/nodes/{}?resourceVersion=0",
                self.config.node_name
            ),
            token,
        )
        .and_then(|body| parse_node(&body).map_err(|e| format!("not a Node: {e}")));
        match read {
            Ok(node) => self.node = Some(node),
            Err(error) => {
                let node = &self.config.node_name;
                if self.node_warned {
                    tracing::debug!(%node, %error, "cannot read the node");
                } else {
                    self.node_warned = true;
                    tracing::warn!(%node, %error, "cannot read the node; its capacity and allocatable fall back to the machine's figures; the ClusterRole needs `get` on nodes");
                }
            }
        }
        pods.node = self.node.clone();
    }

    /// Reads the namespaces of `pods` not yet known (or known for longer
    /// than [`NAMESPACE_TTL`]) and fills `pods.namespaces`. One `GET` per
    /// new namespace: cheap next to the pod list, and namespaces are few.
    /// A failure (the ClusterRole lacks `get` on namespaces) leaves the
    /// UID unknown; it never fails the pod list.
    fn read_namespaces(
        &mut self,
        client: &reqwest::blocking::Client,
        base: &str,
        token: &str,
        pods: &mut KubeletPods,
    ) {
        let names: BTreeSet<String> = pods.pods.values().map(|p| p.namespace.clone()).collect();
        for name in names {
            let due = match self.namespaces.get(&name) {
                Some((Some(_), at)) => at.elapsed() >= NAMESPACE_TTL,
                Some((None, at)) => at.elapsed() >= NAMESPACE_RETRY,
                None => true,
            };
            if due {
                let read = Self::read_namespace(client, base, token, &name);
                if let Err(error) = &read {
                    if self.namespace_warned {
                        tracing::debug!(namespace = %name, %error, "cannot read namespace");
                    } else {
                        self.namespace_warned = true;
                        tracing::warn!(namespace = %name, %error, "cannot read namespace; its UID (Heapster's namespace_id) stays unknown; the ClusterRole needs `get` on namespaces");
                    }
                }
                // A failure keeps an older answer (UIDs do not change
                // while the namespace lives).
                let previous = self.namespaces.get(&name).and_then(|(i, _)| i.clone());
                let info = read.ok().or(previous);
                self.namespaces.insert(name.clone(), (info, Instant::now()));
            }
            if let Some((Some(info), _)) = self.namespaces.get(&name) {
                pods.namespaces.insert(name, info.clone());
            }
        }
    }

    fn read_namespace(
        client: &reqwest::blocking::Client,
        base: &str,
        token: &str,
        name: &str,
    ) -> Result<NamespaceInfo, String> {
        let body = get_object(client, &format!("{base}/api/v1/namespaces/{name}"), token)?;
        parse_namespace(&body).map_err(|e| format!("not a Namespace: {e}"))
    }

    fn error(&self, reason: String) -> MetadataError {
        MetadataError::KubeApi {
            api: self.config.api.clone(),
            reason,
        }
    }

    fn client(&mut self) -> Result<reqwest::blocking::Client, MetadataError> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let ca_file = &self.config.ca_file;
        let pem = std::fs::read(ca_file)
            .map_err(|e| self.error(format!("cannot read the CA {}: {e}", ca_file.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| self.error(format!("{} is not a PEM CA: {e}", ca_file.display())))?;
        if certs.is_empty() {
            return Err(self.error(format!("{} holds no certificate", ca_file.display())));
        }
        let mut builder = reqwest::blocking::Client::builder()
            .use_rustls_tls()
            // Only the cluster's CA: the API server is never vouched for by
            // a public one.
            .tls_built_in_root_certs(false)
            .timeout(self.timeout);
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
        let client = builder
            .build()
            .map_err(|e| self.error(format!("cannot build the client: {e}")))?;
        self.client = Some(client.clone());
        Ok(client)
    }

    fn fetch(&mut self) -> Result<KubeletPods, MetadataError> {
        let base = self.config.base_url().map_err(|r| self.error(r))?;
        let client = self.client()?;
        let token_file = &self.config.token_file;
        let token = std::fs::read_to_string(token_file).map_err(|e| {
            self.error(format!(
                "cannot read the token {}: {e}",
                token_file.display()
            ))
        })?;
        let response = client
            .get(format!("{base}/api/v1/pods"))
            .query(&[
                (
                    "fieldSelector",
                    format!("spec.nodeName={}", self.config.node_name).as_str(),
                ),
                ("resourceVersion", "0"),
            ])
            .bearer_auth(token.trim())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .map_err(|e| self.error(error_chain(&e)))?;
        let status = response.status();
        if !status.is_success() {
            let hint = match status.as_u16() {
                401 => "; the service account token was refused",
                403 => "; the service account may not list pods (check the ClusterRole)",
                _ => "",
            };
            return Err(self.error(format!("the API server answered {status}{hint}")));
        }
        let body = response.bytes().map_err(|e| self.error(e.to_string()))?;
        let mut pods =
            parse_pod_list(&body).map_err(|e| self.error(format!("not a PodList: {e}")))?;
        self.read_namespaces(&client, &base, token.trim(), &mut pods);
        self.read_node(&client, &base, token.trim(), &mut pods);
        Ok(pods)
    }
}

impl PodSource for KubeApiPodSource {
    fn snapshot(&self) -> &KubeletPods {
        &self.snapshot
    }

    fn refresh_if_due(&mut self) -> Result<bool, MetadataError> {
        if self
            .last_fetch
            .is_some_and(|t| t.elapsed() < self.min_interval)
        {
            return Ok(false);
        }
        // An attempt even when it fails: a refusing API server must not be
        // asked again on every lookup.
        self.last_fetch = Some(Instant::now());
        self.snapshot = self.fetch()?;
        Ok(true)
    }

    fn describe(&self) -> String {
        format!("Kubernetes API ({})", self.config.api)
    }
}

/// reqwest's error with its causes (the TLS reason is in a source).
/// One object from the API server as JSON bytes; an error names the
/// transport failure or the status the server answered.
fn get_object(
    client: &reqwest::blocking::Client,
    url: &str,
    token: &str,
) -> Result<Vec<u8>, String> {
    let response = client
        .get(url)
        .bearer_auth(token)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .map_err(|e| error_chain(&e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("the API server answered {status}"));
    }
    response
        .bytes()
        .map(|b| b.to_vec())
        .map_err(|e| e.to_string())
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::{base_url, parse_namespace, parse_node};

    #[test]
    fn nodes_give_capacity_and_allocatable_in_base_units() {
        let json = br#"{"kind":"Node","apiVersion":"v1","metadata":{"name":"n1","uid":"u"},
          "status":{"capacity":{"cpu":"4","memory":"16393216Ki","ephemeral-storage":"101430960Ki","pods":"110","hugepages-2Mi":"0"},
          "allocatable":{"cpu":"3920m","memory":"15242240Ki","ephemeral-storage":"93478772582","pods":"110","bogus":"lots"}}}"#;
        let node = parse_node(json).unwrap();
        assert_eq!(node.capacity["cpu"], 4.0);
        assert_eq!(node.capacity["memory"], 16393216.0 * 1024.0);
        assert_eq!(node.capacity["ephemeral-storage"], 101430960.0 * 1024.0);
        assert_eq!(node.allocatable["cpu"], 3.92);
        assert_eq!(node.allocatable["ephemeral-storage"], 93478772582.0);
        assert!(!node.allocatable.contains_key("bogus"));
        assert!(parse_node(br#"{"kind":"Status","code":403}"#).is_err());
        assert!(parse_node(b"[]").is_err());
    }

    #[test]
    fn namespaces_give_their_uid_and_creation_time() {
        let json = br#"{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"shop","uid":"9b1c7e2a-f3c1-11e8-9d4e-42010a800002","resourceVersion":"42","creationTimestamp":"2026-11-26T10:00:00Z","labels":{"kubernetes.io/metadata.name":"shop"}},"spec":{"finalizers":["kubernetes"]},"status":{"phase":"Active"}}"#;
        let ns = parse_namespace(json).unwrap();
        assert_eq!(ns.uid, "9b1c7e2a-f3c1-11e8-9d4e-42010a800002");
        assert_eq!(ns.created_seconds, Some(1_795_687_200.0));
        assert!(parse_namespace(br#"{"metadata":{"name":"x"}}"#).is_err());
        assert!(parse_namespace(br#"{"kind":"Status","code":403}"#).is_err());
    }

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn in_cluster_address_comes_from_the_service_environment() {
        let v4 = [
            ("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
            ("KUBERNETES_SERVICE_PORT", "443"),
        ];
        assert_eq!(
            base_url("in-cluster", env(&v4)).unwrap(),
            "https://10.96.0.1:443"
        );
        let v6 = [
            ("KUBERNETES_SERVICE_HOST", "fd00::1"),
            ("KUBERNETES_SERVICE_PORT", "6443"),
        ];
        assert_eq!(
            base_url("in-cluster", env(&v6)).unwrap(),
            "https://[fd00::1]:6443"
        );
        let err = base_url("in-cluster", env(&[])).unwrap_err();
        assert!(err.contains("KUBERNETES_SERVICE_HOST"), "{err}");
    }

    #[test]
    fn an_explicit_url_is_used_as_given() {
        assert_eq!(
            base_url("https://api.example:6443/", env(&[])).unwrap(),
            "https://api.example:6443"
        );
        assert!(base_url("api.example:6443", env(&[])).is_err());
    }
}
