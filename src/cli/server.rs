//! `osprey server` and `osprey up`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use osprey::server::ServerConfig;
use osprey_collector::config::AgentConfig;
use osprey_collector::ship::RemoteWriteConfig;

use super::agent::{AgentArgs, print_config, runtime, shutdown_signal};
use super::config::ConfigFile;

/// Options of `osprey server`; each overrides the `[server]` table of the
/// config file (tokens and storage settings live only there).
#[derive(Debug, Args)]
pub struct ServerCommand {
    /// Address of the API and dashboard [default: 127.0.0.1:8080].
    #[arg(long, env = "OSPREY_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Where the server keeps its data [default: /var/lib/osprey/server].
    #[arg(long, env = "OSPREY_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
}

/// Options of `osprey up`: the server's address and data directory, the
/// agent's API address, and every agent option.
#[derive(Debug, Args)]
pub struct UpCommand {
    /// Address of the API and dashboard [default: 127.0.0.1:8080].
    #[arg(long, env = "OSPREY_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Where everything is kept [default: $XDG_DATA_HOME/osprey or
    /// ~/.local/share/osprey].
    #[arg(long, env = "OSPREY_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address of the agent's own API (`/metrics` in cAdvisor's names,
    /// `/api/v1/containers`) [default: 127.0.0.1:9101].
    #[arg(long, env = "OSPREY_AGENT_LISTEN", value_name = "ADDR")]
    pub agent_listen: Option<SocketAddr>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
    /// The agent's options.
    #[command(flatten)]
    pub agent: AgentArgs,
}

fn server_config(
    file: ServerConfig,
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
) -> ServerConfig {
    let mut c = file;
    if let Some(l) = listen {
        c.listen = l;
    }
    if let Some(d) = data_dir {
        c.data_dir = d;
    }
    c
}

/// Runs `osprey server`.
pub fn run_server(file: ConfigFile, cmd: ServerCommand) -> anyhow::Result<ExitCode> {
    let config = server_config(file.server, cmd.listen, cmd.data_dir);
    if cmd.print_config {
        #[derive(serde::Serialize)]
        struct Effective<'a> {
            server: &'a ServerConfig,
        }
        return print_config(&Effective { server: &config });
    }
    runtime()?.block_on(osprey::server::run(config, shutdown_signal()))?;
    Ok(ExitCode::SUCCESS)
}

/// The default data directory of `osprey up`.
fn up_data_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(x).join("osprey");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/share/osprey"),
        None => PathBuf::from("osprey-data"),
    }
}

/// Runs `osprey up`: the server, and an agent that ships to it over
/// loopback through the same remote-write path any node uses (so `up`
/// exercises exactly what a cluster runs, with the agent's durable queue).
pub fn run_up(file: ConfigFile, cmd: UpCommand) -> anyhow::Result<ExitCode> {
    let mut server_file = file.server;
    if server_file.data_dir == ServerConfig::default().data_dir {
        server_file.data_dir = up_data_dir();
    }
    let server = server_config(server_file, cmd.listen, cmd.data_dir.clone());
    let mut agent_file = file.agent;
    if agent_file.data_dir == AgentConfig::default().data_dir {
        agent_file.data_dir = server.data_dir.join("agent");
    }
    let mut agent = cmd.agent.apply(agent_file);
    if let Some(l) = cmd.agent_listen {
        agent.listen = l;
    }
    if agent.remote_write.is_none() {
        let token = server.tokens.iter().find(|t| {
            matches!(
                t.role,
                osprey::server::config::Role::Write | osprey::server::config::Role::Admin
            )
        });
        agent.remote_write = Some(RemoteWriteConfig {
            url: format!("http://{}/api/v1/write", loopback(server.listen)),
            bearer_token: token.and_then(|t| t.token.clone()),
            bearer_token_file: token.and_then(|t| t.token_file.clone()),
            ..RemoteWriteConfig::default()
        });
    }
    // Logs, when `[agent.logs]` is present, go to the same server unless
    // a receiver is named.
    if let Some(logs) = agent.logs.as_mut()
        && logs.url.trim().is_empty()
    {
        let token = server.tokens.iter().find(|t| {
            matches!(
                t.role,
                osprey::server::config::Role::Write | osprey::server::config::Role::Admin
            )
        });
        logs.url = format!("http://{}/loki/api/v1/push", loopback(server.listen));
        if logs.bearer_token.is_none() && logs.bearer_token_file.is_none() {
            logs.bearer_token = token.and_then(|t| t.token.clone());
            logs.bearer_token_file = token.and_then(|t| t.token_file.clone());
        }
    }
    if cmd.print_config {
        #[derive(serde::Serialize)]
        struct Effective<'a> {
            server: &'a ServerConfig,
            agent: &'a AgentConfig,
        }
        return print_config(&Effective {
            server: &server,
            agent: &agent,
        });
    }
    let rt = runtime()?;
    rt.block_on(async move {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        };
        let server_task = tokio::spawn(osprey::server::run(server.clone(), wait(stop_rx.clone())));
        // Let the server bind before the agent starts shipping to it.
        let url = format!("http://{}/readyz", loopback(server.listen));
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(loopback(server.listen)).await.is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        eprintln!(
            "osprey up: running on this node\n  dashboard:       http://{0}/\n  API (OpenAPI):   http://{0}/api/openapi.json\n  PromQL:          http://{0}/api/v1/query\n  Heapster model:  http://{0}/api/v1/model/\n  log search:      http://{0}/api/v1/logs/search (Loki push: http://{0}/loki/api/v1/push)\n  agent metrics:   http://{1}/metrics\n  data directory:  {2}\n  (ready check: {url})",
            server.listen,
            agent.listen,
            server.data_dir.display()
        );
        let agent_task = tokio::spawn(osprey_collector::agent::run(agent, wait(stop_rx)));
        shutdown_signal().await;
        let _ = stop_tx.send(true);
        let agent_result = agent_task.await.context("agent task")?;
        let server_result = server_task.await.context("server task")?;
        agent_result?;
        server_result?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The address to reach a listener on this machine (`0.0.0.0` → loopback).
fn loopback(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
    } else {
        addr
    }
}
