//! The syslog drain listener (TCP, or TLS with the same certificate as HTTPS). Each connection
//! is read into a buffer, split into messages by [`StreamDecoder`], and every read's worth of
//! messages is handed on as one [`Frame`]. While the sink is full the connection is not read,
//! so the sender is slowed by TCP itself instead of drainpipe buffering without bound.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::frame::{Frame, FrameSink, Protocol};
use crate::listener::{accept_loop, handshake};
use crate::metrics;
use crate::stream_framing::StreamDecoder;

/// Limits of the syslog listener.
#[derive(Clone)]
pub struct SyslogConfig {
    /// Longer messages are cut to this many bytes, tagged, and indexed.
    pub max_message_bytes: usize,
    pub max_connections: usize,
    /// A connection silent for this long is closed (senders reconnect).
    pub idle_timeout: Duration,
    /// Time allowed for a TLS handshake.
    pub handshake_timeout: Duration,
    /// Serve syslog over TLS with this acceptor.
    pub tls: Option<TlsAcceptor>,
}

impl Default for SyslogConfig {
    fn default() -> SyslogConfig {
        SyslogConfig {
            max_message_bytes: 64 * 1024,
            max_connections: 1024,
            idle_timeout: Duration::from_secs(3600),
            handshake_timeout: Duration::from_secs(10),
            tls: None,
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
    accept_loop(listener, Protocol::Syslog, config.max_connections, shutdown, |stream, peer, stop| {
        let (config, sink) = (config.clone(), sink.clone());
        async move {
            match config.tls.clone() {
                None => read_connection(stream, peer, &config, &sink, stop).await,
                Some(acceptor) => {
                    if let Some(tls) = handshake(&acceptor, stream, peer, config.handshake_timeout).await {
                        read_connection(tls, peer, &config, &sink, stop).await;
                    }
                }
            }
        }
    })
    .await;
}

async fn read_connection<I, S>(
    mut io: I,
    peer: SocketAddr,
    config: &SyslogConfig,
    sink: &S,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + Unpin,
    S: FrameSink,
{
    let mut decoder = StreamDecoder::new(config.max_message_bytes);
    let mut buf = BytesMut::with_capacity(READ_BUFFER);
    loop {
        if buf.capacity() - buf.len() < READ_BUFFER / 4 {
            buf.reserve(READ_BUFFER);
        }
        let read = tokio::select! {
            r = tokio::time::timeout(config.idle_timeout, io.read_buf(&mut buf)) => r,
            _ = stop.changed() => break,
        };
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
        loop {
            let frame = take_frame(&mut decoder, &mut buf, eof);
            let Some(frame) = frame else { break };
            if sink.accept_or_wait(frame).await.is_err() {
                return;
            }
        }
        if eof {
            return;
        }
    }
    // Shutting down: hand on what was already read, including a last line without newline.
    while let Some(frame) = take_frame(&mut decoder, &mut buf, true) {
        if sink.accept_or_wait(frame).await.is_err() {
            return;
        }
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
    Some(Frame {
        protocol: Protocol::Syslog,
        body: body.freeze(),
        messages,
        cut,
        app: None,
        drain_token: None,
        frame_id: None,
        labels: Vec::new(),
        received_at: SystemTime::now(),
    })
}
