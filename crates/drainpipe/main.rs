//! drainpipe's entry point: parses the command line, sets up logging, and dispatches to the
//! command (`drainpipe::commands`, `drainpipe::serve`); a failure becomes its exit code.

use std::ffi::OsString;
use std::process::ExitCode;

use anyhow::Context as _;
use drainpipe::cli::{Cli, Command};
use drainpipe::commands::{check_config, deadletter, drains, healthcheck, replay, rules, search, setup};
use drainpipe::config::{self, LogFormat, RulesAction, RulesArgs, ServeOptions};
use drainpipe::{print_all, runtime, Exit, USAGE};
use drainpipe_delivery::panic_guard;
use tracing_subscriber::EnvFilter;

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
        Command::Healthcheck(_)
        | Command::Rules(_)
        | Command::Drains(_)
        | Command::Completions { .. }
        | Command::Man { .. } => LogFormat::Text,
    };
    init_logging(log_format);
    panic_guard::install_hook();
    let result = match cli.command {
        Command::Serve(options) => serve(options),
        Command::CheckConfig(args) => check_config::run(&args),
        Command::Setup(args) => runtime().and_then(|r| r.block_on(setup::run(args))),
        Command::Replay(args) => runtime().and_then(|r| r.block_on(replay::run(args))),
        Command::Deadletter(args) => runtime().and_then(|r| r.block_on(deadletter::run(args.action))),
        Command::Tail(args) => runtime().and_then(|r| r.block_on(search::tail(args))),
        Command::Search(args) => runtime().and_then(|r| r.block_on(search::search(args))),
        Command::Healthcheck(args) => runtime().and_then(|r| r.block_on(healthcheck::run(&args))),
        Command::Drains(args) => runtime().and_then(|r| r.block_on(drains::run(args.action))),
        Command::Rules(RulesArgs { action: RulesAction::Test(args) }) => {
            runtime().and_then(|r| r.block_on(rules::test(args)))
        }
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

fn serve(options: ServeOptions) -> anyhow::Result<()> {
    let problems = options.problems();
    if !problems.is_empty() {
        return Err(Exit { code: USAGE, message: problems.join("; ") }.into());
    }
    let runtime = runtime()?;
    let result = runtime.block_on(drainpipe::serve::run(options));
    // Tasks still blocked (a stuck receiver, a file read) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
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
