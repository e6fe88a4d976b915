//! drainpipe-spool is a durable, bounded queue of byte records on disk.
//!
//! [`Spool::append`] writes a record to the current segment file and resolves once it is on
//! disk: concurrent appends are written together and share one `fsync` (group commit), or, with
//! [`Fsync::Interval`], are synced on a timer. A [`SpoolReader`] hands the records out in order,
//! from disk, following the writer. [`Spool::ack`] marks a record done; a segment file is
//! deleted once the reader has passed it and every record in it is acknowledged. A spool may
//! have several readers ([`Spool::open_readers`]), each reading every record at its own pace
//! and acknowledging it for itself ([`Spool::ack_by`]): a segment then goes once every reader
//! is past it and has acknowledged all of it.
//!
//! Invariants: a record whose `append` succeeded is never lost, whatever kills the process
//! (with the per-batch policy); the spool never holds more than `max_bytes` (an append that
//! would pass it fails with [`SpoolError::Full`] instead of evicting anything); on open, every
//! record still on disk is handed out again (acknowledgements are not persisted, so consumers
//! must be idempotent), and a torn tail is detected by checksum and cut off. Damage inside
//! written data (found at open or while reading) costs only the records it touched: reading
//! resumes at the next record whose checksum holds, found in time linear in the bytes searched
//! whatever they hold. A failed write (a full disk) refuses the
//! appends of that batch and leaves the segment as it was; the spool keeps running.
//!
//! It knows bytes and durability, nothing about logs.

#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::string_slice, clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod crc;
mod error;
pub mod metrics;
mod record;

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, IoSlice, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{oneshot, Notify};

pub use error::SpoolError;

/// When appended records are made durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fsync {
    /// Before `append` returns; concurrent appends share one `fsync`.
    EveryBatch,
    /// On a timer: `append` returns after the write, and a crash of the machine (not of the
    /// process) can lose up to this much.
    Interval(Duration),
}

#[derive(Clone, Debug)]
pub struct SpoolConfig {
    pub dir: PathBuf,
    /// Bytes on disk at most, over all segments.
    pub max_bytes: u64,
    /// A segment is closed and a new one started past this size.
    pub segment_bytes: u64,
    pub fsync: Fsync,
}

impl SpoolConfig {
    /// A spool of `max_bytes` whose segments each hold a record of `largest_record` bytes:
    /// a 64th of the spool, at least that record, at most 256 MiB (unless the record is
    /// larger). Refused when the spool would not hold two such segments, since a full segment
    /// is deleted only once the next one is being written.
    pub fn sized_for(
        dir: PathBuf,
        max_bytes: u64,
        largest_record: u64,
        fsync: Fsync,
    ) -> Result<SpoolConfig, SpoolError> {
        let segment_bytes = (max_bytes / 64).clamp(largest_record, (256 << 20).max(largest_record));
        if max_bytes < 2 * segment_bytes {
            return Err(SpoolError::TooSmall { max_bytes, segment_bytes });
        }
        Ok(SpoolConfig { dir, max_bytes, segment_bytes, fsync })
    }
}

/// Where a record lives: its segment and its byte offset there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordId {
    pub segment: u64,
    pub offset: u64,
}

/// What [`Spool::open`] found on disk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Records left from the last run, handed out again by the reader.
    pub records: u64,
    pub bytes: u64,
    /// Segments whose tail was torn (a crash mid-write) and cut off.
    pub torn_segments: u64,
    /// Damaged stretches inside segments, skipped to the next valid record.
    pub corrupt_regions: u64,
}

/// The write side, shared by all producers. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Spool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: SpoolConfig,
    writes: Mutex<Option<mpsc::Sender<Write1>>>,
    state: Mutex<State>,
    appended: Notify,
    /// Tests make writes fail with this (a full disk) to check that nothing else breaks.
    #[cfg(test)]
    fail_writes: std::sync::atomic::AtomicBool,
}

#[derive(Debug)]
struct State {
    segments: BTreeMap<u64, Segment>,
    /// Bytes on disk plus bytes accepted but not yet written.
    used: u64,
    /// End of the data the reader may read: (segment, offset).
    readable: (u64, u64),
    /// Where each reader is: segments before this one are fully read by it.
    reader_segments: Vec<u64>,
    closed: bool,
}

impl State {
    /// A new segment's entry, with an acknowledgement count for each reader.
    fn new_segment(&self, bytes: u64, records: u64, sealed: bool, first_ms: Option<u64>) -> Segment {
        Segment { bytes, records, acked: vec![0; self.reader_segments.len()], sealed, first_ms }
    }

    /// The first segment after `seq` that exists.
    fn segment_after(&self, seq: u64) -> Option<u64> {
        self.segments.range(seq.checked_add(1)?..).next().map(|(s, _)| *s)
    }
}

#[derive(Debug)]
struct Segment {
    bytes: u64,
    /// Records in it; once the reader has left it, the records it handed out (damage found
    /// while reading can make that fewer), which are what acknowledgements count up to.
    records: u64,
    /// Acknowledgements, per reader.
    acked: Vec<u64>,
    /// No more records will be written to it.
    sealed: bool,
    /// When its oldest record was appended.
    first_ms: Option<u64>,
}

impl Segment {
    /// Records some reader has not acknowledged yet.
    fn unacked(&self) -> u64 {
        self.records.saturating_sub(self.acked.iter().copied().min().unwrap_or(self.records))
    }
}

/// Records on their way into the segment: each one's header, its append and where it goes.
#[derive(Default)]
struct Run {
    headers: Vec<[u8; record::HEADER]>,
    records: Vec<(Write1, RecordId, u64)>,
    /// Their size on disk, headers included.
    bytes: u64,
}

impl Run {
    fn clear(&mut self) {
        self.headers.clear();
        self.records.clear();
        self.bytes = 0;
    }
}

/// Writes every record of `run` (header, then the payload's parts), gathered into as few
/// system calls as the kernel takes: the payloads are not copied on the way.
fn write_records(file: &mut File, run: &Run) -> std::io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(run.records.len() * 3);
    for (header, (w, ..)) in run.headers.iter().zip(&run.records) {
        slices.push(IoSlice::new(header));
        slices.extend(w.parts.iter().filter(|p| !p.is_empty()).map(|p| IoSlice::new(p)));
    }
    let mut slices = &mut slices[..];
    while !slices.is_empty() {
        match file.write_vectored(slices) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

struct Write1 {
    /// The record's payload, the first part followed by the second.
    parts: [Bytes; 2],
    reply: oneshot::Sender<Result<RecordId, SpoolError>>,
}

impl Spool {
    /// Opens (or creates) the spool in `config.dir`, checking every record already there.
    /// Returns the spool, a reader that starts with the records left from the last run, and
    /// what was recovered.
    pub fn open(config: SpoolConfig) -> Result<(Spool, SpoolReader, Recovery), SpoolError> {
        let (spool, mut readers, recovery) = Spool::open_readers(config, 1)?;
        let reader =
            readers.pop().ok_or_else(|| SpoolError::io(&spool.inner.config.dir, std::io::Error::other("no reader")))?;
        Ok((spool, reader, recovery))
    }

    /// [`Spool::open`] with `readers` readers (at least one), each handed every record; reader
    /// `i` acknowledges with [`Spool::ack_by`]`(i, …)`.
    pub fn open_readers(
        config: SpoolConfig,
        readers: usize,
    ) -> Result<(Spool, Vec<SpoolReader>, Recovery), SpoolError> {
        let readers = readers.max(1);
        fs::create_dir_all(&config.dir).map_err(|e| SpoolError::io(&config.dir, e))?;
        let (segments, recovery) = recover(&config.dir, config.segment_bytes, readers)?;
        let first = segments.keys().next().copied();
        let next_seq = match segments.keys().next_back() {
            None => 1,
            Some(&last) => last.checked_add(1).ok_or_else(|| no_next_segment(&config.dir, last))?,
        };
        let used = recovery.bytes;
        let start = first.unwrap_or(next_seq);
        metrics::REPLAYED.inc_by(recovery.records);
        let state =
            State { segments, used, readable: (next_seq, 0), reader_segments: vec![start; readers], closed: false };
        let (tx, rx) = mpsc::channel();
        let inner = Arc::new(Inner {
            config,
            writes: Mutex::new(Some(tx)),
            state: Mutex::new(state),
            appended: Notify::new(),
            #[cfg(test)]
            fail_writes: std::sync::atomic::AtomicBool::new(false),
        });
        let writer = Writer::create(inner.clone(), next_seq)?;
        std::thread::Builder::new()
            .name("drainpipe-spool-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| SpoolError::io(&inner.config.dir, e))?;
        let spool = Spool { inner };
        spool.update_metrics();
        let readers = (0..readers)
            .map(|index| SpoolReader { spool: spool.clone(), index, segment: start, offset: 0, file: None, handed: 0 })
            .collect();
        Ok((spool, readers, recovery))
    }

    /// Writes `payload` as one record; resolves once it is durable (per [`Fsync`]).
    pub async fn append(&self, payload: Bytes) -> Result<RecordId, SpoolError> {
        self.append_parts([payload, Bytes::new()]).await
    }

    /// [`Spool::append`] of a payload in two parts, the first followed by the second: written
    /// one after the other, without first being copied together.
    pub async fn append_parts(&self, parts: [Bytes; 2]) -> Result<RecordId, SpoolError> {
        let len = parts[0].len().saturating_add(parts[1].len());
        let size = u64::try_from(len).unwrap_or(u64::MAX).saturating_add(record::HEADER as u64);
        // A record's length is a u32 on disk: a longer payload would be written with a wrong one.
        if size > self.inner.config.segment_bytes || u32::try_from(len).is_err() {
            return Err(SpoolError::TooLarge { len, segment_bytes: self.inner.config.segment_bytes });
        }
        {
            let mut st = self.inner.lock();
            if st.closed {
                return Err(SpoolError::Closed);
            }
            if st.used.saturating_add(size) > self.inner.config.max_bytes {
                return Err(SpoolError::Full { used: st.used, max: self.inner.config.max_bytes });
            }
            st.used += size;
        }
        let (reply, answer) = oneshot::channel();
        let sent = self
            .inner
            .writes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|w| w.send(Write1 { parts, reply }));
        if !matches!(sent, Some(Ok(()))) {
            let mut st = self.inner.lock();
            st.used = st.used.saturating_sub(size);
            return Err(SpoolError::Closed);
        }
        answer.await.unwrap_or(Err(SpoolError::Closed))
    }

    /// Marks a record done (for the first reader). Its segment is deleted once all of its
    /// records are done and every reader has moved past it.
    pub fn ack(&self, id: RecordId) {
        self.ack_by(0, id);
    }

    /// Marks a record done for reader `reader` (its [`SpoolReader::index`]).
    pub fn ack_by(&self, reader: usize, id: RecordId) {
        let mut st = self.inner.lock();
        if let Some(acked) = st.segments.get_mut(&id.segment).and_then(|seg| seg.acked.get_mut(reader)) {
            *acked += 1;
        }
        // Delivery's acknowledgements (the first reader's) are what the counter has always counted.
        if reader == 0 {
            metrics::ACKED.inc();
        }
        self.inner.delete_finished(&mut st);
    }

    /// Bytes in use (on disk, plus accepted and not yet written).
    pub fn used_bytes(&self) -> u64 {
        self.inner.lock().used
    }

    /// Records appended and not yet acknowledged (what a stop leaves for the next start).
    pub fn unacked_records(&self) -> u64 {
        let st = self.inner.lock();
        st.segments.values().map(Segment::unacked).sum()
    }

    /// How long the oldest segment still holding unacknowledged records has been waiting
    /// (measured from its first record): an upper bound on the oldest record's age.
    pub fn oldest_unacked_age(&self) -> Option<Duration> {
        let st = self.inner.lock();
        let first = st.segments.values().filter(|s| s.unacked() > 0).find_map(|s| s.first_ms)?;
        Some(Duration::from_millis(now_ms().saturating_sub(first)))
    }

    /// The segment appends go to now: every record a reader will hand out from here on is in
    /// it or a later one.
    pub fn writing_segment(&self) -> u64 {
        self.inner.lock().readable.0
    }

    /// Refreshes the gauges in [`metrics`]. Called when they are read (a scrape) or on a timer,
    /// not per acknowledgement: the oldest-age gauge changes with time anyway.
    pub fn update_metrics(&self) {
        metrics::MAX_BYTES.set(i64::try_from(self.inner.config.max_bytes).unwrap_or(i64::MAX));
        metrics::BYTES.set(i64::try_from(self.used_bytes()).unwrap_or(i64::MAX));
        metrics::OLDEST_UNACKED_AGE.set(self.oldest_unacked_age().map_or(0.0, |d| d.as_secs_f64()));
    }

    /// Stops accepting appends; appends already accepted are still written. The reader then
    /// ends when it has read everything written.
    pub fn close(&self) {
        self.inner.lock().closed = true;
        self.inner.writes.lock().unwrap_or_else(|e| e.into_inner()).take();
        self.inner.appended.notify_waiters();
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn delete_finished(&self, st: &mut State) {
        let done: Vec<u64> = st
            .segments
            .iter()
            .filter(|(seq, s)| s.sealed && st.reader_segments.iter().all(|r| **seq < *r) && s.unacked() == 0)
            .map(|(seq, _)| *seq)
            .collect();
        for seq in done {
            let path = segment_path(&self.config.dir, seq);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "cannot delete a finished spool segment");
                    continue;
                }
            }
            if let Some(seg) = st.segments.remove(&seq) {
                st.used = st.used.saturating_sub(seg.bytes);
            }
        }
    }
}

/// The writer thread: takes every waiting append, writes them with one `write`, syncs once,
/// then answers them all.
struct Writer {
    inner: Arc<Inner>,
    seq: u64,
    file: File,
    len: u64,
    dirty: bool,
}

impl Writer {
    fn create(inner: Arc<Inner>, seq: u64) -> Result<Writer, SpoolError> {
        let path = segment_path(&inner.config.dir, seq);
        let file = OpenOptions::new().create(true).append(true).open(&path).map_err(|e| SpoolError::io(&path, e))?;
        sync_dir(&inner.config.dir)?;
        let mut st = inner.lock();
        let segment = st.new_segment(0, 0, false, None);
        st.segments.insert(seq, segment);
        drop(st);
        Ok(Writer { inner, seq, file, len: 0, dirty: false })
    }

    fn run(mut self, rx: mpsc::Receiver<Write1>) {
        let interval = match self.inner.config.fsync {
            Fsync::EveryBatch => None,
            Fsync::Interval(d) => Some(d),
        };
        loop {
            let first = match interval {
                None => match rx.recv() {
                    Ok(w) => w,
                    Err(_) => break,
                },
                Some(d) => match rx.recv_timeout(d) {
                    Ok(w) => w,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        self.sync_if_dirty();
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                },
            };
            let mut batch = vec![first];
            while batch.len() < 4096 {
                match rx.try_recv() {
                    Ok(w) => batch.push(w),
                    Err(_) => break,
                }
            }
            self.write_batch(batch);
        }
        self.sync_if_dirty();
        self.seal();
        let mut st = self.inner.lock();
        st.closed = true;
        drop(st);
        self.inner.appended.notify_waiters();
    }

    fn write_batch(&mut self, batch: Vec<Write1>) {
        let now = now_ms();
        let mut run = Run::default();
        let mut broken: Option<String> = None;
        for w in batch {
            let size = (record::HEADER + w.parts[0].len() + w.parts[1].len()) as u64;
            if let Some(msg) = &broken {
                self.refuse(w, size, msg);
                continue;
            }
            let filled = self.len + run.bytes;
            if filled > 0 && filled + size > self.inner.config.segment_bytes {
                self.commit(&mut run, now);
                if let Err(e) = self.roll() {
                    tracing::error!(error = %e, "cannot start a new spool segment");
                    broken = Some(e.to_string());
                    self.refuse(w, size, &e.to_string());
                    continue;
                }
            }
            let offset = self.len + run.bytes;
            run.headers.push(record::header(&w.parts, now));
            run.bytes += size;
            run.records.push((w, RecordId { segment: self.seq, offset }, size));
        }
        self.commit(&mut run, now);
    }

    /// Writes the records of `run` to the current segment, syncs per the policy, makes them
    /// readable, and answers their appends.
    fn commit(&mut self, run: &mut Run, now: u64) {
        if run.records.is_empty() {
            return;
        }
        let path = segment_path(&self.inner.config.dir, self.seq);
        #[cfg(test)]
        if self.inner.fail_writes.load(std::sync::atomic::Ordering::SeqCst) {
            // What a full disk does: part of the batch reaches the file, then the write fails.
            let headers = run.headers.concat();
            let _ = self.file.write_all(headers.get(..headers.len() / 2).unwrap_or_default());
            self.fail_commit(run, &path, std::io::Error::from_raw_os_error(28));
            return;
        }
        let mut written = write_records(&mut self.file, run);
        if written.is_ok() && self.inner.config.fsync == Fsync::EveryBatch {
            written = self.file.sync_data();
        }
        if let Err(e) = written {
            self.fail_commit(run, &path, e);
            return;
        }
        self.dirty = self.inner.config.fsync != Fsync::EveryBatch;
        self.len += run.bytes;
        let records = run.records.len() as u64;
        {
            let mut st = self.inner.lock();
            if let Some(seg) = st.segments.get_mut(&self.seq) {
                seg.bytes = self.len;
                seg.records += records;
                seg.first_ms.get_or_insert(now);
            }
            st.readable = (self.seq, self.len);
        }
        metrics::APPENDED.inc_by(records);
        self.inner.appended.notify_waiters();
        for (w, id, _) in run.records.drain(..) {
            let _ = w.reply.send(Ok(id));
        }
        run.clear();
    }

    /// A batch that could not be written: cut off whatever part of it reached the file, so the
    /// segment stays clean, and refuse its appends (their senders are told to retry).
    fn fail_commit(&mut self, run: &mut Run, path: &Path, e: std::io::Error) {
        tracing::error!(path = %path.display(), error = %e, "spool write failed; refusing the batch");
        metrics::WRITE_FAILURES.inc();
        if let Err(cut) = self.file.set_len(self.len) {
            tracing::error!(path = %path.display(), error = %cut, "cannot cut the failed write off the segment");
        }
        let msg = e.to_string();
        for (w, _, size) in run.records.drain(..) {
            self.refuse(w, size, &msg);
        }
        run.clear();
    }

    fn refuse(&self, w: Write1, size: u64, msg: &str) {
        let mut st = self.inner.lock();
        st.used = st.used.saturating_sub(size);
        drop(st);
        let _ = w.reply.send(Err(SpoolError::io(&self.inner.config.dir, std::io::Error::other(msg.to_owned()))));
    }

    fn sync_if_dirty(&mut self) {
        if self.dirty {
            if let Err(e) = self.file.sync_data() {
                tracing::error!(error = %e, "spool fsync failed");
                return;
            }
            self.dirty = false;
        }
    }

    fn seal(&mut self) {
        let mut st = self.inner.lock();
        if let Some(seg) = st.segments.get_mut(&self.seq) {
            seg.sealed = true;
        }
        self.inner.delete_finished(&mut st);
    }

    /// Seals the current segment and continues in the next one.
    fn roll(&mut self) -> Result<(), SpoolError> {
        self.sync_if_dirty();
        self.seal();
        let next = self.seq.checked_add(1).ok_or_else(|| no_next_segment(&self.inner.config.dir, self.seq))?;
        let path = segment_path(&self.inner.config.dir, next);
        let file = OpenOptions::new().create(true).append(true).open(&path).map_err(|e| SpoolError::io(&path, e))?;
        sync_dir(&self.inner.config.dir)?;
        let mut st = self.inner.lock();
        let segment = st.new_segment(0, 0, false, None);
        st.segments.insert(next, segment);
        drop(st);
        self.seq = next;
        self.file = file;
        self.len = 0;
        Ok(())
    }
}

/// Hands out records in order, from disk, following the writer. One per consumer of the
/// spool ([`Spool::open_readers`]). The file reads run on tokio's blocking pool, never on the
/// async workers.
#[derive(Debug)]
pub struct SpoolReader {
    spool: Spool,
    /// Which of the spool's readers this is: what [`Spool::ack_by`] takes.
    index: usize,
    segment: u64,
    offset: u64,
    file: Option<BufReader<File>>,
    /// Records handed out from the current segment.
    handed: u64,
}

/// What one blocking read found at the reader's position.
enum Found {
    /// A record, where the next one starts, and the damaged bytes skipped before it.
    Record { payload: Vec<u8>, next: u64, skipped: u64 },
    /// No valid record between the position and the end of the written data.
    Nothing { skipped: u64 },
}

impl SpoolReader {
    /// The next record, waiting for one to be appended; `None` once the spool is closed and
    /// everything written has been read.
    pub async fn next(&mut self) -> Option<Result<(RecordId, Bytes), SpoolError>> {
        let inner = self.spool.inner.clone();
        loop {
            let appended = inner.appended.notified();
            tokio::pin!(appended);
            appended.as_mut().enable();
            let (readable, closed, next_segment) = {
                let st = self.spool.inner.lock();
                (st.readable, st.closed, st.segment_after(self.segment))
            };
            if (self.segment, self.offset) < readable {
                if self.segment < readable.0 && self.at_end_of_segment() {
                    // This segment is finished: move on to the next one that exists.
                    self.enter(next_segment.unwrap_or(readable.0));
                    continue;
                }
                let end = if self.segment < readable.0 { self.segment_len() } else { readable.1 };
                match self.read_one(end).await {
                    Ok(Some(record)) => return Some(Ok(record)),
                    // Damage up to the end of what is written: the position moved past it.
                    Ok(None) => continue,
                    Err(e) => return Some(Err(e)),
                }
            }
            if closed {
                return None;
            }
            appended.await;
        }
    }

    /// Which of the spool's readers this is (the first is 0).
    pub fn index(&self) -> usize {
        self.index
    }

    /// Whether a record is written and not yet read: [`SpoolReader::next`] would not wait.
    pub fn has_next(&self) -> bool {
        let st = self.spool.inner.lock();
        let mut at = (self.segment, self.offset);
        // At the end of a finished segment the reader is, in effect, at the start of the next
        // one: after a restart the appends go to a new segment, and the last replayed record's
        // documents must not wait for the next frame to be sent.
        if at.0 < st.readable.0 && st.segments.get(&at.0).is_none_or(|s| at.1 >= s.bytes) {
            at = (st.segment_after(at.0).unwrap_or(st.readable.0), 0);
        }
        at < st.readable
    }

    fn segment_len(&self) -> u64 {
        self.spool.inner.lock().segments.get(&self.segment).map_or(0, |s| s.bytes)
    }

    fn at_end_of_segment(&self) -> bool {
        let st = self.spool.inner.lock();
        st.segments.get(&self.segment).is_none_or(|s| self.offset >= s.bytes)
    }

    fn enter(&mut self, segment: u64) {
        let mut st = self.spool.inner.lock();
        // The records of the segment left behind are those handed out: damage found while
        // reading it must not keep it on disk forever waiting for acknowledgements.
        if let Some(seg) = st.segments.get_mut(&self.segment) {
            seg.records = seg.records.min(self.handed);
        }
        self.segment = segment;
        self.offset = 0;
        self.file = None;
        self.handed = 0;
        if let Some(at) = st.reader_segments.get_mut(self.index) {
            *at = segment;
        }
        self.spool.inner.delete_finished(&mut st);
    }

    /// Reads the record at the position (written data ends at `end`), skipping damage to the
    /// next valid record; `Ok(None)` when nothing valid is left before `end`.
    async fn read_one(&mut self, end: u64) -> Result<Option<(RecordId, Bytes)>, SpoolError> {
        let path = segment_path(&self.spool.inner.config.dir, self.segment);
        let (file, offset, max) = (self.file.take(), self.offset, self.spool.inner.config.segment_bytes);
        let task_path = path.clone();
        let (file, found) = tokio::task::spawn_blocking(move || read_at(file, &task_path, offset, end, max))
            .await
            .map_err(|e| SpoolError::io(&path, std::io::Error::other(e.to_string())))?;
        self.file = file;
        let found = found.map_err(|e| SpoolError::io(&path, e))?;
        let skipped = match &found {
            Found::Record { skipped, .. } | Found::Nothing { skipped } => *skipped,
        };
        if skipped > 0 {
            metrics::CORRUPT_REGIONS.inc();
            tracing::error!(path = %path.display(), offset, skipped_bytes = skipped, "damaged spool record skipped; reading on from the next valid one");
        }
        match found {
            Found::Record { payload, next, skipped } => {
                let id = RecordId { segment: self.segment, offset: offset + skipped };
                self.offset = next;
                self.handed += 1;
                Ok(Some((id, Bytes::from(payload))))
            }
            Found::Nothing { .. } => {
                self.offset = end;
                self.file = None;
                Ok(None)
            }
        }
    }

    /// Skips the rest of the current segment (after an error the reader cannot get past).
    pub fn skip_segment(&mut self) {
        let next = {
            let st = self.spool.inner.lock();
            st.segment_after(self.segment).unwrap_or(st.readable.0)
        };
        if next != self.segment {
            self.enter(next);
        }
    }
}

/// The blocking part of [`SpoolReader::read_one`]: opens the segment if needed, reads the
/// record at `offset`, and when it is damaged finds the next valid one before `end`.
fn read_at(
    file: Option<BufReader<File>>,
    path: &Path,
    offset: u64,
    end: u64,
    max_len: u64,
) -> (Option<BufReader<File>>, std::io::Result<Found>) {
    let mut file = match file {
        Some(f) => f,
        None => match File::open(path).and_then(|mut f| f.seek(SeekFrom::Start(offset)).map(|_| f)) {
            Ok(f) => BufReader::with_capacity(256 * 1024, f),
            Err(e) => return (None, Err(e)),
        },
    };
    let first = match record::read(&mut file, max_len) {
        Ok(r) => r,
        Err(e) => return (None, Err(e)),
    };
    if let record::Read1::Record { payload, .. } = first {
        let next = offset + (record::HEADER + payload.len()) as u64;
        if next <= end {
            return (Some(file), Ok(Found::Record { payload, next, skipped: 0 }));
        }
    }
    // The writer publishes only whole records, so this is damage: find the next valid record in
    // the rest of the written data (at most a segment, and only on this rare path).
    let region = match read_region(&mut file.into_inner(), offset, end) {
        Ok(r) => r,
        Err(e) => return (None, Err(e)),
    };
    let Some((at, payload)) = record::next_valid(&region, max_len) else {
        return (None, Ok(Found::Nothing { skipped: end.saturating_sub(offset) }));
    };
    let next = offset + (at + record::HEADER + payload.len()) as u64;
    (None, Ok(Found::Record { payload: payload.to_vec(), next, skipped: at as u64 }))
}

struct Scan {
    records: u64,
    /// Where the last valid record ends: the segment's length once a torn tail is cut.
    valid_bytes: u64,
    torn: bool,
    corrupt_regions: u64,
    first_ms: Option<u64>,
}

/// Checks every record of a segment. Damage followed by valid records is skipped (the reader
/// skips it again); damage with nothing valid after it is a torn tail.
fn scan_segment(path: &Path, max_record: u64) -> Result<Scan, SpoolError> {
    let mut file = File::open(path).map_err(|e| SpoolError::io(path, e))?;
    let len = file.metadata().map_err(|e| SpoolError::io(path, e))?.len();
    let mut scan = Scan { records: 0, valid_bytes: 0, torn: false, corrupt_regions: 0, first_ms: None };
    let mut offset = 0u64;
    loop {
        file.seek(SeekFrom::Start(offset)).map_err(|e| SpoolError::io(path, e))?;
        let mut r = BufReader::with_capacity(256 * 1024, &mut file);
        let damaged_at = loop {
            match record::read(&mut r, max_record).map_err(|e| SpoolError::io(path, e))? {
                record::Read1::Record { payload, appended_ms } => {
                    scan.records += 1;
                    offset += (record::HEADER + payload.len()) as u64;
                    scan.valid_bytes = offset;
                    scan.first_ms.get_or_insert(appended_ms);
                }
                record::Read1::End => return Ok(scan),
                record::Read1::Torn => break offset,
            }
        };
        drop(r);
        let region = read_region(&mut file, damaged_at, len).map_err(|e| SpoolError::io(path, e))?;
        match record::next_valid(&region, max_record) {
            Some((at, _)) => {
                tracing::error!(path = %path.display(), offset = damaged_at, skipped_bytes = at, "damaged spool record; keeping the valid records after it");
                metrics::CORRUPT_REGIONS.inc();
                scan.corrupt_regions += 1;
                offset = damaged_at + at as u64;
            }
            None => {
                scan.torn = true;
                return Ok(scan);
            }
        }
    }
}

/// The segments a previous run left in `dir`, each scanned: torn tails cut off, segments
/// without a record removed, what is left counted.
fn recover(dir: &Path, segment_bytes: u64, readers: usize) -> Result<(BTreeMap<u64, Segment>, Recovery), SpoolError> {
    let mut segments = BTreeMap::new();
    let mut recovery = Recovery::default();
    for (seq, path) in list_segments(dir)? {
        let scan = scan_segment(&path, segment_bytes)?;
        recovery.corrupt_regions += scan.corrupt_regions;
        if scan.torn {
            recovery.torn_segments += 1;
            metrics::TORN_TAILS.inc();
            tracing::warn!(path = %path.display(), kept_bytes = scan.valid_bytes, "spool segment has a torn tail; cutting it off");
            let f = OpenOptions::new().write(true).open(&path).map_err(|e| SpoolError::io(&path, e))?;
            f.set_len(scan.valid_bytes).map_err(|e| SpoolError::io(&path, e))?;
            f.sync_all().map_err(|e| SpoolError::io(&path, e))?;
        }
        if scan.records == 0 {
            fs::remove_file(&path).map_err(|e| SpoolError::io(&path, e))?;
            continue;
        }
        recovery.records += scan.records;
        recovery.bytes += scan.valid_bytes;
        segments.insert(
            seq,
            Segment {
                bytes: scan.valid_bytes,
                records: scan.records,
                acked: vec![0; readers],
                sealed: true,
                first_ms: scan.first_ms,
            },
        );
    }
    Ok((segments, recovery))
}

/// The bytes of `file` from `from` to `end`: where damage is searched past (at most a segment).
fn read_region(file: &mut File, from: u64, end: u64) -> std::io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(from))?;
    let mut region = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(file, end.saturating_sub(from)), &mut region)?;
    Ok(region)
}

fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, SpoolError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| SpoolError::io(dir, e))? {
        let entry = entry.map_err(|e| SpoolError::io(dir, e))?;
        let name = entry.file_name();
        // Only names as `segment_path` writes them: another spelling of the same number (`7.seg`,
        // `+7.seg`) would be read and deleted under a path that is not its own.
        let Some(seq) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".seg"))
            .filter(|n| n.len() == 20 && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        out.push((seq, entry.path()));
    }
    out.sort();
    Ok(out)
}

/// Segment numbers only grow; a segment numbered `u64::MAX` (a file put there by hand) leaves no
/// number for the next.
fn no_next_segment(dir: &Path, last: u64) -> SpoolError {
    let why = format!("spool segment {last} is the last number there is: no segment can follow it");
    SpoolError::io(segment_path(dir, last), std::io::Error::new(std::io::ErrorKind::InvalidData, why))
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.seg"))
}

/// Makes a new file's directory entry durable.
fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| SpoolError::io(dir, e))
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests;
