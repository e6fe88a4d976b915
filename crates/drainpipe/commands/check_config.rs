//! `drainpipe check-config`: prints the effective configuration, secrets redacted, and checks
//! what can be checked without serving; with `--online`, what the cluster says too (`online`).

use std::path::Path;

use crate::config::CheckConfigArgs;
use crate::{runtime, Exit, EX_CONFIG};

#[path = "online.rs"]
mod online;

/// Prints the configuration and checks what can be checked without serving, changing
/// nothing: the options together, certificates, the spool and archive folders, the
/// Elasticsearch options;
/// with `--online`, what the cluster says too.
pub fn run(args: &CheckConfigArgs) -> anyhow::Result<()> {
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
    for (name, dir) in [("spool-dir", &options.delivery.spool_dir), ("archive-dir", &options.delivery.archive_dir)] {
        if let Some(dir) = dir {
            if let Err(e) = writable_folder(dir) {
                problems.push(format!("{name} {}: {e}", dir.display()));
            }
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
