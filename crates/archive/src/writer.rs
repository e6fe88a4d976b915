//! [`ArchiveWriter`]: batches of frames appended to their hour files, each batch one zstd
//! frame per file, synced, then committed in the state file; hours closed by renaming.
//!
//! The state file (`.drainpipe-archive.json`) is the commit point. It holds the last spool
//! record archived and every open file with the length it had after the last committed batch.
//! A batch is written and synced to its files first, then the state is replaced (written,
//! synced, renamed, the folder synced). A crash before the rename leaves bytes past the
//! committed lengths: they are cut off at the next start and the batch's records, still in the
//! spool, are archived again. So nothing is lost and nothing is written twice.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use drainpipe_ingest::Frame;
use drainpipe_spool::RecordId;
use serde::{Deserialize, Serialize};

use crate::layout::{self, Hour};
use crate::{format, metrics, sweep};

/// The state file's name in the archive folder.
pub const STATE_FILE: &str = ".drainpipe-archive.json";

/// zstd's default level: about 4x smaller than the lines on Heroku logs, at a small share of
/// the CPU a line costs.
pub const DEFAULT_LEVEL: i32 = 3;

/// Where the archive is and how long it keeps hours.
#[derive(Clone, Debug)]
pub struct ArchiveConfig {
    pub dir: PathBuf,
    /// Finished hours older than this are removed; `None` keeps them.
    pub retention: Option<Duration>,
    /// zstd's compression level.
    pub level: i32,
}

#[derive(Serialize, Deserialize, Default)]
struct State {
    version: u8,
    /// The last spool record in the archive: (segment, offset).
    through: Option<(u64, u64)>,
    open: Vec<OpenEntry>,
}

#[derive(Serialize, Deserialize, Clone)]
struct OpenEntry {
    /// The finished file's path, relative to the archive.
    file: PathBuf,
    /// Written under the `.partial` name (else a finished file written again).
    partial: bool,
    bytes: u64,
}

/// A file of an hour the archive still writes to.
#[derive(Debug)]
struct OpenFile {
    hour: Hour,
    partial: bool,
    /// Its length after the last committed batch: anything past it is cut before writing.
    committed: u64,
    handle: Option<File>,
}

/// What [`ArchiveWriter::open`] found and repaired.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Uncommitted bytes cut off open files, and uncommitted open files removed.
    pub cut_bytes: u64,
    pub removed_partials: u64,
    /// The state pointed past a spool that has been emptied or replaced: archiving starts over.
    pub spool_replaced: bool,
}

/// Appends batches to the archive's hour files. Blocking: run it off the async workers.
pub struct ArchiveWriter {
    dir: PathBuf,
    retention: Option<Duration>,
    compressor: zstd::bulk::Compressor<'static>,
    files: BTreeMap<PathBuf, OpenFile>,
    through: Option<RecordId>,
    /// A file's frames as the archive keeps them, and compressed: kept between batches.
    raw: Vec<u8>,
    compressed: Vec<u8>,
}

impl std::fmt::Debug for ArchiveWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArchiveWriter").field("dir", &self.dir).field("files", &self.files).finish()
    }
}

fn io_at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

impl ArchiveWriter {
    /// Opens the archive in `config.dir`: reads the state, cuts what was not committed, removes
    /// what retention no longer keeps. `writing_segment` is the spool's
    /// ([`drainpipe_spool::Spool::writing_segment`]): a state past it belongs to another spool.
    pub fn open(config: &ArchiveConfig, writing_segment: u64) -> io::Result<(ArchiveWriter, Recovered)> {
        fs::create_dir_all(&config.dir).map_err(|e| io_at(&config.dir, e))?;
        let state = read_state(&config.dir)?;
        let mut recovered = Recovered::default();
        let mut through = state.as_ref().and_then(|s| s.through).map(|(segment, offset)| RecordId { segment, offset });
        if through.is_some_and(|t| t.segment >= writing_segment) {
            (through, recovered.spool_replaced) = (None, true);
        }
        let compressor = zstd::bulk::Compressor::new(config.level).map_err(|e| io_at(&config.dir, e))?;
        let mut writer = ArchiveWriter {
            dir: config.dir.clone(),
            retention: config.retention,
            compressor,
            files: BTreeMap::new(),
            through,
            raw: Vec::new(),
            compressed: Vec::new(),
        };
        let listed = match &state {
            Some(s) => writer.reopen(&s.open, &mut recovered)?,
            None => Vec::new(),
        };
        let now = SystemTime::now();
        let mut found = writer.walk(now)?;
        let strays: Vec<PathBuf> = found.partials.iter().filter(|p| !listed.contains(p)).cloned().collect();
        for partial in &strays {
            writer.stray(partial, state.is_some(), &mut recovered)?;
        }
        if !strays.is_empty() {
            // Rare (after a crash): counted again, as the strays left the archive.
            found = writer.walk(now)?;
        }
        set_gauges(&found);
        Ok((writer, recovered))
    }

    /// The open files the state lists, cut to their committed lengths. Returns their `.partial`
    /// paths (relative).
    fn reopen(&mut self, open: &[OpenEntry], recovered: &mut Recovered) -> io::Result<Vec<PathBuf>> {
        let mut listed = Vec::new();
        for entry in open {
            let Some((hour, _)) = layout::parse(&entry.file) else { continue };
            let partial_path = self.dir.join(layout::partial_of(&entry.file));
            // Renamed at the hour's close, and the state not yet written after: finished.
            let (path, partial) = match entry.partial && partial_path.exists() {
                true => (partial_path, true),
                false => (self.dir.join(&entry.file), false),
            };
            if !path.exists() {
                tracing::warn!(path = %path.display(), "an archive file the state lists is gone; its hour starts again");
                continue;
            }
            recovered.cut_bytes += cut_to(&path, entry.bytes)?;
            if partial {
                listed.push(layout::partial_of(&entry.file));
            }
            self.files.insert(entry.file.clone(), OpenFile { hour, partial, committed: entry.bytes, handle: None });
        }
        Ok(listed)
    }

    /// A `.partial` file the state does not list: written after the last commit (its records
    /// are archived again), so removed; without any state (it was lost), kept up to its last
    /// whole zstd frame.
    fn stray(&mut self, relative: &Path, have_state: bool, recovered: &mut Recovered) -> io::Result<()> {
        let path = self.dir.join(relative);
        let finished = relative.with_extension("");
        let Some((hour, _)) = layout::parse(relative) else { return Ok(()) };
        if have_state {
            fs::remove_file(&path).map_err(|e| io_at(&path, e))?;
            recovered.removed_partials += 1;
            return Ok(());
        }
        let whole = whole_frames_len(&fs::read(&path).map_err(|e| io_at(&path, e))?);
        recovered.cut_bytes += cut_to(&path, whole)?;
        tracing::warn!(path = %path.display(), "an open archive file without the archive's state: kept as it is; lines archived again after it may be there twice");
        self.files.insert(finished, OpenFile { hour, partial: true, committed: whole, handle: None });
        Ok(())
    }

    /// The last spool record in the archive.
    pub fn through(&self) -> Option<RecordId> {
        self.through
    }

    /// The oldest hour with a file still open.
    pub fn oldest_open_hour(&self) -> Option<Hour> {
        self.files.values().map(|f| f.hour).min()
    }

    /// Appends `frames` to their hour files, one zstd frame per file, synced; then commits
    /// them with `through`, the last spool record they came from. On an error nothing of the
    /// batch is committed (what reached a file is cut off before the next write) and the same
    /// batch can be written again.
    pub fn write(&mut self, frames: &[Frame], through: RecordId) -> io::Result<()> {
        // Each file's frames in their order, the files one after another: one buffer for the
        // frames of a file and one for its compressed form, both kept for the next batch.
        let mut targets: Vec<(PathBuf, Hour, usize)> = frames
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let hour = Hour::of(f.received_at);
                (layout::hour_file(layout::app_folder(f.app.as_deref()), hour), hour, i)
            })
            .collect();
        targets.sort();
        let mut written: Vec<(PathBuf, u64)> = Vec::new();
        let mut raw_bytes = 0;
        for group in targets.chunk_by(|a, b| a.0 == b.0) {
            let Some((file, hour, _)) = group.first() else { continue };
            let mut raw = std::mem::take(&mut self.raw);
            raw.clear();
            group.iter().filter_map(|(_, _, i)| frames.get(*i)).for_each(|f| format::encode(f, &mut raw));
            raw_bytes += raw.len();
            let appended = self.append(file, *hour, &raw);
            self.raw = raw;
            match appended {
                Ok(len) => written.push((file.clone(), len)),
                Err(e) => return Err(self.failed(e)),
            }
        }
        if let Err(e) = self.write_state(&written, Some(through)) {
            return Err(self.failed(e));
        }
        for (file, len) in &written {
            if let Some(f) = self.files.get_mut(file) {
                f.committed = *len;
            }
        }
        self.through = Some(through);
        count_batch(frames, raw_bytes);
        Ok(())
    }

    /// A batch that failed: every file is opened again (and cut to its committed length)
    /// before the next write.
    fn failed(&mut self, e: io::Error) -> io::Error {
        for f in self.files.values_mut() {
            f.handle = None;
        }
        metrics::WRITE_FAILURES.inc();
        e
    }

    /// Compresses `raw` into one zstd frame at the committed end of `file`'s hour file and
    /// syncs it; returns the file's new length (not yet committed).
    fn append(&mut self, file: &Path, hour: Hour, raw: &[u8]) -> io::Result<u64> {
        let mut compressed = std::mem::take(&mut self.compressed);
        compressed.clear();
        compressed.reserve(zstd::zstd_safe::compress_bound(raw.len()));
        let done = self.compressor.compress_to_buffer(raw, &mut compressed).map_err(|e| io_at(file, e));
        let appended = done.and_then(|_| self.append_compressed(file, hour, &compressed));
        self.compressed = compressed;
        appended
    }

    /// Appends a compressed batch at the committed end of `file`'s hour file and syncs it.
    fn append_compressed(&mut self, file: &Path, hour: Hour, compressed: &[u8]) -> io::Result<u64> {
        let dir = self.dir.clone();
        let open = match self.files.entry(file.to_owned()) {
            std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => {
                // A finished hour written again (a frame arriving after its hour was closed)
                // is appended to in place; a new hour starts as `.partial`.
                let finished = dir.join(file);
                let committed = fs::metadata(&finished).map(|m| m.len()).ok();
                v.insert(OpenFile {
                    hour,
                    partial: committed.is_none(),
                    committed: committed.unwrap_or(0),
                    handle: None,
                })
            }
        };
        let path = if open.partial { dir.join(layout::partial_of(file)) } else { dir.join(file) };
        let handle = match &mut open.handle {
            Some(h) => h,
            slot => {
                let (handle, committed, created) = open_at(&dir, &path, open.committed)?;
                if created {
                    count_new_file(hour);
                }
                open.committed = committed;
                slot.insert(handle)
            }
        };
        handle.write_all(compressed).and_then(|()| handle.sync_data()).map_err(|e| io_at(&path, e))?;
        metrics::BYTES.inc_by(compressed.len() as u64);
        metrics::SIZE.add(i64::try_from(compressed.len()).unwrap_or(i64::MAX));
        Ok(open.committed + compressed.len() as u64)
    }

    /// Finishes the hours before `hour`: each `.partial` file is renamed into place, then the
    /// state is written without them.
    pub fn close_before(&mut self, hour: Hour) -> io::Result<()> {
        let closing: Vec<PathBuf> = self.files.iter().filter(|(_, f)| f.hour < hour).map(|(p, _)| p.clone()).collect();
        if closing.is_empty() {
            return Ok(());
        }
        for file in &closing {
            if let Some(open) = self.files.get_mut(file) {
                open.handle = None;
                if open.partial {
                    let (from, to) = (self.dir.join(layout::partial_of(file)), self.dir.join(file));
                    fs::rename(&from, &to).map_err(|e| io_at(&from, e))?;
                    sync_parent(&to)?;
                    metrics::CLOSED.inc();
                }
            }
            self.files.remove(file);
        }
        self.write_state(&[], self.through)
    }

    /// Removes finished hours older than the retention, and recounts the archive's gauges.
    pub fn sweep(&mut self, now: SystemTime) -> io::Result<()> {
        set_gauges(&self.walk(now)?);
        Ok(())
    }

    /// One walk of the archive, removing what the retention no longer keeps.
    fn walk(&self, now: SystemTime) -> io::Result<sweep::Found> {
        let keep_from = self.retention.map(|r| Hour::of(now.checked_sub(r).unwrap_or(UNIX_EPOCH)));
        sweep::sweep(&self.dir, keep_from)
    }

    /// Replaces the state file: the open files with their committed lengths (those of
    /// `written`, the batch being committed, in place of theirs) and `through`.
    fn write_state(&self, written: &[(PathBuf, u64)], through: Option<RecordId>) -> io::Result<()> {
        let open = self
            .files
            .iter()
            .map(|(file, f)| {
                let bytes = written.iter().find(|(w, _)| w == file).map_or(f.committed, |(_, len)| *len);
                OpenEntry { file: file.clone(), partial: f.partial, bytes }
            })
            .collect();
        let state = State { version: 1, through: through.map(|t| (t.segment, t.offset)), open };
        let json = serde_json::to_vec(&state).map_err(io::Error::other)?;
        let (path, tmp) = (self.dir.join(STATE_FILE), self.dir.join(format!("{STATE_FILE}.tmp")));
        let mut f = File::create(&tmp).map_err(|e| io_at(&tmp, e))?;
        f.write_all(&json).and_then(|()| f.sync_all()).map_err(|e| io_at(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| io_at(&path, e))?;
        sync_parent(&path)
    }
}

fn set_gauges(found: &sweep::Found) {
    metrics::FILES.set(i64::try_from(found.files).unwrap_or(i64::MAX));
    metrics::SIZE.set(i64::try_from(found.bytes).unwrap_or(i64::MAX));
    let oldest = found.oldest.map_or(0, Hour::start_secs);
    metrics::OLDEST_HOUR.set(i64::try_from(oldest).unwrap_or(i64::MAX));
}

/// A new hour file: counted, and the oldest hour when it is older (0: the archive was empty).
fn count_new_file(hour: Hour) {
    metrics::FILES.inc();
    let start = i64::try_from(hour.start_secs()).unwrap_or(i64::MAX);
    let oldest = metrics::OLDEST_HOUR.get();
    if oldest == 0 || start < oldest {
        metrics::OLDEST_HOUR.set(start);
    }
}

fn count_batch(frames: &[Frame], raw_bytes: usize) {
    metrics::LINES.inc_by(frames.iter().map(|f| f.messages.len() as u64).sum());
    metrics::RAW_BYTES.inc_by(raw_bytes as u64);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    metrics::LAST_WRITE.set(now.as_secs_f64());
}

fn read_state(dir: &Path) -> io::Result<Option<State>> {
    let path = dir.join(STATE_FILE);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io_at(&path, io::Error::new(io::ErrorKind::InvalidData, e))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_at(&path, e)),
    }
}

/// Opens `path` for writing at `committed` (cutting anything past it), creating it and its
/// folders (made durable) when it is new. Returns the file, where writing starts (a file
/// shorter than the state says, cut by hand, is written on at its end) and whether it is new.
fn open_at(dir: &Path, path: &Path, committed: u64) -> io::Result<(File, u64, bool)> {
    let new = !path.exists();
    if new {
        let parent = path.parent().unwrap_or(dir);
        create_dirs_durably(dir, parent)?;
    }
    let mut f = OpenOptions::new().create(true).write(true).truncate(false).open(path).map_err(|e| io_at(path, e))?;
    if new {
        sync_parent(path)?;
    }
    let len = f.metadata().map_err(|e| io_at(path, e))?.len();
    if len > committed {
        f.set_len(committed).map_err(|e| io_at(path, e))?;
    }
    let at = len.min(committed);
    f.seek(SeekFrom::Start(at)).map_err(|e| io_at(path, e))?;
    Ok((f, at, new))
}

/// Creates `folder` (under the archive `dir`) and syncs each new folder's parent.
fn create_dirs_durably(dir: &Path, folder: &Path) -> io::Result<()> {
    if folder.exists() || folder == dir {
        return Ok(());
    }
    if let Some(parent) = folder.parent() {
        create_dirs_durably(dir, parent)?;
    }
    fs::create_dir(folder)
        .or_else(|e| if e.kind() == io::ErrorKind::AlreadyExists { Ok(()) } else { Err(e) })
        .map_err(|e| io_at(folder, e))?;
    sync_parent(folder)
}

fn sync_parent(path: &Path) -> io::Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    File::open(parent).and_then(|d| d.sync_all()).map_err(|e| io_at(parent, e))
}

/// Cuts `path` to `len` when it is longer; returns the bytes cut. A missing file cuts nothing.
fn cut_to(path: &Path, len: u64) -> io::Result<u64> {
    let Ok(meta) = fs::metadata(path) else { return Ok(0) };
    if meta.len() <= len {
        return Ok(0);
    }
    let f = OpenOptions::new().write(true).open(path).map_err(|e| io_at(path, e))?;
    f.set_len(len).and_then(|()| f.sync_all()).map_err(|e| io_at(path, e))?;
    Ok(meta.len() - len)
}

/// The length of the whole zstd frames at the start of `bytes` (a torn last one left out).
fn whole_frames_len(bytes: &[u8]) -> u64 {
    let mut at = 0usize;
    while let Some(rest) = bytes.get(at..).filter(|r| !r.is_empty()) {
        match zstd::zstd_safe::find_frame_compressed_size(rest) {
            Ok(n) if n > 0 && n <= rest.len() => at += n,
            _ => break,
        }
    }
    at as u64
}
