//! `osprey`: one binary for the node agent, the server and `osprey up`.
//!
//! The binary is thin: it parses the command line, merges configuration
//! (TOML file < `OSPREY_*` environment < flags), sets up logging and hands
//! over to the library crates.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    if let Err(e) = cli::logging::init(&args.global) {
        eprintln!("osprey: {e}");
        return ExitCode::from(2);
    }
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("osprey: {e:#}");
            ExitCode::FAILURE
        }
    }
}
