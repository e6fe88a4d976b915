//! What the receivers hand on: one [`Frame`] per accepted request, and the [`FrameSink`] that
//! takes it before the sender gets its answer.

use std::future::Future;
use std::ops::Range;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

/// How a frame arrived, which decides how its messages are parsed and identified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// A Logplex HTTPS drain request (`POST /logs`).
    Https,
    /// A syslog stream over TCP or TLS (RFC 6587 octet counting or newline-terminated).
    Syslog,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Https => "https",
            Protocol::Syslog => "syslog",
        }
    }
}

/// One accepted batch of syslog messages with what the request said about them.
#[derive(Clone, Debug)]
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
}

impl Frame {
    pub fn message(&self, i: usize) -> &[u8] {
        &self.body[self.messages[i].clone()]
    }
}

/// Why a sink did not take a frame. Senders are told to come back later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("pipeline full")]
    Full { retry_after: Duration },
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
