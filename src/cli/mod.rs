//! Command-line interface: subcommands and their options.

pub mod agent;
pub mod config;
pub mod logging;
pub mod logs;
pub mod server;
pub mod tls;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Osprey: container monitoring and logging — a node agent, a time-series
/// server, a dashboard and alerts in one binary.
#[derive(Debug, Parser)]
#[command(name = "osprey", version, propagate_version = true)]
pub struct Cli {
    /// Options every subcommand takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every subcommand.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// TOML configuration file; its `[agent]` table configures the agent.
    /// Environment variables (`OSPREY_*`) and flags override it.
    #[arg(long, global = true, env = "OSPREY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log format: `human` (default) or `json` (one object per line).
    #[arg(long, global = true, env = "OSPREY_LOG_FORMAT", default_value = "human", value_parser = ["human", "json"])]
    pub log_format: String,
    /// Log filter: a level (`info`, `debug` …) or a tracing filter
    /// directive such as `osprey_collector=debug,info`.
    #[arg(long, global = true, env = "OSPREY_LOG", default_value = "info")]
    pub log_level: String,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the node agent: discover every cgroup, measure it, serve
    /// `/metrics` and the container API, ship samples by remote-write.
    Agent(agent::AgentCommand),
    /// Run the server: receive from agents, store, serve the APIs.
    Server(server::ServerCommand),
    /// Run the server and an agent on this node in one process: the
    /// command a new user runs.
    Up(server::UpCommand),
    /// Search and tail the server's logs.
    #[command(subcommand)]
    Logs(logs::LogsCommand),
    /// Inspect a storage data directory.
    #[command(subcommand)]
    Storage(StorageCommand),
    /// Print the version.
    Version,
    /// Read a password from standard input (one line) and print its Argon2
    /// hash for `password_hash` in `[[server.users]]`.
    HashPassword,
}

/// `osprey storage …`.
#[derive(Debug, Subcommand)]
pub enum StorageCommand {
    /// Print blocks, series, samples and bytes per sample of a data
    /// directory (the server's `<data-dir>/tsdb`). Read-only.
    Inspect {
        /// The storage directory.
        dir: PathBuf,
    },
}

/// Runs the chosen subcommand.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let file = config::ConfigFile::load(cli.global.config.as_deref())?;
    match cli.command {
        Command::Agent(cmd) => agent::run(file, cmd),
        Command::Server(cmd) => server::run_server(file, cmd),
        Command::Up(cmd) => server::run_up(file, cmd),
        Command::Logs(cmd) => logs::run(cmd),
        Command::Storage(StorageCommand::Inspect { dir }) => {
            let report = osprey::storage::inspect(&dir)
                .map_err(|e| anyhow::anyhow!("cannot inspect {}: {e}", dir.display()))?;
            print!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Version => {
            println!("osprey {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        Command::HashPassword => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            let password = line.trim_end_matches(['\r', '\n']);
            if password.is_empty() {
                anyhow::bail!("no password on standard input");
            }
            let hash = osprey::server::session::hash_password(password)
                .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?;
            println!("{hash}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
