//! Where the receivers hand frames ([`Handoff`], ingest's `FrameSink`): the durable spool, or
//! (without `--spool-dir`) a bounded in-memory queue.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use drainpipe_bulk_indexer::Backoff;
use drainpipe_ingest::{Frame, FrameSink, Rejected};
use drainpipe_spool::{Spool, SpoolError};
use tokio::sync::{mpsc, watch};

use crate::{metrics, record};

/// The receivers' sink. Full means 503 with `Retry-After` for Logplex and OTLP, and no reading
/// for syslog. Once closed (shutdown), both refuse at once, and a syslog receiver waiting for
/// room stops waiting, so shutdown never hangs on a full queue.
#[derive(Clone, Debug)]
pub struct Handoff {
    queue: Queue,
    closed: watch::Receiver<bool>,
}

#[derive(Clone, Debug)]
enum Queue {
    Memory(mpsc::Sender<Frame>, Arc<Backlog>),
    Spool(Spool),
}

/// Closes a [`Handoff`] and every clone of it.
#[derive(Debug)]
pub(crate) struct HandoffCloser {
    closed: watch::Sender<bool>,
    spool: Option<Spool>,
}

impl HandoffCloser {
    pub(crate) fn close(&self) {
        let _ = self.closed.send(true);
        if let Some(spool) = &self.spool {
            spool.close();
        }
    }
}

/// Frames and messages accepted into the memory queue and not yet delivered (a crash loses
/// them): what shutdown reports, and the metric's gauges.
#[derive(Debug, Default)]
pub(crate) struct Backlog {
    frames: AtomicI64,
    messages: AtomicI64,
}

impl Backlog {
    pub(crate) fn add(&self, messages: usize) {
        self.change(1, messages as i64);
    }

    pub(crate) fn done(&self, messages: usize) {
        self.change(-1, -(messages as i64));
    }

    fn change(&self, frames: i64, messages: i64) {
        self.frames.fetch_add(frames, Ordering::AcqRel);
        self.messages.fetch_add(messages, Ordering::AcqRel);
        metrics::backlog_changed(frames, messages);
    }

    /// (frames, messages) held now.
    pub(crate) fn now(&self) -> (u64, u64) {
        let get = |n: &AtomicI64| u64::try_from(n.load(Ordering::Acquire)).unwrap_or(0);
        (get(&self.frames), get(&self.messages))
    }
}

/// While the spool is full, Logplex is told to come back after this long.
const SPOOL_FULL_RETRY: Duration = Duration::from_secs(5);
/// A syslog frame waiting for room in the spool tries again after this long at first.
const SPOOL_RETRY_MIN: Duration = Duration::from_millis(200);
/// While the memory queue is full, Logplex is told to come back after this long.
const QUEUE_FULL_RETRY: Duration = Duration::from_secs(1);

impl Handoff {
    pub(crate) fn memory(queue: mpsc::Sender<Frame>, backlog: Arc<Backlog>) -> (Handoff, HandoffCloser) {
        Handoff::new(Queue::Memory(queue, backlog), None)
    }

    pub(crate) fn spool(spool: Spool) -> (Handoff, HandoffCloser) {
        Handoff::new(Queue::Spool(spool.clone()), Some(spool))
    }

    fn new(queue: Queue, spool: Option<Spool>) -> (Handoff, HandoffCloser) {
        let (tx, rx) = watch::channel(false);
        (Handoff { queue, closed: rx }, HandoffCloser { closed: tx, spool })
    }

    fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Resolves once the hand-off is closed.
    async fn closing(&self) {
        let mut closed = self.closed.clone();
        let _ = closed.wait_for(|c| *c).await;
    }

    /// How full the hand-off is, to be asked at any time (for `/readyz`) without keeping the
    /// memory queue open: it closes when the receivers' hand-offs are gone.
    pub fn fill_gauge(&self) -> FillGauge {
        FillGauge(match &self.queue {
            Queue::Memory(queue, _) => Gauge::Memory(queue.downgrade()),
            Queue::Spool(spool) => Gauge::Spool(spool.clone()),
        })
    }
}

/// See [`Handoff::fill_gauge`].
#[derive(Clone, Debug)]
pub struct FillGauge(Gauge);

#[derive(Clone, Debug)]
enum Gauge {
    Memory(mpsc::WeakSender<Frame>),
    Spool(Spool),
}

/// How full the hand-off is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fill {
    /// Bytes the spool holds (its limit is the operator's `--spool-max-bytes`).
    Spool { used_bytes: u64 },
    /// Frames waiting in the memory queue, of at most `max_frames`.
    Memory { frames: usize, max_frames: usize },
}

impl FillGauge {
    /// Brings the spool's gauges up to date (for a scrape).
    pub fn update_metrics(&self) {
        if let Gauge::Spool(spool) = &self.0 {
            spool.update_metrics();
        }
    }

    /// `None` once the memory queue is gone (shutdown).
    pub fn now(&self) -> Option<Fill> {
        match &self.0 {
            Gauge::Spool(spool) => Some(Fill::Spool { used_bytes: spool.used_bytes() }),
            Gauge::Memory(queue) => queue
                .upgrade()
                .map(|q| Fill::Memory { frames: q.max_capacity() - q.capacity(), max_frames: q.max_capacity() }),
        }
    }
}

impl FrameSink for Handoff {
    async fn accept(&self, frame: Frame) -> Result<(), Rejected> {
        if self.is_closed() {
            return Err(Rejected::ShuttingDown);
        }
        match &self.queue {
            Queue::Memory(queue, backlog) => {
                let messages = frame.messages.len();
                match queue.try_send(frame) {
                    Ok(()) => {
                        backlog.add(messages);
                        Ok(())
                    }
                    Err(mpsc::error::TrySendError::Full(_)) => Err(Rejected::Full { retry_after: QUEUE_FULL_RETRY }),
                    Err(mpsc::error::TrySendError::Closed(_)) => Err(Rejected::ShuttingDown),
                }
            }
            Queue::Spool(spool) => match spool.append_parts(record::encode_parts(&frame)).await {
                Ok(_) => Ok(()),
                Err(SpoolError::Full { .. }) => Err(Rejected::Full { retry_after: SPOOL_FULL_RETRY }),
                Err(SpoolError::Closed) => Err(Rejected::ShuttingDown),
                Err(e) => {
                    tracing::error!(error = %e, "cannot write to the spool; refusing the frame");
                    Err(Rejected::Unavailable { reason: e.to_string(), retry_after: SPOOL_FULL_RETRY })
                }
            },
        }
    }

    async fn accept_or_wait(&self, frame: Frame) -> Result<(), Rejected> {
        if self.is_closed() {
            return Err(Rejected::ShuttingDown);
        }
        match &self.queue {
            Queue::Memory(queue, backlog) => {
                let messages = frame.messages.len();
                tokio::select! {
                    sent = queue.send(frame) => sent.map_err(|_| Rejected::ShuttingDown)?,
                    () = self.closing() => return Err(Rejected::ShuttingDown),
                }
                backlog.add(messages);
                Ok(())
            }
            Queue::Spool(spool) => {
                // The record is all that waits: the frame's index goes now (the body is the
                // record's second part).
                let record = record::encode_parts(&frame);
                drop(frame);
                self.append_or_wait(spool, record).await
            }
        }
    }
}

impl Handoff {
    /// Appends `record`, waiting (with backoff) while the spool cannot take it.
    async fn append_or_wait(&self, spool: &Spool, record: [bytes::Bytes; 2]) -> Result<(), Rejected> {
        let mut backoff = Backoff::new(SPOOL_RETRY_MIN, SPOOL_FULL_RETRY);
        loop {
            match spool.append_parts(record.clone()).await {
                Ok(_) => return Ok(()),
                Err(SpoolError::Closed) => return Err(Rejected::ShuttingDown),
                Err(e) => {
                    if !matches!(e, SpoolError::Full { .. }) {
                        tracing::error!(error = %e, "cannot write to the spool; waiting");
                    }
                    tokio::select! {
                        () = tokio::time::sleep(backoff.next_delay()) => {}
                        () = self.closing() => return Err(Rejected::ShuttingDown),
                    }
                }
            }
        }
    }
}
