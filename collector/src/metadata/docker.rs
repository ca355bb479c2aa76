//! Docker's own record of a container, read from its state directory
//! (`<docker-root>/containers/<id>/config.v2.json` and `hostconfig.json`)
//! instead of asking the daemon.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use serde::Deserialize;

use super::MetadataError;

/// What the agent uses of a Docker container's record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerContainer {
    /// The container name without Docker's leading `/` (`nginx`, or for
    /// dockershim-era Kubernetes `k8s_<ctr>_<pod>_<ns>_<uid>_<n>`).
    pub name: String,
    /// The image as the user wrote it (`Config.Image`, e.g. `nginx:1.25`).
    pub image: String,
    /// `Config.Labels`: image labels, user labels and, under Kubernetes,
    /// `io.kubernetes.*`.
    pub labels: BTreeMap<String, String>,
    /// The init process (`State.Pid`); `None` when not running.
    pub pid: Option<u32>,
    /// `HostConfig.NetworkMode` (`bridge`, `host`, `container:<id>`, …),
    /// when `hostconfig.json` is readable.
    pub network_mode: Option<String>,
}

impl DockerContainer {
    /// Whether the container joins another container's network namespace
    /// (`--network container:<id>`; every non-sandbox container of a
    /// dockershim/cri-dockerd pod).
    pub fn shares_another_netns(&self) -> bool {
        self.network_mode
            .as_deref()
            .is_some_and(|m| m.starts_with("container:"))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ConfigV2 {
    #[serde(default)]
    name: String,
    #[serde(default)]
    config: Option<Config>,
    #[serde(default)]
    state: Option<State>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Config {
    #[serde(default)]
    image: String,
    // `null` when the container has no labels.
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct State {
    #[serde(default)]
    pid: i64,
    #[serde(default)]
    running: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HostConfig {
    #[serde(default)]
    network_mode: Option<String>,
}

/// Reads container `id`'s record under `docker_root` (usually
/// `/var/lib/docker`). `Ok(None)` when Docker has no such container (the
/// id belongs to another runtime); an error when the record exists but
/// cannot be read or parsed.
pub fn read_container(
    docker_root: &Path,
    id: &str,
) -> Result<Option<DockerContainer>, MetadataError> {
    let dir = docker_root.join("containers").join(id);
    let config_path = dir.join("config.v2.json");
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
    let config: ConfigV2 =
        serde_json::from_slice(&text).map_err(|source| MetadataError::Parse {
            path: config_path,
            source,
        })?;

    // hostconfig.json only adds the network mode: without it the
    // container is still named.
    let host_config_path = dir.join("hostconfig.json");
    let network_mode = match fs::read(&host_config_path) {
        Ok(text) => match serde_json::from_slice::<HostConfig>(&text) {
            Ok(host) => host.network_mode.filter(|m| !m.is_empty()),
            Err(e) => {
                tracing::warn!(path = %host_config_path.display(), error = %e, "cannot parse Docker hostconfig.json; network mode unknown");
                None
            }
        },
        Err(_) => None,
    };

    let (image, labels) = config
        .config
        .map(|c| (c.image, c.labels.unwrap_or_default()))
        .unwrap_or_default();
    let pid = config
        .state
        .filter(|s| s.running)
        .and_then(|s| u32::try_from(s.pid).ok())
        .filter(|pid| *pid > 0);
    Ok(Some(DockerContainer {
        name: config.name.trim_start_matches('/').to_owned(),
        image,
        labels,
        pid,
        network_mode,
    }))
}
