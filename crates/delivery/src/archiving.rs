//! The raw archive as the spool's second reader: every frame, in spool order, written to its
//! hour file (drainpipe-archive) in batches, each acknowledged once it is synced and
//! committed. Elasticsearch being down does not stop it, nor does a failing archive stop
//! delivery: a spool record goes only when both are done with it.

use std::time::{Duration, SystemTime};

use drainpipe_archive::{metrics, ArchiveWriter, Hour};
use drainpipe_ingest::{Frame, LogThrottle};
use drainpipe_spool::RecordId;

use crate::source::SpoolSource;

/// A batch closes at this many frames or bytes of body, or when no record is waiting.
const BATCH_FRAMES: usize = 1024;
const BATCH_BYTES: usize = 4 << 20;

/// An hour's files are finished this long after the hour ends (frames received just before
/// the hour's end may be read from the spool a little after it).
const CLOSE_GRACE: Duration = Duration::from_secs(60);

/// How often hours are checked for closing while no frame comes.
const TICK: Duration = Duration::from_secs(15);

/// A failed batch is tried again after this, doubling up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

static FAILURE_LOG: LogThrottle = LogThrottle::new(Duration::from_secs(30));

/// What the archive needs: the spool's second reader and the writer opened on it.
#[derive(Debug)]
pub struct Archiving {
    pub reader: drainpipe_spool::SpoolReader,
    pub writer: ArchiveWriter,
}

/// The archive's loop: runs until delivery is told to stop (or, when the spool drains on stop,
/// until the spool is empty). It ends early only if the writer is lost (a panic in it).
pub(crate) async fn run(mut source: SpoolSource, writer: ArchiveWriter) -> Result<(), String> {
    let through = writer.through();
    let mut writer = Writer::start(writer)?;
    let mut tick = tokio::time::interval(TICK);
    let mut newest: Option<Hour> = None;
    let mut swept = Hour::of(SystemTime::now());
    loop {
        let first = tokio::select! {
            next = source.next_frame() => next,
            _ = tick.tick() => {
                writer.housekeeping(&source, newest, &mut swept).await?;
                continue;
            }
        };
        let Some(first) = first else { break };
        let (frames, ids) = gather(&mut source, first, through).await;
        // `ids` always holds `first`'s: the last of them is what the batch commits through.
        let Some(&last) = ids.last() else { continue };
        let Some(frames) = writer.write_until_done(&mut source, frames, last).await? else { break };
        newest = frames.last().map(|f| Hour::of(f.received_at)).or(newest);
        ids.iter().for_each(|id| source.ack(*id));
        if !source.has_next() {
            metrics::LAG.set(0.0);
        }
        writer.housekeeping(&source, newest, &mut swept).await?;
    }
    Ok(())
}

/// `first` and what follows it at once, up to a batch: the frames to write, and the records
/// they came from (all acknowledged once it is written). Records the archive already has
/// (before a restart: up to `through`) are among the records, not the frames.
async fn gather(
    source: &mut SpoolSource,
    first: (RecordId, Frame),
    through: Option<RecordId>,
) -> (Vec<Frame>, Vec<RecordId>) {
    let (mut frames, mut ids, mut bytes) = (Vec::new(), Vec::new(), 0);
    let mut next = Some(first);
    while let Some((id, frame)) = next.take() {
        ids.push(id);
        if through.is_none_or(|t| id > t) {
            bytes += frame.body.len();
            frames.push(frame);
        }
        if frames.len() < BATCH_FRAMES && bytes < BATCH_BYTES && source.has_next() {
            next = source.next_frame().await;
        }
    }
    set_lag(&frames);
    (frames, ids)
}

/// The lag gauge: how long the oldest of `frames` has waited since it was received.
fn set_lag(frames: &[Frame]) {
    if let Some(oldest) = frames.first() {
        let age = SystemTime::now().duration_since(oldest.received_at).unwrap_or_default();
        metrics::LAG.set(age.as_secs_f64());
    }
}

/// A job for the writer's thread.
type Job = Box<dyn FnOnce(&mut ArchiveWriter) + Send>;

/// The writer on a thread of its own: file writes and fsyncs never block the async workers,
/// and its buffers stay with one thread (one allocator arena) from batch to batch.
struct Writer(std::sync::mpsc::Sender<Job>);

impl Writer {
    fn start(mut writer: ArchiveWriter) -> Result<Writer, String> {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("drainpipe-archive".into())
            .spawn(move || queue.iter().for_each(|job| job(&mut writer)))
            .map_err(|e| format!("cannot start the archive's thread: {e}"))?;
        Ok(Writer(jobs))
    }

    /// Runs `f` on the writer's thread.
    async fn blocking<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut ArchiveWriter) -> T + Send + 'static,
    ) -> Result<T, String> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let lost = || "the archive writer was lost (its thread ended)".to_owned();
        self.0.send(Box::new(move |w| drop(tx.send(f(w))))).map_err(|_| lost())?;
        rx.await.map_err(|_| lost())
    }

    /// Writes the batch's frames, trying again with backoff while the disk refuses (full,
    /// failing); gives them back once written. `Ok(None)` when delivery stopped first: the
    /// batch stays in the spool for the next start.
    async fn write_until_done(
        &mut self,
        source: &mut SpoolSource,
        mut frames: Vec<Frame>,
        last: RecordId,
    ) -> Result<Option<Vec<Frame>>, String> {
        let mut backoff = FIRST_BACKOFF;
        loop {
            if frames.is_empty() {
                return Ok(Some(frames));
            }
            let written;
            (written, frames) = self
                .blocking(move |w| {
                    let written = w.write(&frames, last);
                    (written, frames)
                })
                .await?;
            match written {
                Ok(()) => return Ok(Some(frames)),
                Err(e) => {
                    if let Some(held_back) = FAILURE_LOG.allow() {
                        tracing::error!(error = %e, frames = frames.len(), retry_in = ?backoff, held_back, "cannot write to the archive; its frames stay in the spool");
                    }
                }
            }
            set_lag(&frames);
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = source.stopped() => return Ok(None),
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Finishes the hours the archive is past, and once an hour sweeps out what retention no
    /// longer keeps. Failures are logged and tried again at the next tick.
    async fn housekeeping(
        &mut self,
        source: &SpoolSource,
        newest: Option<Hour>,
        swept: &mut Hour,
    ) -> Result<(), String> {
        let now = SystemTime::now();
        let wall = Hour::of(now.checked_sub(CLOSE_GRACE).unwrap_or(now));
        // While frames wait, an hour is finished only once frames of a later one are written.
        let limit = match (source.has_next(), newest) {
            (true, Some(newest)) => wall.min(newest),
            _ => wall,
        };
        let closing = self
            .blocking(move |w| w.oldest_open_hour().is_some_and(|open| open < limit).then(|| w.close_before(limit)));
        if let Some(Err(e)) = closing.await? {
            tracing::error!(error = %e, "cannot finish an archive hour; trying again");
        }
        if Hour::of(now) > *swept {
            *swept = Hour::of(now);
            if let Err(e) = self.blocking(move |w| w.sweep(now)).await? {
                tracing::error!(error = %e, "cannot sweep the archive for retention; trying again in an hour");
            }
        }
        Ok(())
    }
}
