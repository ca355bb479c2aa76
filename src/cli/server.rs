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
use super::tls::ListenerTlsArgs;

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
    /// HTTPS on the API and dashboard.
    #[command(flatten)]
    pub tls: ListenerTlsArgs,
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
    /// HTTPS on the API and dashboard, and on the agent's API.
    #[command(flatten)]
    pub tls: ListenerTlsArgs,
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
    tls: &ListenerTlsArgs,
) -> anyhow::Result<ServerConfig> {
    let mut c = file;
    if let Some(l) = listen {
        c.listen = l;
    }
    if let Some(d) = data_dir {
        c.data_dir = d;
    }
    c.tls = tls.apply(c.tls.take())?;
    Ok(c)
}

/// Runs `osprey server`.
pub fn run_server(file: ConfigFile, cmd: ServerCommand) -> anyhow::Result<ExitCode> {
    let config = server_config(file.server, cmd.listen, cmd.data_dir, &cmd.tls)?;
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
    let server = server_config(server_file, cmd.listen, cmd.data_dir.clone(), &cmd.tls)?;
    let mut agent_file = file.agent;
    if agent_file.data_dir == AgentConfig::default().data_dir {
        agent_file.data_dir = server.data_dir.join("agent");
    }
    let mut agent = cmd.agent.apply(agent_file)?;
    if let Some(l) = cmd.agent_listen {
        agent.listen = l;
    }
    // Every listener of `up` speaks the server's TLS unless `[agent.tls]`
    // gives the agent's API its own certificate.
    if agent.tls.cert_file.is_none() && server.tls.is_some() {
        super::agent::set_listener_tls(&mut agent, server.tls.clone());
    }
    let scheme = if server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    // The agent reaches its own server on loopback, a name the server's
    // certificate need not carry: it trusts exactly that certificate.
    let own_server_tls = |agent: &mut AgentConfig| -> anyhow::Result<()> {
        let Some(tls) = &server.tls else {
            return Ok(());
        };
        agent.tls.pinned_server_cert = Some(tls.cert_file.clone());
        if let Some(ca) = &tls.client_ca_file
            && (agent.tls.client_cert.is_none() || agent.tls.client_key.is_none())
        {
            anyhow::bail!(
                "the server requires client certificates (--tls-client-ca {}), so the agent of `osprey up` needs one too: give --client-cert and --client-key (a certificate signed by that CA)",
                ca.display()
            );
        }
        Ok(())
    };
    if agent.remote_write.is_none() {
        let token = server.tokens.iter().find(|t| {
            matches!(
                t.role,
                osprey::server::config::Role::Write | osprey::server::config::Role::Admin
            )
        });
        own_server_tls(&mut agent)?;
        agent.remote_write = Some(RemoteWriteConfig {
            url: format!("{scheme}://{}/api/v1/write", loopback(server.listen)),
            bearer_token: token.and_then(|t| t.token.clone()),
            bearer_token_file: token.and_then(|t| t.token_file.clone()),
            ..RemoteWriteConfig::default()
        });
    }
    // Logs, when `[agent.logs]` is present, go to the same server unless
    // a receiver is named.
    if agent
        .logs
        .as_ref()
        .is_some_and(|logs| logs.url.trim().is_empty())
    {
        own_server_tls(&mut agent)?;
    }
    if let Some(logs) = agent.logs.as_mut()
        && logs.url.trim().is_empty()
    {
        let token = server.tokens.iter().find(|t| {
            matches!(
                t.role,
                osprey::server::config::Role::Write | osprey::server::config::Role::Admin
            )
        });
        logs.url = format!("{scheme}://{}/loki/api/v1/push", loopback(server.listen));
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
        let url = format!("{scheme}://{}/readyz", loopback(server.listen));
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(loopback(server.listen)).await.is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        eprintln!(
            "osprey up: running on this node\n  dashboard:       {scheme}://{0}/\n  API (OpenAPI):   {scheme}://{0}/api/openapi.json\n  PromQL:          {scheme}://{0}/api/v1/query\n  Heapster model:  {scheme}://{0}/api/v1/model/\n  log search:      {scheme}://{0}/api/v1/logs/search (Loki push: {scheme}://{0}/loki/api/v1/push)\n  agent metrics:   {scheme}://{1}/metrics\n  data directory:  {2}\n  (ready check: {url})",
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
