//! `drainpipe replay`: backfill from files, through the same transform, ids and delivery as a
//! live drain, so replaying a file twice stores each line once.
//!
//! Two inputs: raw Logplex bodies (`LEN SP MSG` …, as a drain POSTs them), and the text
//! `heroku logs` prints (`2025-03-14T09:26:53.589793+00:00 heroku[router]: at=info …`). The
//! latter has no PRI; it is rebuilt as Heroku sends it (158 router, 45 other platform lines,
//! 190 app output), and each line's id is the file's identity (a hash of its content) and the
//! line's position in it: replaying the same file again stores nothing new, and two identical
//! lines in it are both stored.
//!
//! A third: drainpipe's raw archive (`--archive-dir`), hour files or folders of them. Its
//! frames come back exactly as they were received, so each line gets the id it had live:
//! replaying an archive into the cluster that holds the live documents stores nothing new, and
//! into an empty one stores the same documents.

use std::io::{BufRead, IsTerminal as _, Read as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use drainpipe_delivery::{
    BulkIndexer, DataStreams, Delivery, DeliveryConfig, DeliveryReport, Done, FrameSource, LiveRules,
};
use drainpipe_ingest::{framing, Access, BearerTokens, DrainTokens, Frame, LiveAccess, Position, Protocol};
use indicatif::{ProgressBar, ProgressStyle};

use crate::commands::{rules, setup};
use crate::config::{ReplayArgs, ReplayFormat};

/// `heroku logs` lines per frame handed to delivery.
const LINES_PER_FRAME: usize = 500;

pub async fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let ReplayArgs { general, elasticsearch, bulk, format, app, drain_token, files } = args;
    let files = expand(files, format)?;
    if app.is_some() && files.iter().any(|f| format == ReplayFormat::Archive || drainpipe_archive::is_archive_file(f)) {
        anyhow::bail!("--app is for Logplex bodies and `heroku logs` text: archived frames carry their own app");
    }
    let tokens = DrainTokens::new(drain_token.into_iter().map(|t| (t.token, t.app)));
    let rules =
        rules::read(general.config.as_deref()).map_err(|problems| anyhow::anyhow!("{}", problems.join("\n")))?;
    let client = elasticsearch.client()?;
    setup::install(&client, &elasticsearch.retention).await.context("cannot install the index templates")?;
    let indexer = BulkIndexer { client, config: bulk.indexer_config(&elasticsearch, None) };
    let config = DeliveryConfig {
        streams: DataStreams::new(&elasticsearch.namespace.0),
        // What serve finds syslog lines' apps by.
        access: LiveAccess::new(Access::new(&[], tokens, BearerTokens::default())),
        // What serve stores: the rules of the configuration file apply to replayed lines too.
        rules: LiveRules::fixed(rules),
        max_docs: indexer.config.max_docs,
        max_bytes: indexer.config.max_bytes,
    };
    // Progress is by bytes, so no pass is needed to count lines first.
    let mut total = 0u64;
    for path in &files {
        total += std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?.len();
    }
    let progress = Progress::start(total);
    let source = Files::new(files.clone(), format, app, progress.clone());
    let (lines_read, failed) = (source.lines.clone(), source.failed.clone());
    let report = Delivery::from_source(config, source, indexer).finish(None).await;
    progress.finish();
    if let Some(e) = failed.lock().unwrap_or_else(|e| e.into_inner()).take() {
        return Err(e);
    }
    if let Some(failure) = &report.failure {
        anyhow::bail!("the indexer stopped: {failure}");
    }
    print_summary(lines_read.load(Ordering::Relaxed), files.len(), progress.started.elapsed(), &report);
    Ok(())
}

/// The files to read: a folder stands for the archive files under it.
fn expand(paths: Vec<PathBuf>, format: ReplayFormat) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if !path.is_dir() {
            files.push(path);
            continue;
        }
        if !matches!(format, ReplayFormat::Auto | ReplayFormat::Archive) {
            anyhow::bail!("{} is a folder: only an archive's folders can be replayed whole", path.display());
        }
        let found = drainpipe_archive::files_under(&path).with_context(|| format!("cannot read {}", path.display()))?;
        if found.is_empty() {
            anyhow::bail!("{} holds no archive files (<app>/<YYYY>/<MM>/<DD>/<HH>.log.zst)", path.display());
        }
        files.extend(found);
    }
    Ok(files)
}

/// The command's output (progress went to standard error).
fn print_summary(lines: u64, files: usize, elapsed: Duration, report: &DeliveryReport) {
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

/// The files' frames in order, as delivery reads them; the first file that cannot be read
/// ends them (the error is kept for the command to return once what came before is delivered).
struct Files {
    paths: std::vec::IntoIter<PathBuf>,
    format: ReplayFormat,
    app: Option<String>,
    current: Option<(PathBuf, FileFrames<std::io::Take<std::io::BufReader<std::fs::File>>>)>,
    progress: Progress,
    lines: Arc<AtomicU64>,
    failed: Arc<Mutex<Option<anyhow::Error>>>,
}

impl Files {
    fn new(paths: Vec<PathBuf>, format: ReplayFormat, app: Option<String>, progress: Progress) -> Files {
        Files {
            paths: paths.into_iter(),
            format,
            app,
            current: None,
            progress,
            lines: Arc::default(),
            failed: Arc::default(),
        }
    }

    /// The next frame of the files, and the bytes of its file it took.
    fn next_frame(&mut self) -> anyhow::Result<Option<(Frame, u64)>> {
        loop {
            if let Some((path, frames)) = &mut self.current {
                if let Some(next) = frames.next().with_context(|| format!("cannot read {}", path.display()))? {
                    return Ok(Some(next));
                }
            }
            let Some(path) = self.paths.next() else { return Ok(None) };
            let frames = FileFrames::open(&path, self.format, self.app.as_deref())?;
            self.current = Some((path, frames));
        }
    }
}

impl FrameSource for Files {
    async fn next(&mut self) -> Option<(Frame, Done)> {
        match self.next_frame() {
            Ok(Some((frame, bytes))) => {
                let n = frame.messages.len() as u64;
                self.lines.fetch_add(n, Ordering::Relaxed);
                let progress = self.progress.clone();
                Some((frame, Box::new(move || progress.delivered(n, bytes))))
            }
            Ok(None) => None,
            Err(e) => {
                *self.failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                None
            }
        }
    }

    fn has_next(&self) -> bool {
        // Reading is as fast as delivery can take it: gather until a chunk is full.
        true
    }
}

/// A file's frames, read as they are sent: a Logplex body is one frame; `heroku logs` text is
/// read a frame of lines at a time, after one streaming pass for the file's identity.
enum FileFrames<R> {
    Logplex(Option<Box<Frame>>, u64),
    /// An archive file's frames; its length counts as taken with the first.
    Archive(Box<drainpipe_archive::FileFrames>, u64),
    HerokuLogs {
        reader: R,
        file: u64,
        lines: u64,
        app: Option<String>,
    },
}

impl FileFrames<std::io::Take<std::io::BufReader<std::fs::File>>> {
    fn open(path: &Path, format: ReplayFormat, app: Option<&str>) -> anyhow::Result<Self> {
        let cannot_read = || format!("cannot read {}", path.display());
        let mut reader =
            std::io::BufReader::with_capacity(256 * 1024, std::fs::File::open(path).with_context(cannot_read)?);
        let format = match format {
            ReplayFormat::Auto if drainpipe_archive::is_archive_file(path) => ReplayFormat::Archive,
            _ => detect(format, reader.fill_buf().with_context(cannot_read)?),
        };
        if format == ReplayFormat::Archive {
            let len = std::fs::metadata(path).with_context(cannot_read)?.len();
            let frames = drainpipe_archive::FileFrames::open(path).with_context(cannot_read)?;
            return Ok(FileFrames::Archive(Box::new(frames), len));
        }
        if format == ReplayFormat::Logplex {
            let mut body = Vec::new();
            reader.read_to_end(&mut body).with_context(cannot_read)?;
            let len = body.len() as u64;
            let frame =
                logplex_frame(Bytes::from(body), app.map(str::to_owned)).with_context(|| path.display().to_string())?;
            return Ok(FileFrames::Logplex(Some(Box::new(frame)), len));
        }
        // Lines are read only as far as the hash went: a file still being written does not get
        // lines past it under its beginning's identity.
        let (file, len) =
            content_hash(std::fs::File::open(path).with_context(cannot_read)?).with_context(cannot_read)?;
        Ok(FileFrames::HerokuLogs { reader: reader.take(len), file, lines: 0, app: app.map(str::to_owned) })
    }
}

impl<R: BufRead> FileFrames<R> {
    /// The next frame and how many bytes of the file it took; `None` at the end.
    fn next(&mut self) -> std::io::Result<Option<(Frame, u64)>> {
        match self {
            FileFrames::Logplex(frame, len) => Ok(frame.take().map(|f| (*f, *len))),
            FileFrames::Archive(frames, len) => Ok(frames.next_frame()?.map(|f| (f, std::mem::take(len)))),
            FileFrames::HerokuLogs { reader, file, lines, app } => {
                let first = *lines;
                let (mut body, mut messages, mut taken, mut line) = (Vec::new(), Vec::new(), 0u64, Vec::new());
                while messages.len() < LINES_PER_FRAME {
                    line.clear();
                    let n = reader.read_until(b'\n', &mut line)?;
                    if n == 0 {
                        break;
                    }
                    taken += n as u64;
                    let text = line.strip_suffix(b"\n").unwrap_or(&line);
                    if text.trim_ascii().is_empty() {
                        continue;
                    }
                    let start = body.len();
                    match as_syslog(text) {
                        Some(msg) => body.extend_from_slice(msg.as_bytes()),
                        None => body.extend_from_slice(text),
                    }
                    messages.push(start..body.len());
                }
                if messages.is_empty() {
                    return Ok(None);
                }
                *lines += messages.len() as u64;
                let frame = Frame {
                    app: app.clone(),
                    position: Position::OnStream { stream: *file, first },
                    ..Frame::new(Protocol::Syslog, Bytes::from(body), messages)
                };
                Ok(Some((frame, taken)))
            }
        }
    }
}

/// A file's identity for ids: the hash of its whole content, read in pieces; and its length.
fn content_hash(mut file: impl std::io::Read) -> std::io::Result<(u64, u64)> {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut len = 0;
    loop {
        match file.read(&mut buf)? {
            0 => return Ok((hasher.digest(), len)),
            n => {
                hasher.update(&buf[..n]);
                len += n as u64;
            }
        }
    }
}

/// How a zstd frame starts: an archive file renamed to another name is still read as one.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

fn detect(format: ReplayFormat, body: &[u8]) -> ReplayFormat {
    match format {
        ReplayFormat::Auto => {
            let start = body.trim_ascii_start();
            let digits = start.iter().take_while(|b| b.is_ascii_digit()).count();
            if body.starts_with(&ZSTD_MAGIC) {
                ReplayFormat::Archive
            } else if digits > 0 && start.get(digits) == Some(&b' ') && start.get(digits + 1) == Some(&b'<') {
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
    Ok(Frame { app, ..Frame::new(Protocol::Logplex, body, framed.messages) })
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

/// Progress on standard error: an indicatif bar on a terminal, else a plain line every five
/// seconds; both by bytes of the files, with lines per second.
#[derive(Clone)]
struct Progress {
    bar: Option<ProgressBar>,
    lines: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    total: u64,
    started: Instant,
    lines_task: Option<Arc<tokio::task::JoinHandle<()>>>,
}

impl Progress {
    fn start(total: u64) -> Progress {
        let mut p = Progress {
            bar: None,
            lines: Arc::default(),
            bytes: Arc::default(),
            total,
            started: Instant::now(),
            lines_task: None,
        };
        if std::io::stderr().is_terminal() {
            let style = ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {msg} ({elapsed}, {eta} left)")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            p.bar = Some(ProgressBar::new(total).with_style(style));
        } else {
            let every = p.clone();
            p.lines_task = Some(Arc::new(tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(5));
                tick.tick().await;
                loop {
                    tick.tick().await;
                    eprintln!("replay: {}", every.line());
                }
            })));
        }
        p
    }

    /// `1234 lines indexed (12% of 8.0 MiB), 5678 lines/s`
    fn line(&self) -> String {
        let (lines, bytes) = (self.lines.load(Ordering::Relaxed), self.bytes.load(Ordering::Relaxed));
        let share = (bytes.min(self.total) * 100).checked_div(self.total).unwrap_or(100);
        format!("{lines} lines indexed ({share}% of {} bytes), {:.0} lines/s", self.total, self.rate(lines))
    }

    fn rate(&self, lines: u64) -> f64 {
        lines as f64 / self.started.elapsed().as_secs_f64().max(0.001)
    }

    /// A frame of `lines`, `bytes` of the file, is stored.
    fn delivered(&self, lines: u64, bytes: u64) {
        let lines = self.lines.fetch_add(lines, Ordering::Relaxed) + lines;
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
            bar.set_message(format!("{lines} lines, {:.0} lines/s", self.rate(lines)));
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if let Some(task) = &self.lines_task {
            task.abort();
        }
    }
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
    fn formats_are_told_apart() {
        assert_eq!(detect(ReplayFormat::Auto, b"63 <158>1 2025"), ReplayFormat::Logplex);
        assert_eq!(detect(ReplayFormat::Auto, b"2025-03-14T09:26:53+00:00 app[web.1]: x"), ReplayFormat::HerokuLogs);
    }

    /// Read a frame at a time, the frames and ids are those of the whole file read at once:
    /// the file's hash, and each line's number among the non-empty lines.
    #[test]
    fn heroku_logs_text_is_read_a_frame_at_a_time() {
        let mut text = b"2025-03-14T09:26:53+00:00 app[web.1]: x\n\n".repeat(1001);
        text.extend_from_slice(b"no newline at the end");
        let file = xxhash_rust::xxh3::xxh3_64(&text);
        assert_eq!(content_hash(&text[..]).unwrap(), (file, text.len() as u64));
        let mut frames = FileFrames::HerokuLogs { reader: &text[..], file, lines: 0, app: None };
        let mut seen = Vec::new();
        let mut bytes = 0;
        while let Some((frame, taken)) = frames.next().unwrap() {
            let Position::OnStream { stream, first } = frame.position else { panic!("{:?}", frame.position) };
            assert_eq!(stream, file);
            seen.push((first, frame.messages.len()));
            bytes += taken;
        }
        assert_eq!(seen, [(0, 500), (500, 500), (1000, 2)]);
        assert_eq!(bytes, text.len() as u64, "every byte is accounted for progress");
    }
}
