//! drainpipe: receives Heroku log drains and indexes every line, typed, into Elasticsearch.
//!
//! This binary is glue: it reads configuration, sets up logging, and wires the library crates
//! together (see ARCHITECTURE.md). Only here are `anyhow`, `clap` and a tracing subscriber used.

mod config;
mod deadletter;
mod frame_codec;
mod health;
mod healthcheck;
mod metrics;
mod online;
mod panic_guard;
mod pipeline;
mod replay;
mod search;
mod serve;
mod setup;
mod supervise;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::config::{BulkOptions, ElasticsearchOptions, GeneralOptions, LogFormat, ServeOptions};

#[derive(Parser, Debug)]
#[command(name = "drainpipe", version = version(), about = "Heroku log drains into Elasticsearch")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Receive drains (POST /logs) and index them
    Serve(ServeOptions),
    /// Print the effective configuration, secrets redacted; exit 78 on problems
    CheckConfig(CheckConfigArgs),
    /// Install or update the index templates (and, with --kibana-url, the Kibana objects)
    Setup(SetupArgs),
    /// Index files of Logplex bodies or `heroku logs` output (idempotent: replaying twice stores once)
    Replay(ReplayArgs),
    /// Print matching lines as they arrive, as `heroku logs --tail` does, from the last N
    Tail(search::TailArgs),
    /// Print every line matching the filters in a time range, oldest first
    Search(search::SearchArgs),
    /// List dead letters by reason, or send them again once the cause is fixed
    Deadletter(deadletter::DeadLetterArgs),
    /// Exit 0 when the drainpipe serving here answers /healthz (for container health checks)
    Healthcheck(healthcheck::HealthcheckArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions {
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), or write one per command into a folder
    Man {
        /// Write drainpipe.1 and drainpipe-<command>.1 here instead
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// `0.1.0 (git 1a2b3c4d5e6f, x86_64-unknown-linux-gnu, static)`: what was built, from which
/// commit, and whether it needs the C library at run time.
fn version() -> String {
    let linkage = if cfg!(target_feature = "crt-static") { "static" } else { "dynamic" };
    format!(
        "{} (git {}, {}, {linkage})",
        env!("CARGO_PKG_VERSION"),
        env!("DRAINPIPE_GIT_REV"),
        env!("DRAINPIPE_TARGET")
    )
}

#[derive(Args, Debug)]
struct CheckConfigArgs {
    #[command(flatten)]
    serve: ServeOptions,
    /// Also ask each Elasticsearch node: it answers, takes the credentials, grants the
    /// privileges drainpipe needs; and whether the index templates are current. Changes nothing
    #[arg(long)]
    online: bool,
}

#[derive(Args, Debug)]
struct SetupArgs {
    #[command(flatten)]
    general: GeneralOptions,
    #[command(flatten)]
    elasticsearch: ElasticsearchOptions,
    /// Also import the Kibana data view, searches and dashboard (credentials may be in the URL)
    #[arg(long, value_name = "URL", hide_env_values = true)]
    kibana_url: Option<String>,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    #[command(flatten)]
    general: GeneralOptions,
    #[command(flatten)]
    pub elasticsearch: ElasticsearchOptions,
    #[command(flatten)]
    pub bulk: BulkOptions,
    /// What the files hold
    #[arg(long, value_enum, default_value = "auto")]
    pub format: replay::ReplayFormat,
    /// The Heroku app the lines belong to (heroku.app)
    #[arg(long, value_name = "APP")]
    pub app: Option<String>,
    /// Files to index
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// A failure with an exit code of its own: [`USAGE`] for options that cannot go together (like
/// a value clap refuses), [`EX_CONFIG`] for problems `check-config` found. Others exit 1.
#[derive(Debug)]
struct Exit {
    code: u8,
    message: String,
}

/// Options that cannot be used: clap's own exit code for them.
const USAGE: u8 = 2;
/// sysexits.h's "configuration error": what `check-config` exits with when it finds problems.
const EX_CONFIG: u8 = 78;

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let cli: Cli = config::parse(&args, |k| std::env::var(k).ok()).unwrap_or_else(|e| e.exit());
    let log_format = match &cli.command {
        Command::Serve(o) => o.general.log_format,
        Command::CheckConfig(a) => a.serve.general.log_format,
        Command::Setup(a) => a.general.log_format,
        Command::Replay(a) => a.general.log_format,
        Command::Deadletter(a) => a.action.general().log_format,
        Command::Tail(a) => a.filters.general.log_format,
        Command::Search(a) => a.filters.general.log_format,
        Command::Healthcheck(_) | Command::Completions { .. } | Command::Man { .. } => LogFormat::Text,
    };
    init_logging(log_format);
    panic_guard::install_hook();
    let result = match cli.command {
        Command::Serve(options) => serve(options),
        Command::CheckConfig(args) => check_config(&args),
        Command::Setup(args) => runtime().and_then(|r| r.block_on(run_setup(args))),
        Command::Replay(args) => runtime().and_then(|r| r.block_on(replay::run(args))),
        Command::Deadletter(args) => runtime().and_then(|r| r.block_on(deadletter::run(args.action))),
        Command::Tail(args) => runtime().and_then(|r| r.block_on(search::tail(args))),
        Command::Search(args) => runtime().and_then(|r| r.block_on(search::search(args))),
        Command::Healthcheck(args) => runtime().and_then(|r| r.block_on(healthcheck::run(&args))),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut config::command::<Cli>(), "drainpipe", &mut script);
            print_all(&script)
        }
        Command::Man { dir: None } => {
            let mut page = Vec::new();
            clap_mangen::Man::new(config::command::<Cli>())
                .render(&mut page)
                .map_err(anyhow::Error::from)
                .and_then(|()| print_all(&page))
        }
        Command::Man { dir: Some(dir) } => std::fs::create_dir_all(&dir)
            .and_then(|()| clap_mangen::generate_to(config::command::<Cli>(), &dir))
            .with_context(|| format!("writing manual pages to {}", dir.display())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = e.downcast_ref::<Exit>().map_or(1, |exit| exit.code);
            match log_format {
                LogFormat::Text => eprintln!("drainpipe: error: {e:#}"),
                LogFormat::Json => tracing::error!(error = %format!("{e:#}"), "drainpipe cannot go on"),
            }
            ExitCode::from(code)
        }
    }
}

/// Writes `bytes` to standard output; a reader that went away (`| head`) is not an error.
fn print_all(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn serve(options: ServeOptions) -> anyhow::Result<()> {
    let problems = options.problems();
    if !problems.is_empty() {
        return Err(Exit { code: USAGE, message: problems.join("; ") }.into());
    }
    let runtime = runtime()?;
    let result = runtime.block_on(serve::run(options));
    // Tasks still blocked (a stuck receiver, a file read) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

/// Prints the configuration and checks what can be checked without serving, changing
/// nothing: the options together, certificates, the spool folder, the Elasticsearch options;
/// with `--online`, what the cluster says too.
fn check_config(args: &CheckConfigArgs) -> anyhow::Result<()> {
    let options = &args.serve;
    #[allow(clippy::print_stdout)]
    {
        print!("{}", options.to_redacted_toml());
    }
    let mut problems = options.problems();
    if let Some((cert, key)) = options.receive.tls_files() {
        if let Err(e) = drainpipe_ingest::ReloadableCert::load(cert, key) {
            problems.push(e.to_string());
        }
    }
    if let Some(dir) = &options.delivery.spool_dir {
        if let Err(e) = writable_folder(dir) {
            problems.push(format!("spool-dir {}: {e}", dir.display()));
        }
    }
    if let Err(e) = options.elasticsearch.client() {
        problems.push(format!("{e:#}"));
    } else if args.online {
        let found = runtime()?.block_on(online::check(options));
        for note in &found.notes {
            eprintln!("online: {note}");
        }
        problems.extend(found.problems);
    }
    if problems.is_empty() {
        eprintln!("configuration OK");
        return Ok(());
    }
    for p in &problems {
        eprintln!("problem: {p}");
    }
    Err(Exit { code: EX_CONFIG, message: format!("{} problem(s) in the configuration", problems.len()) }.into())
}

/// Whether `dir` is (or could be made) a folder drainpipe can write in, leaving nothing behind.
fn writable_folder(dir: &Path) -> Result<(), String> {
    let existing = dir.ancestors().find(|a| a.exists()).unwrap_or(Path::new("/"));
    if !existing.is_dir() {
        return Err(format!("{} is not a folder", existing.display()));
    }
    let probe = existing.join(format!(".drainpipe-check-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| format!("{} is not writable: {e}", existing.display()))
}

/// `drainpipe setup`: what Elasticsearch (and Kibana) need, installed idempotently; one line
/// per thing, saying whether it was created, updated, left unchanged or skipped.
async fn run_setup(args: SetupArgs) -> anyhow::Result<()> {
    let client = args.elasticsearch.client()?;
    let retention = &args.elasticsearch.retention;
    let mut changes =
        setup::install(&client, retention).await.with_context(|| format!("setup against {}", client.url()))?;
    if retention.is_empty() {
        changes.push(setup::Change::Skipped(
            "retention".into(),
            "no --retention given; the installed lifecycle (if any) is kept".into(),
        ));
    }
    match args.kibana_url {
        Some(url) => {
            let es = &args.elasticsearch;
            let key = es.elasticsearch_api_key.as_ref().map(|k| k.0.as_str());
            let kibana = setup::Kibana::new(&url, key, es.ca_pem()?.as_deref())?;
            changes.push(kibana.import().await?);
        }
        None => changes.push(setup::Change::Skipped("Kibana objects".into(), "no --kibana-url given".into())),
    }
    #[allow(clippy::print_stdout)]
    for c in changes {
        println!("{c}");
    }
    Ok(())
}

/// `tracing` to standard error, filtered by `DRAINPIPE_LOG` (default `info`).
fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("DRAINPIPE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
        LogFormat::Json => builder.json().with_current_span(false).init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `drainpipe …` command line in a shell block of README.md and docs/, continuation
    /// lines joined, comments and prompts dropped.
    fn documented_command_lines() -> Vec<(&'static str, String)> {
        const DOCS: &[(&str, &str)] = &[
            ("README.md", include_str!("../../README.md")),
            ("docs/operations.md", include_str!("../../docs/operations.md")),
            ("docs/configuration.md", include_str!("../../docs/configuration.md")),
            ("docs/upgrading.md", include_str!("../../docs/upgrading.md")),
            ("docs/metrics.md", include_str!("../../docs/metrics.md")),
            ("docs/fields.md", include_str!("../../docs/fields.md")),
            ("docs/performance.md", include_str!("../../docs/performance.md")),
            ("benches/README.md", include_str!("../../benches/README.md")),
        ];
        let mut found = Vec::new();
        for (file, text) in DOCS {
            let mut in_shell = false;
            let mut pending = String::new();
            for line in text.lines() {
                if let Some(fence) = line.trim_start().strip_prefix("```") {
                    in_shell = !in_shell && matches!(fence, "sh" | "bash" | "console" | "shell");
                    continue;
                }
                if !in_shell {
                    // Inline spans too, but not usage synopses (`[--opt]`, `a|b`) or output.
                    for span in line.split('`').skip(1).step_by(2) {
                        let synopsis = span.contains(['[', '|']);
                        let output =
                            span.split(' ').nth(1).is_some_and(|w| w.starts_with(|c: char| c.is_ascii_digit()));
                        if span.starts_with("drainpipe ") && !synopsis && !output {
                            found.push((*file, span.to_owned()));
                        }
                    }
                    continue;
                }
                let line = line.trim().trim_start_matches("$ ");
                match line.strip_suffix('\\') {
                    Some(part) => pending.push_str(part),
                    None => {
                        pending.push_str(line);
                        let whole = std::mem::take(&mut pending);
                        let command = whole.split(" #").next().unwrap_or_default().trim().to_owned();
                        let command = command.strip_prefix("sudo ").unwrap_or(&command).to_owned();
                        if command.starts_with("drainpipe ") {
                            found.push((*file, command));
                        }
                    }
                }
            }
        }
        found
    }

    /// Splits like a shell for the quoting the docs use: single and double quotes, no
    /// expansion (`$(…)` and `$VAR` stay as written).
    fn shell_words(line: &str) -> Vec<String> {
        let (mut words, mut word, mut quote, mut any) = (Vec::new(), String::new(), None, false);
        for c in line.chars() {
            match (quote, c) {
                (None, '\'' | '"') => (quote, any) = (Some(c), true),
                (Some(q), c) if c == q => quote = None,
                (None, c) if c.is_whitespace() => {
                    if any || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    any = false;
                }
                (_, c) => word.push(c),
            }
        }
        if any || !word.is_empty() {
            words.push(word);
        }
        words
    }

    /// A command line the docs show, copied as written, is one drainpipe takes. Placeholders
    /// (`…`, `<password>`) stand for the reader's values, and a `--config` file for the
    /// example one.
    #[test]
    fn every_documented_command_line_parses() {
        let lines = documented_command_lines();
        assert!(lines.len() >= 10, "found only {lines:?}");
        let mut refused = Vec::new();
        for (file, line) in &lines {
            let mut words = shell_words(line);
            for w in &mut words {
                if w == "…" {
                    "x".clone_into(w);
                }
            }
            if let Some(i) = words.iter().position(|w| w == "--config") {
                if let Some(path) = words.get_mut(i + 1) {
                    *path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/drainpipe.toml").to_owned();
                }
            }
            let args: Vec<OsString> = words.iter().map(OsString::from).collect();
            match config::parse::<Cli>(&args, |_| None) {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
                    ) => {}
                Err(e) => {
                    refused.push(format!("{file}: {line}\n  {}", e.to_string().lines().next().unwrap_or_default()))
                }
            }
        }
        assert!(refused.is_empty(), "documented command lines drainpipe refuses:\n{}", refused.join("\n"));
    }
}
