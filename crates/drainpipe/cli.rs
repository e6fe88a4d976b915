//! The command line: every command and what it takes (the options themselves are in
//! `config`, each defined once).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{
    CheckConfigArgs, DeadLetterArgs, DrainsArgs, HealthcheckArgs, ReplayArgs, RulesArgs, SearchArgs, ServeOptions,
    SetupArgs, TailArgs,
};

#[derive(Parser, Debug)]
#[command(name = "drainpipe", version = version(), about = "Heroku log drains into Elasticsearch")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Receive drains (POST /logs) and index them
    Serve(ServeOptions),
    /// Print the effective configuration, secrets redacted; exit 78 on problems
    CheckConfig(CheckConfigArgs),
    /// Install or update the index templates (and, with --kibana-url, the Kibana objects)
    Setup(SetupArgs),
    /// Index files of Logplex bodies or `heroku logs` output (idempotent: replaying twice stores once)
    Replay(ReplayArgs),
    /// Print matching lines as they arrive, as `heroku logs --tail` does, from the last N
    Tail(TailArgs),
    /// Print every line matching the filters in a time range, oldest first
    Search(SearchArgs),
    /// List dead letters by reason, or send them again once the cause is fixed
    Deadletter(DeadLetterArgs),
    /// Try the `[[rule]]` tables of a configuration file on lines (`rules test FILE < lines`)
    Rules(RulesArgs),
    /// Manage apps' drains as code: `drains plan|apply --file drains.toml` against Heroku's API
    Drains(DrainsArgs),
    /// Exit 0 when the drainpipe serving here answers /healthz (for container health checks)
    Healthcheck(HealthcheckArgs),
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
pub fn version() -> String {
    let linkage = if cfg!(target_feature = "crt-static") { "static" } else { "dynamic" };
    format!(
        "{} (git {}, {}, {linkage})",
        env!("CARGO_PKG_VERSION"),
        env!("DRAINPIPE_GIT_REV"),
        env!("DRAINPIPE_TARGET")
    )
}
