//! What every receiver does with its listening socket: accept under a connection limit, run a
//! task per connection that is told when to stop, and on shutdown wait for them all.
//!
//! At the limit, a new connection does not wait behind idle ones: the connection idle the
//! longest (a keep-alive connection between requests, a quiet syslog stream) is asked to
//! close, and the new one takes its place. Senders reconnect; nothing is lost, because an
//! evicted connection first finishes the request it is on or hands on what it has read.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::metrics;

/// An open connection: since when it is idle (`None`: busy), and how to ask it to close.
type Entry = (Option<Instant>, Arc<Notify>);

/// The open connections of one listener.
#[derive(Debug, Default)]
struct Registry {
    connections: Mutex<HashMap<u64, Entry>>,
}

impl Registry {
    /// Asks the connection idle the longest to close; false when none is idle.
    fn evict_one(&self) -> bool {
        let mut connections = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        let oldest = connections.values_mut().filter(|(idle, _)| idle.is_some()).min_by_key(|(idle, _)| *idle);
        match oldest {
            Some(entry) => {
                // Asked once: it is closing, so the next eviction picks another.
                entry.0 = None;
                entry.1.notify_one();
                true
            }
            None => false,
        }
    }
}

/// A connection's view of its listener: it reports when it is idle ([`Activity`]), and
/// learns when to close (the receiver shuts down, or it is evicted to make room).
#[derive(Debug)]
pub(crate) struct Connection {
    activity: Activity,
    close: Arc<Notify>,
    stop: watch::Receiver<bool>,
}

/// Marks a connection busy or idle; cheap to clone into a request handler.
#[derive(Clone, Debug)]
pub(crate) struct Activity {
    id: u64,
    registry: Arc<Registry>,
}

impl Activity {
    /// Between requests, or waiting for bytes: may be evicted.
    pub(crate) fn idle(&self) {
        self.set(Some(Instant::now()));
    }

    /// Working on a request or handing on messages: not evicted.
    pub(crate) fn busy(&self) {
        self.set(None);
    }

    fn set(&self, idle: Option<Instant>) {
        if let Some(entry) = self.registry.connections.lock().unwrap_or_else(|e| e.into_inner()).get_mut(&self.id) {
            entry.0 = idle;
        }
    }
}

impl Connection {
    pub(crate) fn activity(&self) -> Activity {
        self.activity.clone()
    }

    /// Resolves when the connection should close: shutdown, or eviction.
    pub(crate) async fn closing(&mut self) {
        tokio::select! {
            _ = self.stop.wait_for(|s| *s) => {}
            () = self.close.notified() => {}
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.activity.registry.connections.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.activity.id);
    }
}

/// Accepts connections until `shutdown` resolves, running `handle(stream, peer, connection)`
/// for each on its own task. `name` labels the metrics. Returns once every connection task
/// has ended.
pub(crate) async fn accept_loop<H, F>(
    listener: TcpListener,
    name: &'static str,
    max_connections: usize,
    shutdown: impl Future<Output = ()>,
    handle: H,
) where
    H: Fn(TcpStream, SocketAddr, Connection) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let limit = max_connections.max(1);
    let permits = Arc::new(Semaphore::new(limit));
    let registry = Arc::new(Registry::default());
    let next_id = AtomicU64::new(0);
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(listener = name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if registry.evict_one() {
                    metrics::EVICTED_CONNECTIONS.with_label_values(&[name]).inc();
                }
                tokio::select! {
                    p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                    () = &mut shutdown => break,
                }
            }
        };
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        let close = Arc::new(Notify::new());
        registry
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, (Some(Instant::now()), close.clone()));
        let activity = Activity { id, registry: registry.clone() };
        let connection = Connection { activity, close, stop: stop_rx.clone() };
        let task = handle(stream, peer, connection);
        tokio::spawn(async move {
            let open = metrics::OPEN_CONNECTIONS.with_label_values(&[name]);
            open.inc();
            task.await;
            open.dec();
            drop(permit);
        });
    }
    let _ = stop_tx.send(true);
    // Every connection task holds a permit; having them all back means all have finished.
    let _ = permits.acquire_many(limit as u32).await;
}

/// The server side of a TLS handshake, given `timeout` to finish.
pub(crate) async fn handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    timeout: Duration,
) -> Option<TlsStream<TcpStream>> {
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}
