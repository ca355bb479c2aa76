//! Metadata from fixture runtime records and kubelet trees, laid out as
//! on a real node in a temporary directory.

use std::fs;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;
use crate::discovery::path::CgroupPath;
use crate::discovery::runtime::identify;

const SANDBOX: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const APP: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const STANDALONE: &str = "3333333333333333333333333333333333333333333333333333333333333333";
const UID: &str = "0b4e3c9a-1f2d-4e5a-9b8c-7d6e5f4a3b2c";

/// A node's directories under one temporary root.
struct Node {
    dir: tempfile::TempDir,
}

impl Node {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, content: &str) {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    fn config(&self) -> MetadataConfig {
        MetadataConfig {
            docker_root: self.path("var/lib/docker"),
            oci_bundle_roots: vec![
                self.path("run/containerd/io.containerd.runtime.v2.task/k8s.io"),
                self.path("run/containers/storage/overlay-containers"),
            ],
            pod_log_root: self.path("var/log/pods"),
            container_log_root: self.path("var/log/containers"),
            // The test process's own /proc, so recorded pids are checked
            // against live processes.
            proc_root: PathBuf::from("/proc"),
            ..MetadataConfig::default()
        }
    }

    fn docker_container(
        &self,
        id: &str,
        name: &str,
        image: &str,
        labels: &str,
        pid: u32,
        network_mode: &str,
    ) {
        self.write(
            &format!("var/lib/docker/containers/{id}/config.v2.json"),
            &format!(
                r#"{{"StreamConfig":{{}},"State":{{"Running":true,"Paused":false,"Restarting":false,"OOMKilled":false,"Dead":false,"Pid":{pid},"ExitCode":0,"Error":"","StartedAt":"2026-11-26T20:01:02.123456789Z","FinishedAt":"0001-01-01T00:00:00Z","Health":null}},"ID":"{id}","Created":"2026-11-26T20:01:01.5Z","Managed":false,"Path":"/docker-entrypoint.sh","Args":["nginx","-g","daemon off;"],"Config":{{"Hostname":"{short}","Domainname":"","User":"","AttachStdin":false,"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","NGINX_VERSION=1.25.3"],"Cmd":["nginx","-g","daemon off;"],"Image":"{image}","Volumes":null,"WorkingDir":"","Entrypoint":["/docker-entrypoint.sh"],"OnBuild":null,"Labels":{labels},"StopSignal":"SIGQUIT"}},"Image":"sha256:a8758716bb6aa4d90071160d27028fe4eaee7ce8166221a97d30440c8eac2be6","NetworkSettings":{{"Bridge":"","SandboxID":"","Networks":{{}}}},"LogPath":"/var/lib/docker/containers/{id}/{id}-json.log","Name":"{name}","Driver":"overlay2","OS":"linux","RestartCount":0,"HasBeenStartedBefore":false,"HasBeenManuallyStopped":false,"MountPoints":{{}}}}"#,
                short = &id[..12],
            ),
        );
        self.write(
            &format!("var/lib/docker/containers/{id}/hostconfig.json"),
            &format!(r#"{{"Binds":null,"NetworkMode":"{network_mode}","PortBindings":{{}},"RestartPolicy":{{"Name":"no","MaximumRetryCount":0}},"Privileged":false}}"#),
        );
    }

    fn kubelet_logs(&self, namespace: &str, pod: &str, uid: &str, container: &str, id: &str) {
        let log = format!("var/log/pods/{namespace}_{pod}_{uid}/{container}/0.log");
        self.write(&log, "2026-11-26T20:00:00Z stdout F hello\n");
        fs::create_dir_all(self.path("var/log/containers")).unwrap();
        std::os::unix::fs::symlink(
            self.path(&log),
            self.path(&format!(
                "var/log/containers/{pod}_{namespace}_{container}-{id}.log"
            )),
        )
        .unwrap();
    }
}

fn resolve(cache: &mut MetadataCache, path: &str) -> Arc<ContainerMetadata> {
    let path = CgroupPath::new(path);
    let identity = identify(path.as_str());
    cache.resolve(&path, &identity)
}

fn my_pid() -> u32 {
    std::process::id()
}

#[test]
fn standalone_docker_container_is_named_from_its_record() {
    let node = Node::new();
    node.docker_container(
        STANDALONE,
        "/web",
        "nginx:1.25",
        r#"{"com.docker.compose.project":"shop","maintainer":"NGINX Docker Maintainers <docker-maint@nginx.com>"}"#,
        my_pid(),
        "bridge",
    );
    let mut cache = MetadataCache::new(node.config()).unwrap();
    let meta = resolve(
        &mut cache,
        &format!("/system.slice/docker-{STANDALONE}.scope"),
    );
    assert_eq!(meta.name, "web");
    assert_eq!(meta.image, "nginx:1.25");
    assert_eq!(meta.labels["com.docker.compose.project"], "shop");
    assert_eq!(meta.labels.len(), 2);
    assert_eq!(meta.pid, Some(my_pid()));
    assert_eq!(meta.runtime, Some(Runtime::Docker));
    assert_eq!(meta.container_id.as_deref(), Some(STANDALONE));
    assert!(meta.pod.is_empty() && meta.namespace.is_empty() && meta.container.is_empty());
    assert_eq!(meta.carries_network(), Some(true));
    assert_eq!(cache.errors(), 0);
}

#[test]
fn dead_pid_in_a_record_is_dropped() {
    let node = Node::new();
    // pid_max is at most 2^22: this pid cannot exist.
    node.docker_container(STANDALONE, "/web", "nginx", "null", 4_999_999, "bridge");
    let mut cache = MetadataCache::new(node.config()).unwrap();
    let meta = resolve(&mut cache, &format!("/docker/{STANDALONE}"));
    assert_eq!(meta.name, "web");
    assert!(meta.labels.is_empty(), "null labels are no labels");
    assert_eq!(meta.pid, None);
}

#[test]
fn docker_pod_sandbox_carries_the_pod_network() {
    let node = Node::new();
    let k8s = |container: &str, kind: &str| {
        format!(
            r#"{{"annotation.io.kubernetes.container.restartCount":"0","io.kubernetes.container.name":"{container}","io.kubernetes.docker.type":"{kind}","io.kubernetes.pod.name":"web-0","io.kubernetes.pod.namespace":"shop","io.kubernetes.pod.uid":"{UID}"}}"#
        )
    };
    node.docker_container(
        SANDBOX,
        "/k8s_POD_web-0_shop_uid_0",
        "registry.k8s.io/pause:3.9",
        &k8s("POD", "podsandbox"),
        my_pid(),
        "none",
    );
    node.docker_container(
        APP,
        "/k8s_nginx_web-0_shop_uid_0",
        "nginx:1.25",
        &k8s("nginx", "container"),
        my_pid(),
        &format!("container:{SANDBOX}"),
    );
    let mut cache = MetadataCache::new(node.config()).unwrap();
    let pod = format!(
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice",
        UID.replace('-', "_")
    );

    let sandbox = resolve(&mut cache, &format!("{pod}/docker-{SANDBOX}.scope"));
    assert!(sandbox.is_pod_sandbox);
    assert_eq!(sandbox.container, "", "a sandbox is no workload container");
    assert_eq!(
        (sandbox.namespace.as_str(), sandbox.pod.as_str()),
        ("shop", "web-0")
    );
    assert_eq!(sandbox.pod_uid, UID);
    assert_eq!(sandbox.carries_network(), Some(true));

    let app = resolve(&mut cache, &format!("{pod}/docker-{APP}.scope"));
    assert!(!app.is_pod_sandbox);
    assert!(app.shares_another_netns);
    assert_eq!(app.container, "nginx");
    assert_eq!(app.name, "k8s_nginx_web-0_shop_uid_0");
    assert_eq!(app.image, "nginx:1.25");
    assert_eq!(app.carries_network(), Some(false));

    let pod_meta = resolve(&mut cache, &pod);
    assert_eq!(pod_meta.kind, CgroupKind::Pod);
    assert_eq!(pod_meta.name, pod);
    assert_eq!(pod_meta.carries_network(), Some(false));
}

#[test]
fn malformed_docker_record_leaves_fields_empty_and_counts_an_error() {
    let node = Node::new();
    for (i, broken) in [
        r#"{"State":{"Running":true,"Pid":12"#,      // truncated
        r#"{"Name": 42, "Config": {"Image": "x"}}"#, // wrong type
        "\u{0}\u{1}binary",                          // not JSON
        "",                                          // empty
    ]
    .iter()
    .enumerate()
    {
        let id = format!("{i}").repeat(64);
        node.write(
            &format!("var/lib/docker/containers/{id}/config.v2.json"),
            broken,
        );
        let mut cache = MetadataCache::new(node.config()).unwrap();
        let meta = resolve(&mut cache, &format!("/docker/{id}"));
        assert_eq!(meta.name, id, "falls back to the id for {broken:?}");
        assert!(meta.image.is_empty() && meta.labels.is_empty() && meta.pid.is_none());
        assert_eq!(cache.errors(), 1, "{broken:?}");
    }
}

#[test]
fn containerd_without_records_is_named_from_kubelet_logs() {
    let node = Node::new();
    node.kubelet_logs("shop", "web-0", UID, "nginx", APP);
    node.kubelet_logs("shop", "web-0", UID, "sidecar", STANDALONE);
    let mut cache = MetadataCache::new(node.config()).unwrap();

    let app = resolve(&mut cache, &format!("/kubepods/besteffort/pod{UID}/{APP}"));
    assert_eq!(app.runtime, Some(Runtime::Containerd));
    assert_eq!(app.name, APP, "containerd containers are named by id");
    assert_eq!(
        (
            app.namespace.as_str(),
            app.pod.as_str(),
            app.container.as_str()
        ),
        ("shop", "web-0", "nginx")
    );
    assert_eq!(app.pod_uid, UID);
    assert_eq!(
        app.carries_network(),
        None,
        "sandbox unknown without a runtime record"
    );

    let pod = resolve(&mut cache, &format!("/kubepods/besteffort/pod{UID}"));
    assert_eq!(
        (pod.namespace.as_str(), pod.pod.as_str()),
        ("shop", "web-0")
    );
    assert_eq!(cache.errors(), 0);
}

#[test]
fn containerd_and_crio_bundles_name_pods_and_sandboxes() {
    let node = Node::new();
    let bundle = "run/containerd/io.containerd.runtime.v2.task/k8s.io";
    node.write(
        &format!("{bundle}/{SANDBOX}/config.json"),
        &format!(r#"{{"ociVersion":"1.1.0","process":{{"args":["/pause"]}},"annotations":{{"io.kubernetes.cri.container-type":"sandbox","io.kubernetes.cri.sandbox-id":"{SANDBOX}","io.kubernetes.cri.sandbox-name":"web-0","io.kubernetes.cri.sandbox-namespace":"shop","io.kubernetes.cri.sandbox-uid":"{UID}"}}}}"#),
    );
    node.write(
        &format!("{bundle}/{SANDBOX}/init.pid"),
        &my_pid().to_string(),
    );
    node.write(
        &format!("{bundle}/{APP}/config.json"),
        &format!(r#"{{"ociVersion":"1.1.0","annotations":{{"io.kubernetes.cri.container-type":"container","io.kubernetes.cri.container-name":"nginx","io.kubernetes.cri.image-name":"docker.io/library/nginx:1.25","io.kubernetes.cri.sandbox-id":"{SANDBOX}","io.kubernetes.cri.sandbox-name":"web-0","io.kubernetes.cri.sandbox-namespace":"shop","io.kubernetes.cri.sandbox-uid":"{UID}"}}}}"#),
    );
    node.write(
        &format!("{bundle}/{APP}/init.pid"),
        &format!("{}\n", my_pid()),
    );
    let crio = "run/containers/storage/overlay-containers";
    node.write(
        &format!("{crio}/{STANDALONE}/userdata/config.json"),
        &format!(r#"{{"annotations":{{"io.kubernetes.cri-o.ContainerType":"sandbox","io.kubernetes.container.name":"POD","io.kubernetes.pod.name":"db-0","io.kubernetes.pod.namespace":"data","io.kubernetes.pod.uid":"{UID}","io.kubernetes.cri-o.ImageName":"registry.k8s.io/pause:3.9"}}}}"#),
    );
    let mut cache = MetadataCache::new(node.config()).unwrap();
    let pod = format!(
        "/kubepods.slice/kubepods-pod{}.slice",
        UID.replace('-', "_")
    );

    let sandbox = resolve(&mut cache, &format!("{pod}/cri-containerd-{SANDBOX}.scope"));
    assert!(sandbox.is_pod_sandbox);
    assert_eq!(sandbox.labels["io.cri-containerd.kind"], "sandbox");
    assert_eq!(sandbox.pid, Some(my_pid()));
    assert_eq!(sandbox.carries_network(), Some(true));

    let app = resolve(&mut cache, &format!("{pod}/cri-containerd-{APP}.scope"));
    assert_eq!(app.container, "nginx");
    assert_eq!(app.image, "docker.io/library/nginx:1.25");
    assert_eq!(app.labels["io.cri-containerd.kind"], "container");
    assert_eq!(app.labels["io.kubernetes.pod.namespace"], "shop");
    assert_eq!(app.pid, Some(my_pid()));
    assert_eq!(app.carries_network(), Some(false));

    let crio_sandbox = resolve(&mut cache, &format!("{pod}/crio-{STANDALONE}.scope"));
    assert_eq!(crio_sandbox.runtime, Some(Runtime::CriO));
    assert!(crio_sandbox.is_pod_sandbox);
    assert_eq!(crio_sandbox.container, "");
    assert_eq!(
        (crio_sandbox.namespace.as_str(), crio_sandbox.pod.as_str()),
        ("data", "db-0")
    );
    assert_eq!(crio_sandbox.pid, None, "no pidfile");
    assert!(!crio_sandbox.labels.contains_key("io.cri-containerd.kind"));
    assert_eq!(crio_sandbox.carries_network(), Some(true));
}

#[test]
fn non_containers_are_named_by_unit_or_path() {
    let node = Node::new();
    let mut cache = MetadataCache::new(node.config()).unwrap();
    let root = resolve(&mut cache, "/");
    assert_eq!((root.name.as_str(), root.pid), ("/", Some(1)));
    assert_eq!(root.carries_network(), Some(true));
    let unit = resolve(&mut cache, "/system.slice/ssh.service");
    assert_eq!(unit.name, "ssh.service");
    assert_eq!(unit.carries_network(), Some(false));
    let raw = resolve(&mut cache, "/process_api/abc");
    assert_eq!(raw.name, "/process_api/abc");
    assert_eq!(raw.pid, None);
}

#[test]
fn cache_keeps_entries_until_forgotten_or_stale() {
    let node = Node::new();
    node.docker_container(STANDALONE, "/old", "nginx", "{}", my_pid(), "bridge");
    let mut cache = MetadataCache::new(node.config()).unwrap();
    let path = format!("/docker/{STANDALONE}");
    let first = resolve(&mut cache, &path);
    assert_eq!(first.name, "old");

    node.docker_container(STANDALONE, "/new", "nginx", "{}", my_pid(), "bridge");
    let cached = resolve(&mut cache, &path);
    assert!(Arc::ptr_eq(&first, &cached), "served from the cache");

    cache.forget(&CgroupPath::new(&path));
    assert_eq!(resolve(&mut cache, &path).name, "new");
    assert_eq!(cache.len(), 1);
}

#[test]
fn incomplete_names_are_retried_sooner() {
    let node = Node::new();
    let mut config = node.config();
    config.incomplete_retry = Duration::ZERO;
    config.log_index_min_interval = Duration::ZERO;
    let mut cache = MetadataCache::new(config).unwrap();
    let path = format!("/kubepods/pod{UID}/{APP}");
    assert!(resolve(&mut cache, &path).pod.is_empty(), "no logs yet");

    // The kubelet creates the logs a moment after the cgroup.
    node.kubelet_logs("shop", "web-0", UID, "nginx", APP);
    let again = resolve(&mut cache, &path);
    assert_eq!(
        (again.pod.as_str(), again.container.as_str()),
        ("web-0", "nginx")
    );
}

#[test]
fn incomplete_names_are_retried_after_twice_as_long_each_time() {
    let node = Node::new();
    let mut config = node.config();
    config.incomplete_retry = Duration::from_millis(5);
    config.refresh_interval = Duration::from_secs(3600);
    config.log_index_min_interval = Duration::ZERO;
    let mut cache = MetadataCache::new(config).unwrap();
    let path = format!("/kubepods/pod{UID}/{APP}");
    let key = CgroupPath::new(&path);
    let mut kept = Vec::new();
    for _ in 0..4 {
        assert!(resolve(&mut cache, &path).pod.is_empty(), "no logs yet");
        let now = cache.kept_for(&key).unwrap();
        kept.push(now.as_millis());
        // Past the retry: the next resolve reads the node's files again.
        std::thread::sleep(now + Duration::from_millis(2));
    }
    assert_eq!(kept, vec![5, 10, 20, 40]);

    node.kubelet_logs("shop", "web-0", UID, "nginx", APP);
    assert_eq!(resolve(&mut cache, &path).pod, "web-0");
    assert_eq!(cache.kept_for(&key), Some(Duration::from_secs(3600)));
}

/// A runtime's directories are looked in only while they exist: on a
/// node without Docker no container's retry opens Docker's records. A
/// runtime started after the agent is seen by its first container's
/// first lookup, and by the retries of containers still unnamed.
#[test]
fn runtimes_are_looked_for_only_where_their_directories_exist() {
    let node = Node::new();
    let mut config = node.config();
    // Past any test's run: only a first lookup looks again.
    config.incomplete_retry = Duration::from_secs(3600);
    let mut cache = MetadataCache::new(config).unwrap();
    let pod_container = format!("/kubepods/pod{UID}/{APP}");
    assert!(resolve(&mut cache, &pod_container).pod.is_empty());
    assert_eq!(
        cache.runtimes_looked_in(),
        (false, 0),
        "no runtime directory on the node: none looked in"
    );

    // Docker starts, then its first container.
    node.docker_container(STANDALONE, "/web", "nginx", "{}", my_pid(), "bridge");
    assert_eq!(
        resolve(&mut cache, &format!("/docker/{STANDALONE}")).name,
        "web"
    );
    assert_eq!(
        cache.runtimes_looked_in(),
        (true, 0),
        "no OCI runtime still"
    );
}

/// A pod container still unnamed is looked up again at its retry, under
/// the runtime directories as they are by then.
#[test]
fn a_retry_looks_in_a_runtime_directory_made_since() {
    let node = Node::new();
    let mut config = node.config();
    config.incomplete_retry = Duration::from_millis(20);
    let mut cache = MetadataCache::new(config).unwrap();
    let path = format!("/kubepods/pod{UID}/{APP}");
    assert!(resolve(&mut cache, &path).pod.is_empty(), "no record yet");
    node.write(
        &format!("run/containerd/io.containerd.runtime.v2.task/k8s.io/{APP}/config.json"),
        &format!(r#"{{"ociVersion":"1.1.0","annotations":{{"io.kubernetes.cri.container-type":"container","io.kubernetes.cri.container-name":"nginx","io.kubernetes.cri.sandbox-name":"web-0","io.kubernetes.cri.sandbox-namespace":"shop","io.kubernetes.cri.sandbox-uid":"{UID}"}}}}"#),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while resolve(&mut cache, &path).pod != "web-0" {
        assert!(
            std::time::Instant::now() < deadline,
            "the bundle was never read after its runtime directory appeared"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(cache.runtimes_looked_in(), (false, 1));
}

#[test]
fn complete_names_are_not_reread_before_the_refresh_interval() {
    let node = Node::new();
    node.kubelet_logs("shop", "web-0", UID, "nginx", APP);
    let mut config = node.config();
    config.log_index_min_interval = Duration::ZERO;
    let mut cache = MetadataCache::new(config).unwrap();
    let path = format!("/kubepods/pod{UID}/{APP}");
    let first = resolve(&mut cache, &path);
    assert_eq!(first.pod, "web-0");
    assert!(Arc::ptr_eq(&first, &resolve(&mut cache, &path)));
}

/// A kubelet answering every request with `body` at once.
fn serve(body: String) -> (String, Arc<AtomicUsize>) {
    crate::fixture::kubelet::serve_pod_list(body, Duration::ZERO)
}

fn pod_list() -> String {
    format!(
        r#"{{"kind":"PodList","apiVersion":"v1","metadata":{{}},"items":[{{"metadata":{{"name":"web-0","namespace":"shop","uid":"{UID}","labels":{{"app":"web","pod-template-hash":"5d78c9869d"}}}},"spec":{{"containers":[{{"name":"nginx","image":"nginx:1.25"}}]}},"status":{{"phase":"Running","containerStatuses":[{{"name":"nginx","state":{{"running":{{}}}},"ready":true,"restartCount":0,"image":"docker.io/library/nginx:1.25","imageID":"docker.io/library/nginx@sha256:abc","containerID":"containerd://{APP}"}}],"initContainerStatuses":[{{"name":"init","image":"busybox","containerID":"containerd://{STANDALONE}"}},{{"name":"pending","image":"busybox"}}]}}}}]}}"#
    )
}

#[test]
fn kubelet_pod_list_is_parsed() {
    let pods = kubelet_api::parse_pod_list(pod_list().as_bytes()).unwrap();
    assert_eq!(pods.pods[UID].name, "web-0");
    assert_eq!(pods.pods[UID].labels["app"], "web");
    assert_eq!(pods.containers[APP].name, "nginx");
    assert_eq!(pods.containers[STANDALONE].name, "init");
    assert_eq!(
        pods.containers.len(),
        2,
        "a container without id is skipped"
    );
    assert!(kubelet_api::parse_pod_list(b"{\"items\":[{").is_err());
}

#[test]
fn kubelet_endpoint_fills_labels_and_is_rate_limited() {
    let node = Node::new();
    let (url, hits) = serve(pod_list());
    let mut config = node.config();
    config.kubelet_pods_url = Some(url);
    config.kubelet_min_interval = Duration::from_secs(3600);
    let mut cache = MetadataCache::new(config).unwrap();

    let pod = resolve(&mut cache, &format!("/kubepods/burstable/pod{UID}"));
    assert_eq!(pod.labels["app"], "web");
    assert_eq!(
        (pod.namespace.as_str(), pod.pod.as_str()),
        ("shop", "web-0")
    );

    let app = resolve(&mut cache, &format!("/kubepods/burstable/pod{UID}/{APP}"));
    assert_eq!(app.container, "nginx");
    assert_eq!(app.image, "docker.io/library/nginx:1.25");
    assert_eq!(
        app.labels["app"], "web",
        "a container carries its pod's labels"
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "the second lookup used the same list"
    );

    // An id the list does not know would trigger a fetch, but not within
    // the minimum interval.
    let unknown = "9".repeat(64);
    let other = resolve(
        &mut cache,
        &format!("/kubepods/burstable/pod{UID}/{unknown}"),
    );
    assert_eq!(other.pod, "web-0", "pod names still come from the list");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[test]
fn unreachable_kubelet_is_an_error_not_a_failure() {
    let node = Node::new();
    // A port nobody listens on: bind, read the port, close.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = node.config();
    config.kubelet_pods_url = Some(format!("http://127.0.0.1:{port}/pods"));
    let mut cache = MetadataCache::new(config).unwrap();
    let pod = resolve(&mut cache, &format!("/kubepods/pod{UID}"));
    assert!(pod.pod.is_empty());
    assert_eq!(pod.pod_uid, UID);
    assert_eq!(cache.errors(), 1);
}

#[test]
fn config_parses_with_defaults_and_human_durations() {
    let config: MetadataConfig = serde_json::from_str(
        r#"{"docker_root":"/data/docker","kubelet_pods_url":"http://127.0.0.1:10255/pods","refresh_interval":"10m"}"#,
    )
    .unwrap();
    assert_eq!(config.docker_root, PathBuf::from("/data/docker"));
    assert_eq!(config.refresh_interval, Duration::from_secs(600));
    assert_eq!(config.pod_log_root, PathBuf::from("/var/log/pods"));
    assert_eq!(config.kubelet_min_interval, Duration::from_secs(30));
    assert!(serde_json::from_str::<MetadataConfig>(r#"{"docker_dir":"/x"}"#).is_err());
}
