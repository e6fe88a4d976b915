//! What the receivers hand on: one [`Frame`] per accepted request, and the [`FrameSink`] that
//! takes it before the sender gets its answer.

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How a frame arrived, which decides how its messages are parsed and identified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// A Logplex drain request (`POST /logs`, over HTTPS or HTTP).
    Logplex,
    /// A syslog stream over TCP or TLS (RFC 6587 octet counting or newline-terminated).
    Syslog,
    /// An OTLP logs export (`POST /v1/logs`): each message is one log record with its resource
    /// and scope, as drainpipe-otlp's `split` encodes it.
    Otlp,
    /// An OTLP metrics export (`POST /v1/metrics`, or gRPC): each message is one data point
    /// with its metric, resource and scope (drainpipe-otlp's `point_records`).
    OtlpMetrics,
    /// An OTLP traces export: each message is one span with its resource and scope.
    OtlpTraces,
}

impl Protocol {
    /// The `protocol` label of the ingest metrics (`https` for Logplex, as since 0.1, so that
    /// dashboards and alerts keep matching).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Logplex => "https",
            Protocol::Syslog => "syslog",
            Protocol::Otlp | Protocol::OtlpMetrics | Protocol::OtlpTraces => "otlp",
        }
    }
}

/// What places a frame's messages, for their document ids: message `i` of the frame is the
/// message at this position plus `i`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Position {
    /// Placed by the frame itself: a Logplex request (its `Logplex-Frame-Id`, else its body)
    /// and the message's place in it. Also a syslog frame from a spool record of drainpipe
    /// 0.1, which had no stream numbers.
    InFrame,
    /// Number `first` of a stream that has no frame ids of its own: a syslog connection (an id
    /// drawn when it was accepted), or a replayed file (its content's hash).
    OnStream { stream: u64, first: u64 },
    /// Record number `first_record` of an OTLP export request.
    InExport { first_record: u64 },
}

/// One accepted batch of messages (Logplex, syslog or OTLP records, as `protocol` says) with
/// what the request or connection said about them.
#[derive(Debug)]
pub struct Frame {
    pub protocol: Protocol,
    /// The request body, decompressed.
    pub body: Bytes,
    /// Each message's bytes in `body`, in order. Positions in this list are part of the
    /// documents' ids, so they must be the same when the same body arrives again.
    pub messages: Vec<Range<usize>>,
    /// Messages cut to the size limit: (position in `messages`, length before the cut).
    pub cut: Vec<(usize, usize)>,
    /// From the `app` query parameter.
    pub app: Option<String>,
    /// `Logplex-Drain-Token`; absent on Private Spaces drains.
    pub drain_token: Option<String>,
    /// `Logplex-Frame-Id`; absent on Private Spaces drains.
    pub frame_id: Option<String>,
    /// The drain URL's other query parameters, in order.
    pub labels: Vec<(String, String)>,
    pub received_at: SystemTime,
    /// Where the messages are, which makes their ids.
    pub position: Position,
    /// The share of the receivers' memory budget this frame holds while it is in memory.
    pub reservation: Reservation,
}

impl Frame {
    /// A frame of these messages received now, with nothing else known about it (no app, drain
    /// token, frame id, labels, stream position or memory share); set what is known after.
    pub fn new(protocol: Protocol, body: Bytes, messages: Vec<Range<usize>>) -> Frame {
        Frame {
            protocol,
            body,
            messages,
            cut: Vec::new(),
            app: None,
            drain_token: None,
            frame_id: None,
            labels: Vec::new(),
            received_at: SystemTime::now(),
            position: Position::InFrame,
            reservation: Reservation::default(),
        }
    }

    /// Message `i`'s bytes; empty when there is no message `i` or its range is not inside the
    /// body (receivers and the spool's frame decoding never make such a frame).
    pub fn message(&self, i: usize) -> &[u8] {
        self.messages.get(i).and_then(|r| self.body.get(r.clone())).unwrap_or_default()
    }

    /// Memory a frame holds besides its body, per message.
    pub const BYTES_PER_MESSAGE: usize = size_of::<Range<usize>>();

    /// The memory this frame holds: its body and its message index.
    pub fn memory_bytes(&self) -> usize {
        self.body.len() + self.messages.len() * Frame::BYTES_PER_MESSAGE
    }
}

/// The bytes that received frames may hold in memory at once: request bodies being read and
/// inflated, and frames waiting in memory for delivery. A sender that would take more is
/// answered 503 (HTTPS) or not read (syslog), so memory is set by configuration, not by load.
#[derive(Clone, Debug)]
pub struct MemoryBudget {
    permits: Arc<Semaphore>,
    max: usize,
}

/// Bytes held from a [`MemoryBudget`], given back when dropped.
#[derive(Debug, Default)]
pub struct Reservation {
    permit: Option<OwnedSemaphorePermit>,
    budget: Option<MemoryBudget>,
}

/// Semaphore permits are counted in KiB so that budgets of many GiB fit in a `u32`.
const UNIT: usize = 1024;

fn units(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX)
}

impl MemoryBudget {
    pub fn new(max_bytes: usize) -> MemoryBudget {
        let max = max_bytes.max(UNIT);
        MemoryBudget { permits: Arc::new(Semaphore::new(units(max) as usize)), max }
    }

    pub fn max_bytes(&self) -> usize {
        self.max
    }

    /// Bytes held now.
    pub fn used_bytes(&self) -> usize {
        (units(self.max) as usize).saturating_sub(self.permits.available_permits()) * UNIT
    }

    /// Refreshes the memory gauges in [`crate::metrics`].
    pub fn update_metrics(&self) {
        crate::metrics::MEMORY_BYTES.set(i64::try_from(self.used_bytes()).unwrap_or(i64::MAX));
        crate::metrics::MEMORY_MAX_BYTES.set(i64::try_from(self.max).unwrap_or(i64::MAX));
    }

    /// An empty reservation that can grow.
    pub fn reservation(&self) -> Reservation {
        Reservation { permit: None, budget: Some(self.clone()) }
    }
}

impl Reservation {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.permit.as_ref().map_or(0, |p| p.num_permits() * UNIT)
    }

    /// Holds `bytes` more, if the budget has them now.
    pub fn try_grow(&mut self, bytes: usize) -> bool {
        let Some(budget) = &self.budget else { return true };
        match budget.permits.clone().try_acquire_many_owned(units(bytes)) {
            Ok(p) => {
                self.merge(p);
                true
            }
            Err(_) => false,
        }
    }

    /// Holds `bytes` more, waiting for them (stream receivers stop reading meanwhile).
    pub async fn grow(&mut self, bytes: usize) {
        let Some(budget) = &self.budget else { return };
        // More than the whole budget can never be granted: take all of it instead.
        let wanted = units(bytes).min(units(budget.max));
        if let Ok(p) = budget.permits.clone().acquire_many_owned(wanted).await {
            self.merge(p);
        }
    }

    /// Holds only what `bytes` needs, giving back the rest.
    pub fn shrink_to(&mut self, bytes: usize) {
        let keep = units(bytes) as usize;
        if let Some(p) = self.permit.as_mut() {
            if p.num_permits() > keep {
                let extra = p.split(p.num_permits() - keep);
                drop(extra);
            }
        }
    }

    /// Moves up to `bytes` of what this holds into a reservation of its own (one frame's share
    /// of what a request reserved).
    pub fn split_off(&mut self, bytes: usize) -> Reservation {
        let permit = self.permit.as_mut().and_then(|p| p.split((units(bytes) as usize).min(p.num_permits())));
        Reservation { permit, budget: self.budget.clone() }
    }

    fn merge(&mut self, p: OwnedSemaphorePermit) {
        match self.permit.as_mut() {
            Some(held) => held.merge(p),
            None => self.permit = Some(p),
        }
    }
}

/// Why a sink did not take a frame. Senders are told to come back later.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("pipeline full")]
    Full { retry_after: Duration },
    /// The frame could not be stored (a spool write failed: a full or failing disk).
    #[error("cannot store the frame: {reason}")]
    Unavailable { reason: String, retry_after: Duration },
    #[error("shutting down")]
    ShuttingDown,
}

/// Takes frames from the receivers. Both methods resolve once the frame is safely handed on;
/// the receiver answers the sender only then.
pub trait FrameSink: Clone + Send + Sync + 'static {
    /// Takes the frame, or refuses it at once when full (HTTP answers 503 and Logplex retries).
    fn accept(&self, frame: Frame) -> impl Future<Output = Result<(), Rejected>> + Send;

    /// Takes the frame, waiting for room when full (stream receivers stop reading meanwhile,
    /// which is TCP backpressure). Fails only when shutting down.
    fn accept_or_wait(&self, frame: Frame) -> impl Future<Output = Result<(), Rejected>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_outside_the_body_reads_as_empty_not_a_panic() {
        let frame =
            Frame::new(Protocol::Logplex, Bytes::from_static(b"hello"), vec![0..2, 3..9, Range { start: 4, end: 2 }]);
        assert_eq!(frame.message(0), b"he");
        assert_eq!(frame.message(1), b"", "past the end of the body");
        assert_eq!(frame.message(2), b"", "a range that ends before it starts");
        assert_eq!(frame.message(3), b"", "no such message");
    }
}
