//! The syslog drain listener (TCP, or TLS with the same certificate as HTTPS). Each connection
//! is read into a buffer, split into messages by [`StreamDecoder`], and every read's worth of
//! messages is handed on as one [`Frame`]. While the sink is full the connection is not read,
//! so the sender is slowed by TCP itself instead of drainpipe buffering without bound.

use std::future::Future;
use std::hash::{BuildHasher as _, Hasher as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::frame::{Frame, FrameSink, MemoryBudget, Protocol, StreamPosition};
use crate::listener::{accept_loop, handshake, Connection};
use crate::metrics;
use crate::stream_framing::StreamDecoder;

/// Limits of the syslog listener.
#[derive(Clone)]
pub struct SyslogConfig {
    /// Longer messages are cut to this many bytes, tagged, and indexed.
    pub max_message_bytes: usize,
    pub max_connections: usize,
    /// A connection silent for this long is closed (senders reconnect). At the connection
    /// limit, the connection silent the longest is closed sooner to make room.
    pub idle_timeout: Duration,
    /// Time allowed for a TLS handshake.
    pub handshake_timeout: Duration,
    /// Serve syslog over TLS with this acceptor.
    pub tls: Option<TlsAcceptor>,
    /// Memory that frames read and not yet handed on may hold; while it is spent, connections
    /// are not read.
    pub budget: MemoryBudget,
}

impl Default for SyslogConfig {
    fn default() -> SyslogConfig {
        SyslogConfig {
            max_message_bytes: 64 * 1024,
            max_connections: 1024,
            idle_timeout: Duration::from_secs(600),
            handshake_timeout: Duration::from_secs(10),
            tls: None,
            budget: MemoryBudget::new(64 * 1024 * 1024),
        }
    }
}

impl std::fmt::Debug for SyslogConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyslogConfig")
            .field("max_message_bytes", &self.max_message_bytes)
            .field("max_connections", &self.max_connections)
            .field("idle_timeout", &self.idle_timeout)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// Messages read per frame at most; a read of 64 KiB rarely holds more.
const MAX_FRAME_MESSAGES: usize = 1024;
const READ_BUFFER: usize = 64 * 1024;

/// Serves syslog connections on `listener` until `shutdown` resolves; then stops reading,
/// hands on what each connection had decoded, and returns when all connections are closed.
pub async fn run<S: FrameSink>(
    listener: TcpListener,
    config: SyslogConfig,
    sink: S,
    shutdown: impl Future<Output = ()>,
) {
    let config = Arc::new(config);
    accept_loop(listener, Protocol::Syslog.as_str(), config.max_connections, shutdown, |stream, peer, connection| {
        let (config, sink) = (config.clone(), sink.clone());
        async move {
            match config.tls.clone() {
                None => read_connection(stream, peer, &config, &sink, connection).await,
                Some(acceptor) => {
                    if let Some(tls) = handshake(&acceptor, stream, peer, config.handshake_timeout).await {
                        read_connection(tls, peer, &config, &sink, connection).await;
                    }
                }
            }
        }
    })
    .await;
}

async fn read_connection<I, S>(mut io: I, peer: SocketAddr, config: &SyslogConfig, sink: &S, mut connection: Connection)
where
    I: AsyncRead + Unpin,
    S: FrameSink,
{
    let activity = connection.activity();
    let mut stream = Stream::new(config);
    let mut decoder = StreamDecoder::new(config.max_message_bytes);
    let mut buf = BytesMut::with_capacity(READ_BUFFER);
    loop {
        if buf.capacity() - buf.len() < READ_BUFFER / 4 {
            buf.reserve(READ_BUFFER);
        }
        activity.idle();
        let read = tokio::select! {
            r = tokio::time::timeout(config.idle_timeout, io.read_buf(&mut buf)) => r,
            () = connection.closing() => break,
        };
        activity.busy();
        let eof = match read {
            Err(_) => {
                tracing::debug!(%peer, "closing idle syslog connection");
                true
            }
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "syslog connection failed");
                true
            }
            Ok(Ok(0)) => true,
            Ok(Ok(_)) => false,
        };
        while let Some(frame) = stream.take_frame(&mut decoder, &mut buf, eof).await {
            if sink.accept_or_wait(frame).await.is_err() {
                return;
            }
        }
        if eof {
            return;
        }
    }
    // Closing (shutdown, or evicted to make room): hand on what was already read, including a
    // last line without newline.
    while let Some(frame) = stream.take_frame(&mut decoder, &mut buf, true).await {
        if sink.accept_or_wait(frame).await.is_err() {
            return;
        }
    }
}

/// One connection's place in the message numbering: an id drawn when it was accepted and the
/// number of the next message, which together identify every message (identical lines on one
/// connection are distinct events; the spool keeps both, so a replay makes the same ids).
struct Stream<'a> {
    config: &'a SyslogConfig,
    id: u64,
    next: u64,
}

impl<'a> Stream<'a> {
    fn new(config: &'a SyslogConfig) -> Stream<'a> {
        // std's RandomState is seeded from the OS once per process: a fresh 64-bit id per
        // connection, distinct across connections and restarts.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos());
        Stream { config, id: h.finish(), next: 0 }
    }

    /// The next frame with its share of the memory budget, waiting for the budget (the socket
    /// is not read meanwhile); `None` when no message is ready.
    async fn take_frame(&mut self, decoder: &mut StreamDecoder, buf: &mut BytesMut, eof: bool) -> Option<Frame> {
        let mut frame = take_frame(decoder, buf, eof)?;
        frame.stream = Some(StreamPosition { stream: self.id, first: self.next });
        self.next += frame.messages.len() as u64;
        frame.reservation = self.config.budget.reservation();
        let bytes = frame.memory_bytes();
        frame.reservation.grow(bytes).await;
        Some(frame)
    }
}

/// Up to [`MAX_FRAME_MESSAGES`] decoded messages as one frame; `None` when none are ready.
fn take_frame(decoder: &mut StreamDecoder, buf: &mut BytesMut, eof: bool) -> Option<Frame> {
    let mut body = BytesMut::new();
    let mut messages = Vec::new();
    let mut cut = Vec::new();
    while messages.len() < MAX_FRAME_MESSAGES {
        let next = if eof { decoder.finish(buf) } else { decoder.decode(buf) };
        let Some(m) = next else { break };
        if let Some(full) = m.cut_from {
            cut.push((messages.len(), full));
            metrics::TRUNCATED.with_label_values(&[Protocol::Syslog.as_str()]).inc();
        }
        let start = body.len();
        body.extend_from_slice(&m.bytes);
        messages.push(start..body.len());
    }
    if messages.is_empty() {
        return None;
    }
    metrics::MESSAGES.with_label_values(&[Protocol::Syslog.as_str()]).inc_by(messages.len() as u64);
    metrics::BYTES.with_label_values(&[Protocol::Syslog.as_str()]).inc_by(body.len() as u64);
    Some(Frame { cut, ..Frame::new(Protocol::Syslog, body.freeze(), messages) })
}
