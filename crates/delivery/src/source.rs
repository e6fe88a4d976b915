//! Where the flow reads frames: the spool, the memory queue, or anything else that yields
//! frames in order (replay's files).

use std::future::Future;
use std::sync::Arc;

use drainpipe_ingest::Frame;
use drainpipe_spool::{RecordId, Spool, SpoolReader};
use tokio::sync::{mpsc, watch};

use crate::handoff::Backlog;
use crate::record;

/// What runs once every document of a frame is done: the frame's acknowledgement.
pub type Done = Box<dyn FnOnce() + Send>;

/// Frames in the order they are to be delivered.
pub trait FrameSource: Send + 'static {
    /// The next frame and what to do once it is delivered; `None` when the source has ended.
    fn next(&mut self) -> impl Future<Output = Option<(Frame, Done)>> + Send;

    /// Whether a frame can be had at once; while none can, what is gathered goes to the
    /// indexer rather than waiting for more.
    fn has_next(&self) -> bool;
}

/// The spool, read in order until delivery is told to stop (then, when its disk goes with the
/// process, until it has nothing more); each record is acknowledged once its frame is done.
#[derive(Debug)]
pub(crate) struct SpoolSource {
    reader: SpoolReader,
    spool: Spool,
    stop: watch::Receiver<bool>,
    drain_on_stop: bool,
    /// Past the stop with `drain_on_stop`: reading on until the spool has nothing more.
    draining: bool,
}

impl SpoolSource {
    pub(crate) fn new(
        reader: SpoolReader,
        spool: Spool,
        stop: watch::Receiver<bool>,
        drain_on_stop: bool,
    ) -> SpoolSource {
        SpoolSource { reader, spool, stop, drain_on_stop, draining: false }
    }

    /// Whether a record can be had at once.
    pub(crate) fn has_next(&self) -> bool {
        self.reader.has_next()
    }

    /// The next record, unless told to stop first.
    async fn next_record(&mut self) -> Option<Result<(RecordId, bytes::Bytes), String>> {
        loop {
            if self.draining {
                if !self.reader.has_next() {
                    return None;
                }
                return self.reader.next().await.map(|r| r.map_err(|e| e.to_string()));
            }
            tokio::select! {
                next = self.reader.next() => return next.map(|r| r.map_err(|e| e.to_string())),
                _ = self.stop.wait_for(|stop| *stop) => {
                    if !self.drain_on_stop {
                        return None;
                    }
                    tracing::info!("sending what the spool holds before stopping (its disk goes with the process)");
                    self.draining = true;
                }
            }
        }
    }

    /// The next frame and its record, unless told to stop first. A record that is not a frame
    /// is acknowledged (for this reader) and skipped.
    pub(crate) async fn next_frame(&mut self) -> Option<(RecordId, Frame)> {
        loop {
            let (id, bytes) = match self.next_record().await? {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "unreadable spool record; skipping the rest of its segment");
                    self.reader.skip_segment();
                    continue;
                }
            };
            match record::decode(&bytes) {
                Ok(frame) => return Some((id, frame)),
                Err(e) => {
                    tracing::error!(error = %e, bytes = bytes.len(), "spool record is not a frame; dropping it");
                    self.ack(id);
                }
            }
        }
    }

    /// Resolves once delivery is told to stop.
    pub(crate) async fn stopped(&mut self) {
        let _ = self.stop.wait_for(|stop| *stop).await;
    }

    /// Acknowledges a record for this reader.
    pub(crate) fn ack(&self, id: RecordId) {
        self.spool.ack_by(self.reader.index(), id);
    }
}

impl FrameSource for SpoolSource {
    async fn next(&mut self) -> Option<(Frame, Done)> {
        let (id, frame) = self.next_frame().await?;
        let (spool, reader) = (self.spool.clone(), self.reader.index());
        Some((frame, Box::new(move || spool.ack_by(reader, id))))
    }

    fn has_next(&self) -> bool {
        SpoolSource::has_next(self)
    }
}

/// The memory queue, read until every hand-off to it is gone.
#[derive(Debug)]
pub(crate) struct MemorySource {
    pub(crate) frames: mpsc::Receiver<Frame>,
    pub(crate) backlog: Arc<Backlog>,
}

impl FrameSource for MemorySource {
    async fn next(&mut self) -> Option<(Frame, Done)> {
        let frame = self.frames.recv().await?;
        let (backlog, messages) = (self.backlog.clone(), frame.messages.len());
        Some((frame, Box::new(move || backlog.done(messages))))
    }

    fn has_next(&self) -> bool {
        !self.frames.is_empty()
    }
}
