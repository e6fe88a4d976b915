//! drainpipe: receives Heroku log drains and indexes every line, typed, into Elasticsearch.
//!
//! This binary is glue: it reads configuration, sets up logging, and wires the library crates
//! together (see ARCHITECTURE.md). Only here are `anyhow`, `clap` and a tracing subscriber used.

mod admin;
mod config;
mod frame_codec;
mod health;
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
    let result = match cli.command {
        Command::Serve(args) => config::ServeConfig::resolve(args, |k| std::env::var(k).ok()).and_then(|config| {
            init_logging(config.log_format);
            tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(serve::run(config))
        }),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Logging may not be set up yet (a configuration error): say it plainly.
            eprintln!("drainpipe: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `tracing` to standard error, filtered by `DRAINPIPE_LOG` (default `info`).
fn init_logging(format: config::LogFormat) {
    let filter = EnvFilter::try_from_env("DRAINPIPE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        config::LogFormat::Text => builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
        config::LogFormat::Json => builder.json().with_current_span(false).init(),
    }
}
