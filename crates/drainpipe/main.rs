//! drainpipe: receives Heroku log drains and indexes every line, typed, into Elasticsearch.
//!
//! This binary is glue: it reads configuration, sets up logging, and wires the library crates
//! together (see ARCHITECTURE.md). Only here are `anyhow`, `clap` and a tracing subscriber used.

mod config;
mod frame_codec;
mod metrics;
mod pipeline;
mod serve;
mod setup;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser, Debug)]
#[command(name = "drainpipe", version, about = "Heroku log drains into Elasticsearch")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Receive drains (POST /logs) and index them
    Serve(config::ServeArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("DRAINPIPE_LOG").unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match cli.command {
        Command::Serve(args) => config::ServeConfig::resolve(args, |k| std::env::var(k).ok()).and_then(|config| {
            tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(serve::run(config))
        }),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
