//! drainpipe: receives Heroku log drains and indexes every line, typed, into Elasticsearch.
//!
//! This crate is the binary's commands and their wiring (see ARCHITECTURE.md): `main.rs`
//! parses the command line and dispatches to `commands`. Only here are `anyhow`, `clap` and a
//! tracing subscriber used.

pub mod cli;
pub mod commands;
pub mod config;
mod health;
pub mod metrics;
mod reload;
pub mod serve;
mod supervise;

/// A failure with an exit code of its own: [`USAGE`] for options that cannot go together (like
/// a value clap refuses), [`EX_CONFIG`] for problems `check-config` found. Others exit 1.
#[derive(Debug)]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

/// Options that cannot be used: clap's own exit code for them.
pub const USAGE: u8 = 2;
/// sysexits.h's "configuration error": what `check-config` exits with when it finds problems.
pub const EX_CONFIG: u8 = 78;

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

/// Writes `bytes` to standard output; a reader that went away (`| head`) is not an error.
pub fn print_all(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// The multi-threaded runtime the async commands run on.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}
