//! `deploy/kubernetes/`: the kustomization names every manifest; every
//! object passes the Kubernetes schemas offline (`kubernetes-validate
//! --strict`, PyPI); `kubectl apply --dry-run=client -k` accepts it; and
//! what the manifests say about the binaries is true of the real ones: the
//! ConfigMaps' TOML is accepted, the probe paths answer 200 on the ports
//! the containers declare, the agent pushes to the server with the
//! Secret's write token, and its memory stays under its limit.
//!
//! `kubectl` and `kubernetes-validate` are installed by `.ci/run`; a
//! missing one fails these tests.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::*;
use osprey_collector::fixture::{CgroupValues, FixtureTree, paths};
use serde_json::{Value, json};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes")
}

/// A tool `.ci/run` installs; its absence fails the test loudly.
fn tool(name: &str) -> Command {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{name}` is not on PATH: run `bash .ci/run` (it installs kubectl and the pinned kubernetes-validate)"
    );
    Command::new(name)
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Every manifest file (not the kustomization) and its objects.
fn manifests() -> BTreeMap<String, Vec<Value>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(deploy_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if !name.ends_with(".yaml") || name == "kustomization.yaml" {
            continue;
        }
        out.insert(
            name,
            parse_yaml_stream(&std::fs::read_to_string(&path).unwrap()),
        );
    }
    out
}

fn parse_yaml_stream(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("valid YAML"))
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn kustomization() -> Value {
    serde_yaml_ng::from_str(
        &std::fs::read_to_string(deploy_dir().join("kustomization.yaml")).unwrap(),
    )
    .unwrap()
}

/// `kubectl kustomize deploy/kubernetes`.
fn rendered() -> String {
    let out = run(tool("kubectl").arg("kustomize").arg(deploy_dir()));
    assert!(
        out.status.success(),
        "kubectl kustomize failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn object<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind}/{name} in the manifests"))
}

fn all_objects() -> Vec<Value> {
    manifests().into_values().flatten().collect()
}

fn key(o: &Value) -> String {
    format!(
        "{}/{}",
        o["kind"].as_str().unwrap(),
        o["metadata"]["name"].as_str().unwrap()
    )
}

#[test]
fn the_kustomization_names_every_manifest_and_renders_every_object() {
    let files: BTreeSet<String> = manifests().keys().cloned().collect();
    let listed: BTreeSet<String> = kustomization()["resources"]
        .as_array()
        .expect("a resources list")
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        files, listed,
        "kustomization.yaml's resources must list exactly the manifest files"
    );

    let want: BTreeSet<String> = all_objects().iter().map(key).collect();
    let got: BTreeSet<String> = parse_yaml_stream(&rendered()).iter().map(key).collect();
    assert_eq!(got, want);
    for kind in [
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "DaemonSet",
        "StatefulSet",
        "Service",
        "ConfigMap",
        "Secret",
        "PriorityClass",
    ] {
        assert!(
            want.iter().any(|k| k.starts_with(&format!("{kind}/"))),
            "a {kind} is deployed"
        );
    }
}

fn kubernetes_validate(files: &[&Path]) -> Output {
    run(tool("kubernetes-validate")
        .args(["--strict", "--kubernetes-version", "1.31.0"])
        .args(files))
}

#[test]
fn every_manifest_passes_the_kubernetes_schemas_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let rendered_file = tmp.path().join("rendered.yaml");
    std::fs::write(&rendered_file, rendered()).unwrap();
    let mut files: Vec<PathBuf> = manifests().keys().map(|f| deploy_dir().join(f)).collect();
    files.push(rendered_file);
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let out = kubernetes_validate(&refs);
    let report =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "schema validation failed:\n{report}");
    let passed = report.matches(" passed for resource ").count();
    assert_eq!(
        passed,
        2 * all_objects().len(),
        "every object validated, from its file and rendered:\n{report}"
    );

    // The validator is strict: a misspelt field in the DaemonSet fails.
    let mut broken = object(&all_objects(), "DaemonSet", "osprey-agent").clone();
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] =
        json!({"httpGet": {"path": "/healthz", "port": "http"}});
    let broken_file = tmp.path().join("broken.yaml");
    std::fs::write(&broken_file, serde_yaml_ng::to_string(&broken).unwrap()).unwrap();
    let out = kubernetes_validate(&[&broken_file]);
    assert!(!out.status.success(), "an unknown field must fail");
}

/// Discovery documents for the kinds the manifests use: what `kubectl
/// apply` asks an API server for before it can map a manifest to a
/// resource. A manifest of any other kind fails the dry run with "unable
/// to recognize": add its resource here when adding one.
fn discovery() -> BTreeMap<&'static str, Value> {
    fn resources(group_version: &str, list: &[(&str, &str, bool)]) -> Value {
        json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": list.iter().map(|(name, kind, namespaced)| json!({
                "name": name,
                "singularName": kind.to_lowercase(),
                "namespaced": namespaced,
                "kind": kind,
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
            })).collect::<Vec<_>>(),
        })
    }
    let group = |name: &str| {
        json!({
            "name": name,
            "versions": [{"groupVersion": format!("{name}/v1"), "version": "v1"}],
            "preferredVersion": {"groupVersion": format!("{name}/v1"), "version": "v1"},
        })
    };
    BTreeMap::from([
        ("/api", json!({"kind": "APIVersions", "versions": ["v1"]})),
        (
            "/apis",
            json!({"kind": "APIGroupList", "apiVersion": "v1",
                   "groups": [group("apps"), group("rbac.authorization.k8s.io"),
                              group("scheduling.k8s.io")]}),
        ),
        (
            "/api/v1",
            resources(
                "v1",
                &[
                    ("namespaces", "Namespace", false),
                    ("serviceaccounts", "ServiceAccount", true),
                    ("configmaps", "ConfigMap", true),
                    ("secrets", "Secret", true),
                    ("services", "Service", true),
                ],
            ),
        ),
        (
            "/apis/apps/v1",
            resources(
                "apps/v1",
                &[
                    ("daemonsets", "DaemonSet", true),
                    ("statefulsets", "StatefulSet", true),
                ],
            ),
        ),
        (
            "/apis/scheduling.k8s.io/v1",
            resources(
                "scheduling.k8s.io/v1",
                &[("priorityclasses", "PriorityClass", false)],
            ),
        ),
        (
            "/apis/rbac.authorization.k8s.io/v1",
            resources(
                "rbac.authorization.k8s.io/v1",
                &[
                    ("clusterroles", "ClusterRole", false),
                    ("clusterrolebindings", "ClusterRoleBinding", false),
                ],
            ),
        ),
    ])
}

/// An empty cluster for `kubectl`: answers discovery, and 404 for every
/// object (nothing exists yet, so a client-side dry run "creates" all).
/// Returns its URL.
fn start_empty_cluster() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let docs = discovery();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(&stream);
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            loop {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if line == "\r\n" => break,
                    Ok(_) => {}
                }
            }
            let target = request.split_whitespace().nth(1).unwrap_or("/");
            let path = target.split('?').next().unwrap();
            let (status, body) = match docs.get(path) {
                Some(doc) => ("200 OK", doc.to_string()),
                None => (
                    "404 Not Found",
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                           "reason": "NotFound", "code": 404})
                    .to_string(),
                ),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

fn kubectl_dry_run(server: &str, cache: &Path, source: &[&str]) -> Output {
    // --validate=false: kubectl's own validation downloads the OpenAPI
    // document from the API server, and there is no API server here; the
    // same schemas are checked offline by kubernetes-validate above.
    run(tool("kubectl")
        .env("KUBECONFIG", "/dev/null")
        .args(["--server", server, "--cache-dir"])
        .arg(cache)
        .args(["apply", "--dry-run=client", "--validate=false"])
        .args(source))
}

#[test]
fn kubectl_client_dry_run_accepts_the_kustomization() {
    let server = start_empty_cluster();
    let tmp = tempfile::tempdir().unwrap();
    let dir = deploy_dir();
    let out = kubectl_dry_run(&server, tmp.path(), &["-k", dir.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kubectl apply --dry-run=client -k failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let objects = all_objects();
    assert_eq!(
        stdout.matches("created (dry run)").count(),
        objects.len(),
        "{stdout}"
    );
    for o in &objects {
        let name = o["metadata"]["name"].as_str().unwrap();
        assert!(
            stdout.contains(&format!("/{name} created (dry run)")),
            "{stdout}"
        );
    }

    // The same kubectl refuses what it cannot map (so acceptance means
    // something).
    let bogus = tmp.path().join("bogus.yaml");
    std::fs::write(
        &bogus,
        "apiVersion: apps/v1\nkind: Deploymnet\nmetadata:\n  name: x\n  namespace: osprey\n",
    )
    .unwrap();
    let out = kubectl_dry_run(&server, tmp.path(), &["-f", bogus.to_str().unwrap()]);
    assert!(!out.status.success());
}

/// The `osprey.toml` of a ConfigMap.
fn config_toml(objects: &[Value], name: &str) -> String {
    object(objects, "ConfigMap", name)["data"]["osprey.toml"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn container<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    &object(objects, kind, name)["spec"]["template"]["spec"]["containers"][0]
}

/// The container port called `name`.
fn named_port(container: &Value, name: &str) -> u16 {
    container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no port {name}"))["containerPort"]
        .as_u64()
        .unwrap() as u16
}

/// Every HTTP probe's (path, port name).
fn probes(container: &Value) -> Vec<(String, String)> {
    ["startupProbe", "readinessProbe", "livenessProbe"]
        .iter()
        .filter_map(|p| container.get(*p))
        .map(|p| {
            (
                p["httpGet"]["path"].as_str().unwrap().to_owned(),
                p["httpGet"]["port"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Mebibytes of a Kubernetes memory quantity (`64Mi`, `2Gi`).
fn mebibytes(quantity: &str) -> u64 {
    if let Some(n) = quantity.strip_suffix("Mi") {
        n.parse().unwrap()
    } else if let Some(n) = quantity.strip_suffix("Gi") {
        n.parse::<u64>().unwrap() * 1024
    } else {
        panic!("unexpected memory quantity {quantity}")
    }
}

fn listen_port(toml_text: &str, table: &str) -> u16 {
    let v: toml::Value = toml::from_str(toml_text).unwrap();
    v[table]["listen"]
        .as_str()
        .unwrap()
        .rsplit_once(':')
        .unwrap()
        .1
        .parse()
        .unwrap()
}

/// The binary accepts both ConfigMaps' configuration files as they are.
#[test]
fn the_configmaps_are_accepted_by_the_binary() {
    let objects = all_objects();
    let tmp = tempfile::tempdir().unwrap();
    for (name, command) in [("osprey-agent", "agent"), ("osprey-server", "server")] {
        let file = tmp.path().join(format!("{name}.toml"));
        std::fs::write(&file, config_toml(&objects, name)).unwrap();
        let out = run(osprey()
            .arg("--config")
            .arg(&file)
            .args([command, "--print-config"]));
        assert!(
            out.status.success(),
            "{name}'s config is refused: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let effective = String::from_utf8(out.stdout).unwrap();
        if command == "agent" {
            assert!(
                effective.contains(r#"kubernetes_api = "in-cluster""#),
                "{effective}"
            );
        }
    }
}

/// The server and the agent, started with the ConfigMaps' files (host
/// paths pointed at this test's directories), serve the probe paths on the
/// ports the manifests declare; the agent pushes to the server with the
/// write token, the read token queries it, and the agent's memory stays
/// under its limit.
#[test]
fn the_binaries_serve_what_the_manifests_expect() {
    let objects = all_objects();
    let tmp = tempfile::tempdir().unwrap();
    let logs = artifact_dir("deploy_manifests");

    // The Secret's keys, as the pods mount them, with real values.
    let tokens = tmp.path().join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let secret = object(&objects, "Secret", "osprey-tokens");
    let keys: Vec<String> = secret["stringData"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    for k in &keys {
        std::fs::write(tokens.join(k), format!("{k}-token-0123456789abcdef\n")).unwrap();
    }

    // The server: its ConfigMap's TOML, token files where the test put
    // the Secret.
    let server_toml = config_toml(&objects, "osprey-server");
    let server_c = container(&objects, "StatefulSet", "osprey-server");
    assert_eq!(
        listen_port(&server_toml, "server"),
        named_port(server_c, "http"),
        "the server listens on its containerPort"
    );
    let service = object(&objects, "Service", "osprey-server");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "http");
    let server_file = tmp.path().join("server.toml");
    std::fs::write(
        &server_file,
        server_toml.replace("/etc/osprey/tokens/", &format!("{}/", tokens.display())),
    )
    .unwrap();
    let server = ServerProcess::start(&tmp.path().join("server-data"), Some(&server_file), &logs);
    let server_probes = probes(server_c);
    assert!(server_probes.iter().any(|(p, _)| p == "/readyz"));
    assert!(server_probes.iter().any(|(p, _)| p == "/livez"));
    for (path, port) in &server_probes {
        assert_eq!(port, "http");
        // Tokens are configured, yet the probes (sent without one) pass.
        let (status, body) = get(&format!("{}{path}", server.base)).unwrap();
        assert_eq!(status, 200, "server {path}: {body}");
    }

    // The agent: its ConfigMap's TOML, over a fixture tree instead of the
    // host mounts, pushing to that server with the write token.
    let agent_toml = config_toml(&objects, "osprey-agent");
    let agent_c = container(&objects, "DaemonSet", "osprey-agent");
    assert_eq!(
        listen_port(&agent_toml, "agent"),
        named_port(agent_c, "http"),
        "the agent listens on its containerPort"
    );
    let agent_file = tmp.path().join("agent.toml");
    std::fs::write(&agent_file, &agent_toml).unwrap();
    let tree = FixtureTree::v2().unwrap();
    tree.add_cgroup(
        &paths::kubepods_systemd(
            paths::Qos::Burstable,
            &paths::pod_uid(1),
            paths::Runtime::Containerd,
            &paths::container_id(1),
        ),
        &CgroupValues::sample(1),
    )
    .unwrap();
    let t = tmp.path();
    let path = |p: PathBuf| p.to_str().unwrap().to_owned();
    let (cgroup_root, rootfs, docker, pods, containers, data, token) = (
        path(tree.root().to_path_buf()),
        path(t.join("rootfs")),
        path(t.join("docker")),
        path(t.join("pods")),
        path(t.join("containers")),
        path(t.join("agent-data")),
        path(tokens.join("write")),
    );
    let remote_write = format!("{}/api/v1/write", server.base);
    let logs_url = format!("{}/loki/api/v1/push", server.base);
    let agent = AgentProcess::start(
        &[
            "--config",
            &agent_file.to_string_lossy(),
            "--interval",
            "1s",
            "--node-name",
            "node-1",
            "--cgroup-root",
            &cgroup_root,
            "--proc-root",
            "/proc",
            "--rootfs",
            &rootfs,
            "--docker-root",
            &docker,
            "--pod-log-root",
            &pods,
            "--container-log-root",
            &containers,
            "--data-dir",
            &data,
            "--remote-write",
            &remote_write,
            "--logs-url",
            &logs_url,
            "--token-file",
            &token,
        ],
        &logs,
    );
    let agent_probes = probes(agent_c);
    assert!(!agent_probes.is_empty());
    for (path, port) in &agent_probes {
        assert_eq!(port, "http");
        let (status, body) = get(&format!("{}{path}", agent.base)).unwrap();
        assert_eq!(status, 200, "agent {path}: {body}");
    }

    // The write token delivers; the read token reads it back.
    let read_token = std::fs::read_to_string(tokens.join("read")).unwrap();
    let client = reqwest::blocking::Client::new();
    let query = format!(
        "{}/api/v1/query?query=count(container_memory_usage_bytes%7Bnode%3D%22node-1%22%7D)",
        server.base
    );
    wait_for(Duration::from_secs(30), "the agent's samples", || {
        let r = client
            .get(&query)
            .bearer_auth(read_token.trim())
            .send()
            .ok()?;
        let v: Value = r.json().ok()?;
        let result = v["data"]["result"].as_array()?.first()?.clone();
        Some(result)
    });

    // Memory: the agent's high-water mark over a few collections stays
    // well under the DaemonSet's limit, which also covers the queue.
    let limits = &agent_c["resources"]["limits"];
    let requests = &agent_c["resources"]["requests"];
    let limit = mebibytes(limits["memory"].as_str().unwrap());
    let request = mebibytes(requests["memory"].as_str().unwrap());
    assert!(request <= limit);
    let v: toml::Value = toml::from_str(&agent_toml).unwrap();
    let queue_mib = v["agent"]["remote_write"]["memory_bytes"]
        .as_integer()
        .unwrap() as u64
        >> 20;
    let status = std::fs::read_to_string(format!("/proc/{}/status", agent.guard.pid())).unwrap();
    let hwm_mib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .unwrap()
        >> 10;
    assert!(
        hwm_mib + queue_mib < limit,
        "agent peak RSS {hwm_mib} MiB + queue {queue_mib} MiB must fit the {limit} MiB limit"
    );
}

/// The image build file is not built in CI (no container registry); this
/// keeps it in step with the workspace: the Rust image is the workspace's
/// `rust-version` or later, the build is `--locked` release of `osprey`,
/// the runtime user is not root, and the image that the manifests run is
/// the one it makes (`ENTRYPOINT ["osprey"]`, args starting at the
/// global options).
#[test]
fn the_containerfile_matches_the_workspace_and_the_manifests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let containerfile = std::fs::read_to_string(root.join("deploy/Containerfile")).unwrap();
    let cargo: toml::Value =
        toml::from_str(&std::fs::read_to_string(root.join("Cargo.toml")).unwrap()).unwrap();
    let rust_version = cargo["workspace"]["package"]["rust-version"]
        .as_str()
        .unwrap();
    let version = |v: &str| -> Vec<u32> { v.split('.').map(|p| p.parse().unwrap()).collect() };
    let image_version = containerfile
        .lines()
        .find_map(|l| l.strip_prefix("FROM docker.io/library/rust:"))
        .and_then(|rest| rest.split(['-', ' ']).next())
        .expect("a pinned rust build image");
    assert!(
        version(image_version) >= version(rust_version),
        "rust:{image_version} is older than rust-version {rust_version}"
    );
    assert!(containerfile.contains("cargo build --release --locked --bin osprey"));
    let user = containerfile
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER in the runtime stage");
    assert!(
        !user.starts_with('0') && !user.starts_with("root"),
        "{user}"
    );
    assert!(containerfile.contains(r#"ENTRYPOINT ["osprey"]"#));

    let objects = all_objects();
    let uid: u64 = user.split(':').next().unwrap().parse().unwrap();
    let server = object(&objects, "StatefulSet", "osprey-server");
    assert_eq!(
        server["spec"]["template"]["spec"]["securityContext"]["runAsUser"], uid,
        "the server runs as the image's user"
    );
    for (kind, name, command) in [
        ("StatefulSet", "osprey-server", "server"),
        ("DaemonSet", "osprey-agent", "agent"),
    ] {
        let c = container(&objects, kind, name);
        assert_eq!(
            c["image"].as_str().unwrap().split(':').next(),
            Some("osprey")
        );
        let args: Vec<&str> = c["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(args, ["--config", "/etc/osprey/osprey.toml", command]);
        assert!(c.get("command").is_none(), "the image's entrypoint is used");
    }
}
