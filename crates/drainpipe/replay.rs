//! `drainpipe replay`: backfill from files, through the same transform, ids and delivery as a
//! live drain, so replaying a file twice stores each line once.
//!
//! Two inputs: raw Logplex bodies (`LEN SP MSG` …, as a drain POSTs them), and the text
//! `heroku logs` prints (`2025-03-14T09:26:53.589793+00:00 heroku[router]: at=info …`). The
//! latter has no PRI; it is rebuilt as Heroku sends it (158 router, 45 other platform lines,
//! 190 app output), and each line's id is the file's identity (a hash of its content) and the
//! line's position in it: replaying the same file again stores nothing new, and two identical
//! lines in it are both stored.

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use drainpipe_bulk_indexer::IndexerReport;
use drainpipe_ingest::{framing, Frame, Protocol, StreamPosition};
use drainpipe_transform::Transformer;
use tokio::sync::mpsc;

use crate::pipeline::{self, Target};
use crate::{setup, ReplayArgs};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReplayFormat {
    /// Decide per file: a Logplex body starts with an octet count.
    Auto,
    /// Raw Logplex request bodies.
    Logplex,
    /// What `heroku logs` prints.
    HerokuLogs,
}

/// `heroku logs` lines per frame handed to the pipeline.
const LINES_PER_FRAME: usize = 500;

pub async fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let ReplayArgs { elasticsearch, bulk, format, app, files, .. } = args;
    let client = elasticsearch.client()?;
    setup::install(&client, &elasticsearch.retention).await.context("cannot install the index templates")?;
    let (chunk_tx, chunk_rx) = mpsc::channel(pipeline::CHUNKS_WAITING);
    let config = bulk.indexer_config(&elasticsearch, None);
    let mut chunks = pipeline::Chunker::new(chunk_tx, config.max_docs, config.max_bytes);
    let indexer = tokio::spawn(drainpipe_bulk_indexer::run(client, config, chunk_rx));
    let target = Target::new(&elasticsearch.namespace.0, Arc::default());

    // A first pass counts the lines, so progress can show how far along it is.
    let mut total = 0u64;
    for path in &files {
        total += read_frames(path, format, app.as_deref())?.iter().map(|f| f.messages.len() as u64).sum::<u64>();
    }
    let started = Instant::now();
    let done = Arc::new(AtomicU64::new(0));
    let progress = tokio::spawn(report_progress(done.clone(), total, started));
    let mut transformer = Transformer::new();
    let mut lines_read = 0u64;
    for path in &files {
        let frames = read_frames(path, format, app.as_deref())?;
        for frame in frames {
            let n = frame.messages.len() as u64;
            lines_read += n;
            let counter = done.clone();
            let sent = pipeline::send_frame(&mut transformer, &frame, &target, &mut chunks, move || {
                counter.fetch_add(n, Ordering::Relaxed);
            });
            if sent.await.is_err() {
                anyhow::bail!("the indexer stopped");
            }
        }
    }
    if chunks.flush().await.is_err() {
        anyhow::bail!("the indexer stopped");
    }
    drop(chunks);
    let report = indexer.await.context("the indexer failed")?;
    progress.abort();
    let _ = progress.await;
    print_summary(lines_read, files.len(), started.elapsed(), &report);
    Ok(())
}

/// The command's output (progress went to standard error).
fn print_summary(lines: u64, files: usize, elapsed: Duration, report: &IndexerReport) {
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
    let rate = lines as f64 / elapsed.as_secs_f64().max(0.001);
    #[allow(clippy::print_stdout)]
    {
        println!(
            "replayed {lines} lines from {files} file(s) in {:.1}s ({rate:.0} lines/s): {} indexed, {} already there, {} dead-lettered",
            elapsed.as_secs_f64(),
            report.indexed,
            report.duplicates,
            report.dead_lettered,
        );
    }
}

fn read_frames(path: &std::path::Path, format: ReplayFormat, app: Option<&str>) -> anyhow::Result<Vec<Frame>> {
    let body = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(match detect(format, &body) {
        ReplayFormat::Logplex => {
            vec![logplex_frame(Bytes::from(body), app.map(str::to_owned)).with_context(|| path.display().to_string())?]
        }
        _ => heroku_logs_frames(&body, app),
    })
}

fn detect(format: ReplayFormat, body: &[u8]) -> ReplayFormat {
    match format {
        ReplayFormat::Auto => {
            let start = body.trim_ascii_start();
            let digits = start.iter().take_while(|b| b.is_ascii_digit()).count();
            if digits > 0 && start.get(digits) == Some(&b' ') && start.get(digits + 1) == Some(&b'<') {
                ReplayFormat::Logplex
            } else {
                ReplayFormat::HerokuLogs
            }
        }
        other => other,
    }
}

fn logplex_frame(body: Bytes, app: Option<String>) -> anyhow::Result<Frame> {
    let framed = framing::split(&body)?;
    Ok(Frame { app, ..Frame::new(Protocol::Https, body, framed.messages) })
}

/// Rebuilds each `heroku logs` line as the syslog message Heroku sent; a line that does not
/// look like one is kept as it is (and indexed with the parse-failure tag).
fn heroku_logs_frames(text: &[u8], app: Option<&str>) -> Vec<Frame> {
    let file = xxhash_rust::xxh3::xxh3_64(text);
    let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').filter(|l| !l.trim_ascii().is_empty()).collect();
    lines
        .chunks(LINES_PER_FRAME)
        .enumerate()
        .map(|(n, group)| {
            let mut body = Vec::new();
            let mut messages = Vec::with_capacity(group.len());
            for line in group {
                let start = body.len();
                match as_syslog(line) {
                    Some(msg) => body.extend_from_slice(msg.as_bytes()),
                    None => body.extend_from_slice(line),
                }
                messages.push(start..body.len());
            }
            Frame {
                app: app.map(str::to_owned),
                stream: Some(StreamPosition { stream: file, first: (n * LINES_PER_FRAME) as u64 }),
                ..Frame::new(Protocol::Syslog, Bytes::from(body), messages)
            }
        })
        .collect()
}

/// `2025-03-14T09:26:53.589793+00:00 heroku[router]: at=info …` →
/// `<158>1 2025-03-14T09:26:53.589793+00:00 host heroku router - - at=info …`.
fn as_syslog(line: &[u8]) -> Option<String> {
    let line = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
    let (timestamp, rest) = line.split_once(' ')?;
    let (source, message) = rest.split_once(": ").or_else(|| rest.strip_suffix(':').map(|s| (s, "")))?;
    let (appname, procid) = source.strip_suffix(']')?.split_once('[')?;
    if appname.is_empty() || procid.is_empty() || appname.contains(' ') {
        return None;
    }
    let pri = match (appname, procid) {
        ("heroku", "router") => 158,
        ("heroku", _) => 45,
        _ => 190,
    };
    Some(format!("<{pri}>1 {timestamp} host {appname} {procid} - - {message}"))
}

/// Progress: a bar that rewrites itself on a terminal, a plain line every five seconds
/// otherwise; both with lines per second.
async fn report_progress(done: Arc<AtomicU64>, total: u64, started: Instant) {
    let terminal = std::io::stderr().is_terminal();
    let mut tick = tokio::time::interval(if terminal { Duration::from_millis(200) } else { Duration::from_secs(5) });
    tick.tick().await;
    loop {
        tick.tick().await;
        let n = done.load(Ordering::Relaxed);
        let rate = n as f64 / started.elapsed().as_secs_f64().max(0.001);
        if terminal {
            eprint!("\r{} {n}/{total} lines, {rate:.0} lines/s   ", bar(n, total, 30));
        } else {
            eprintln!("replay: {n}/{total} lines indexed, {rate:.0} lines/s");
        }
    }
}

/// `[#########.....................]`
fn bar(done: u64, total: u64, width: usize) -> String {
    let filled = if total == 0 { width } else { ((done.min(total) as f64 / total as f64) * width as f64) as usize };
    format!("[{}{}]", "#".repeat(filled), ".".repeat(width - filled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heroku_logs_lines_become_the_syslog_heroku_sent() {
        let line = b"2025-03-14T09:26:53.589793+00:00 heroku[router]: at=info method=GET path=\"/\"";
        assert_eq!(
            as_syslog(line).unwrap(),
            "<158>1 2025-03-14T09:26:53.589793+00:00 host heroku router - - at=info method=GET path=\"/\""
        );
        assert_eq!(
            as_syslog(b"2025-03-14T09:26:53+00:00 app[web.1]: hello: world").unwrap(),
            "<190>1 2025-03-14T09:26:53+00:00 host app web.1 - - hello: world"
        );
        assert!(as_syslog(b"Killed").is_none());
        assert!(as_syslog(b"2025-03-14 something else").is_none());
    }

    #[test]
    fn the_bar_fills_with_progress() {
        assert_eq!(bar(0, 10, 10), "[..........]");
        assert_eq!(bar(5, 10, 10), "[#####.....]");
        assert_eq!(bar(12, 10, 10), "[##########]");
    }

    #[test]
    fn formats_are_told_apart() {
        assert_eq!(detect(ReplayFormat::Auto, b"63 <158>1 2025"), ReplayFormat::Logplex);
        assert_eq!(detect(ReplayFormat::Auto, b"2025-03-14T09:26:53+00:00 app[web.1]: x"), ReplayFormat::HerokuLogs);
        let frames = heroku_logs_frames(&b"2025-03-14T09:26:53+00:00 app[web.1]: x\n".repeat(1001), None);
        assert_eq!(frames.iter().map(|f| f.messages.len()).collect::<Vec<_>>(), [500, 500, 1]);
    }
}
