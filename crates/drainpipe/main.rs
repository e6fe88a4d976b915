//! drainpipe: receives Heroku log drains and indexes every line, typed, into Elasticsearch.
//!
//! This binary is glue: it reads configuration, sets up logging, and wires the library crates
//! together (see ARCHITECTURE.md). Only here are `anyhow`, `clap` and a tracing subscriber used.

mod config;
mod frame_codec;
mod health;
mod metrics;
mod pipeline;
mod replay;
mod serve;
mod setup;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
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
    /// Print the effective configuration, secrets redacted; exit non-zero on problems
    CheckConfig(config::ServeArgs),
    /// Install or update the index templates (and, with --kibana-url, the Kibana objects)
    Setup(SetupArgs),
    /// Index files of Logplex bodies or `heroku logs` output (idempotent: replaying twice stores once)
    Replay(ReplayArgs),
}

#[derive(Args, Debug)]
struct SetupArgs {
    #[command(flatten)]
    common: config::ServeArgs,
    /// Also import the Kibana data view, searches and dashboard (credentials may be in the URL)
    #[arg(long, env = "DRAINPIPE_KIBANA_URL", value_name = "URL", hide_env_values = true)]
    kibana_url: Option<String>,
}

#[derive(Args, Debug)]
struct ReplayArgs {
    #[command(flatten)]
    common: config::ServeArgs,
    /// What the files hold
    #[arg(long, value_enum, default_value = "auto")]
    format: replay::ReplayFormat,
    /// The Heroku app the lines belong to (heroku.app)
    #[arg(long, value_name = "APP")]
    app: Option<String>,
    /// Files to index
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let env = |k: &str| std::env::var(k).ok();
    let result = match cli.command {
        Command::Serve(args) => config::ServeConfig::resolve(args, env).and_then(|config| {
            init_logging(config.log_format);
            let runtime = runtime()?;
            let result = runtime.block_on(serve::run(config));
            // Tasks still blocked (a stuck receiver, a file read) must not hold the exit.
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
            result
        }),
        Command::CheckConfig(args) => config::ServeConfig::resolve(args, env).and_then(check_config),
        Command::Setup(args) => config::ServeConfig::resolve(args.common, env).and_then(|config| {
            init_logging(config.log_format);
            runtime()?.block_on(run_setup(config, args.kibana_url))
        }),
        Command::Replay(args) => config::ServeConfig::resolve(args.common, env).and_then(|config| {
            init_logging(config.log_format);
            runtime()?.block_on(replay::run(config, args.files, args.format, args.app))
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

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

/// Prints the configuration and checks what can be checked without serving: certificates,
/// the spool folder, the Elasticsearch options.
fn check_config(config: config::ServeConfig) -> anyhow::Result<()> {
    #[allow(clippy::print_stdout)]
    {
        print!("{}", config.to_redacted_toml());
    }
    let mut problems = Vec::new();
    if let Some(tls) = &config.tls {
        if let Err(e) = drainpipe_ingest::ReloadableCert::load(&tls.cert, &tls.key) {
            problems.push(e.to_string());
        }
    }
    if let Some(spool) = &config.spool {
        let probe = spool.dir.join(".drainpipe-check");
        let writable = std::fs::create_dir_all(&spool.dir)
            .and_then(|()| std::fs::write(&probe, b""))
            .and_then(|()| std::fs::remove_file(&probe));
        if let Err(e) = writable {
            problems.push(format!("spool-dir {} is not writable: {e}", spool.dir.display()));
        }
    }
    if let Err(e) = config.elasticsearch() {
        problems.push(format!("{e:#}"));
    }
    if problems.is_empty() {
        eprintln!("configuration OK");
        return Ok(());
    }
    for p in &problems {
        eprintln!("problem: {p}");
    }
    anyhow::bail!("{} problem(s) in the configuration", problems.len())
}

/// `drainpipe setup`: what Elasticsearch (and Kibana) need, installed idempotently; one line
/// per thing, saying whether it was created, updated, left unchanged or skipped.
async fn run_setup(config: config::ServeConfig, kibana_url: Option<String>) -> anyhow::Result<()> {
    let client = config.elasticsearch()?;
    let (_, mut changes) = setup::install(&client, config.retention.as_ref())
        .await
        .with_context(|| format!("setup against {}", client.url()))?;
    if config.retention.is_none() {
        changes.push(setup::Change::Skipped(
            "retention".into(),
            "no --retention given; the installed lifecycle (if any) is kept".into(),
        ));
    }
    match kibana_url {
        Some(url) => changes.push(setup::import_kibana(&url).await?),
        None => changes.push(setup::Change::Skipped("Kibana objects".into(), "no --kibana-url given".into())),
    }
    #[allow(clippy::print_stdout)]
    for c in changes {
        println!("{c}");
    }
    Ok(())
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
