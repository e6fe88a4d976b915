//! The command line: every command and what it takes (the options themselves are in
//! `config`, each defined once).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::commands::{deadletter, healthcheck, replay, search};
use crate::config::{BulkOptions, ElasticsearchOptions, GeneralOptions, ServeOptions};

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
pub fn version() -> String {
    let linkage = if cfg!(target_feature = "crt-static") { "static" } else { "dynamic" };
    format!(
        "{} (git {}, {}, {linkage})",
        env!("CARGO_PKG_VERSION"),
        env!("DRAINPIPE_GIT_REV"),
        env!("DRAINPIPE_TARGET")
    )
}

#[derive(Args, Debug)]
pub struct CheckConfigArgs {
    #[command(flatten)]
    pub serve: ServeOptions,
    /// Also ask each Elasticsearch node: it answers, takes the credentials, grants the
    /// privileges drainpipe needs; and whether the index templates are current. Changes nothing
    #[arg(long)]
    pub online: bool,
}

#[derive(Args, Debug)]
pub struct SetupArgs {
    #[command(flatten)]
    pub general: GeneralOptions,
    #[command(flatten)]
    pub elasticsearch: ElasticsearchOptions,
    /// Also import the Kibana data view, searches and dashboard (credentials may be in the URL)
    #[arg(long, value_name = "URL", hide_env_values = true)]
    pub kibana_url: Option<String>,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub general: GeneralOptions,
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
#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::*;
    use crate::config;

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
