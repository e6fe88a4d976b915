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

use crate::auth::{DrainTokens, LiveAccess};
use crate::frame::{Frame, FrameSink, MemoryBudget, Position, Protocol};
use crate::listener::{accept_loop, handshake, Connection};
use crate::log_throttle::LogThrottle;
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
    /// Who may send, in force: its drain tokens. When listed, a line is taken only when its
    /// HOSTNAME (where Heroku's syslog drains put the token) is one of them; others are dropped
    /// and counted. A reload replaces it; each read's lines are judged by one.
    pub access: LiveAccess,
    /// With `drain_tokens`, still take lines whose HOSTNAME is no drain token at all (relays,
    /// RFC 3164 senders); a drain token that is sent must still be listed.
    pub allow_tokenless: bool,
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
            access: LiveAccess::default(),
            allow_tokenless: false,
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
            .field("access", &self.access)
            .field("allow_tokenless", &self.allow_tokenless)
            .finish_non_exhaustive()
    }
}

/// Messages read per frame at most; a read of 64 KiB rarely holds more.
const MAX_FRAME_MESSAGES: usize = 1024;
/// One read's room. A connection's buffer holds at most a message read in part (up to
/// `max_message_bytes` and its octet count) plus this: the per-connection term of
/// docs/operations.md's memory formula.
pub const READ_BUFFER: usize = 64 * 1024;

static REFUSED_LOG: LogThrottle = LogThrottle::new(Duration::from_secs(10));

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
    let mut stream = Stream::new(config, peer);
    let mut decoder = StreamDecoder::new(config.max_message_bytes);
    let mut buf = BytesMut::with_capacity(READ_BUFFER);
    loop {
        if buf.capacity() - buf.len() < READ_BUFFER / 4 {
            buf = room_to_read(buf);
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
    peer: SocketAddr,
    id: u64,
    next: u64,
}

impl<'a> Stream<'a> {
    fn new(config: &'a SyslogConfig, peer: SocketAddr) -> Stream<'a> {
        // std's RandomState is seeded from the OS once per process: a fresh 64-bit id per
        // connection, distinct across connections and restarts.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos());
        Stream { config, peer, id: h.finish(), next: 0 }
    }

    /// The next frame with its share of the memory budget, waiting for the budget (the socket
    /// is not read meanwhile); `None` when no message is ready.
    async fn take_frame(&mut self, decoder: &mut StreamDecoder, buf: &mut BytesMut, eof: bool) -> Option<Frame> {
        let mut refused = Refused::default();
        let frame = take_frame(decoder, buf, eof, self.config, &mut refused);
        if refused.no_token + refused.unlisted_token > 0 {
            if let Some(held) = REFUSED_LOG.allow() {
                let (peer, no_token, unlisted_token) = (self.peer, refused.no_token, refused.unlisted_token);
                tracing::warn!(%peer, no_token, unlisted_token, suppressed = held, "syslog lines without a listed drain token in HOSTNAME dropped");
            }
        }
        let mut frame = frame?;
        frame.position = Position::OnStream { stream: self.id, first: self.next };
        self.next += frame.messages.len() as u64;
        frame.reservation = self.config.budget.reservation();
        let bytes = frame.memory_bytes();
        frame.reservation.grow(bytes).await;
        Some(frame)
    }
}

/// A buffer with room for one more read that keeps what `buf` holds undecoded. A new
/// allocation of exactly that, where `BytesMut::reserve` could double the old one: the bound
/// on a connection's buffer is what one message in part plus one read take.
fn room_to_read(buf: BytesMut) -> BytesMut {
    let mut next = BytesMut::with_capacity(buf.len().saturating_add(READ_BUFFER));
    next.extend_from_slice(&buf);
    next
}

/// Lines dropped for their HOSTNAME, by reason.
#[derive(Debug, Default)]
struct Refused {
    no_token: u64,
    unlisted_token: u64,
}

/// Whether a line may be taken under `config`'s drain tokens: `Err(reason)` when not.
fn admit(tokens: &DrainTokens, allow_tokenless: bool, line: &[u8]) -> Result<(), &'static str> {
    if tokens.is_empty() {
        return Ok(());
    }
    let host = hostname(line);
    if host.and_then(|h| std::str::from_utf8(h).ok()).is_some_and(|h| tokens.app(h).is_some()) {
        return Ok(());
    }
    match host {
        // A drain token (`d.` and its id, as the transform reads HOSTNAME) that is not listed.
        Some(h) if h.starts_with(b"d.") => Err("unlisted_token"),
        _ if allow_tokenless => Ok(()),
        _ => Err("no_token"),
    }
}

/// The HOSTNAME of an RFC 5424 line (`<PRI>VERSION TIMESTAMP HOSTNAME …`) or an RFC 3164 one
/// (`<PRI>Mmm dd hh:mm:ss HOSTNAME TAG…`), as the transform's header parser finds it; `None`
/// when the line is neither or names none (`-`). Only what admission needs: the transform
/// still parses every header.
fn hostname(line: &[u8]) -> Option<&[u8]> {
    let rest = line.strip_prefix(b"<")?;
    let pri = rest.iter().take(4).position(|&b| b == b'>')?;
    if pri == 0 || !rest.iter().take(pri).all(u8::is_ascii_digit) {
        return None;
    }
    let after = rest.get(pri + 1..)?;
    let (version, tail) = word(after);
    let host = if (1..=2).contains(&version.len()) && version.iter().all(u8::is_ascii_digit) {
        word(word(tail).1).0
    } else {
        // Fifteen bytes of timestamp and a space; no HOSTNAME when the next word is the tag.
        let (first, _) = word(after.get(16..)?);
        if first.ends_with(b":") || first.contains(&b'[') {
            return None;
        }
        first
    };
    (!host.is_empty() && host != b"-").then_some(host)
}

/// The bytes up to the next space (or line end), and what follows that space.
fn word(s: &[u8]) -> (&[u8], &[u8]) {
    let end = s.iter().position(|&b| matches!(b, b' ' | b'\n' | b'\r')).unwrap_or(s.len());
    let (word, rest) = s.split_at_checked(end).unwrap_or((s, &[]));
    (word, rest.get(1..).unwrap_or_default())
}

/// Up to [`MAX_FRAME_MESSAGES`] decoded messages as one frame; `None` when none are ready.
/// Lines [`admit`] refuses are dropped here, counted in `refused` and the metrics.
fn take_frame(
    decoder: &mut StreamDecoder,
    buf: &mut BytesMut,
    eof: bool,
    config: &SyslogConfig,
    refused: &mut Refused,
) -> Option<Frame> {
    let mut body = BytesMut::new();
    let mut messages = Vec::new();
    let mut cut = Vec::new();
    let access = config.access.current();
    while messages.len() < MAX_FRAME_MESSAGES {
        let next = if eof { decoder.finish(buf) } else { decoder.decode(buf) };
        let Some(m) = next else { break };
        if let Err(reason) = admit(&access.drain_tokens, config.allow_tokenless, &m.bytes) {
            metrics::SYSLOG_REFUSED.with_label_values(&[reason]).inc();
            match reason {
                "unlisted_token" => refused.unlisted_token += 1,
                _ => refused.no_token += 1,
            }
            continue;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostname_of_each_syslog_form() {
        let cases: [(&[u8], Option<&[u8]>); 10] = [
            (b"<190>1 2025-03-14T09:26:53.589793+00:00 d.good app web.1 - - hi\n", Some(b"d.good")),
            (b"<190>1 - somehost app web.1 - - hi", Some(b"somehost")),
            (b"<190>1 2025-03-14T09:26:53Z - app web.1 - - hi", None),
            (b"<190>1 2025-03-14T09:26:53Z d.good", Some(b"d.good")),
            (b"<13>Mar 14 09:26:53 web-01 nginx[4711]: GET /", Some(b"web-01")),
            (b"<13>Mar  4 09:26:53 cron: job done", None),
            (b"<13>Mar 14 09:2", None),
            (b"no syslog at all", None),
            (b"<>1 - d.good", None),
            (b"<1\xff>1 - d.good", None),
        ];
        for (line, host) in cases {
            assert_eq!(hostname(line), host, "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn admission_follows_the_drain_tokens() {
        let line = |host: &str| format!("<190>1 2025-03-14T09:26:53Z {host} app web.1 - - hi\n");
        let none = DrainTokens::default();
        for host in ["d.good", "d.stranger", "somehost"] {
            assert_eq!(admit(&none, false, line(host).as_bytes()), Ok(()), "no tokens listed: {host}");
        }
        let tokens = DrainTokens::new([("d.good".to_owned(), "goodapp".to_owned())]);
        assert_eq!(admit(&tokens, false, line("d.good").as_bytes()), Ok(()));
        assert_eq!(admit(&tokens, false, line("d.stranger").as_bytes()), Err("unlisted_token"));
        assert_eq!(admit(&tokens, false, line("somehost").as_bytes()), Err("no_token"));
        assert_eq!(admit(&tokens, false, b"not syslog"), Err("no_token"));
        assert_eq!(admit(&tokens, true, line("somehost").as_bytes()), Ok(()));
        assert_eq!(admit(&tokens, true, b"not syslog"), Ok(()));
        assert_eq!(admit(&tokens, true, line("d.stranger").as_bytes()), Err("unlisted_token"));
    }

    #[test]
    fn a_connection_buffer_grows_to_one_message_and_one_read_at_most() {
        // A message read in part fills most of the buffer; the next read's room is added to
        // exactly what is kept, not doubled.
        let mut buf = BytesMut::with_capacity(READ_BUFFER);
        buf.extend_from_slice(&vec![b'x'; READ_BUFFER - 100]);
        let buf = room_to_read(buf);
        assert_eq!(buf.len(), READ_BUFFER - 100);
        assert!(buf.capacity() <= 2 * READ_BUFFER - 100, "{}", buf.capacity());
        assert!(buf.capacity() - buf.len() >= READ_BUFFER);
    }
}
