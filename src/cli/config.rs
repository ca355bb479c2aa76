//! The TOML configuration file.

use std::path::Path;

use anyhow::Context;
use osprey_collector::config::AgentConfig;
use serde::Deserialize;

/// The whole file. Every table is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConfigFile {
    /// `[agent]`: see [`AgentConfig`].
    pub agent: AgentConfig,
    /// `[server]`: see [`osprey::server::ServerConfig`].
    pub server: osprey::server::ServerConfig,
}

impl ConfigFile {
    /// Reads `path`, or the defaults when no file is given.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the config file {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("config file {} is not valid", path.display()))
    }
}
