//! What every receiver does with its listening socket: accept under a connection limit, run a
//! task per connection that is told when to stop, and on shutdown wait for them all.
//!
//! At the limit, a new connection does not wait behind idle ones: the connection idle the
//! longest (a keep-alive connection between requests, a quiet syslog stream) is asked to
//! close, and the new one takes its place. Senders reconnect; nothing is lost, because an
//! evicted connection first finishes the request it is on or hands on what it has read. A
//! connection waiting out a failed-login penalty is idle too ([`Activity::idle_for`]). When no
//! connection is idle, the next one to go idle gives way: busy connections keep their request,
//! never their slot.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::metrics;

/// An open connection: since when it is idle (`None`: busy), and how to ask it to close.
type Entry = (Option<Instant>, Arc<watch::Sender<bool>>);

/// The open connections of one listener.
#[derive(Debug)]
struct Registry {
    /// The listener's name, for the metrics.
    name: &'static str,
    table: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    open: HashMap<u64, Entry>,
    /// A new connection waits for a slot and no connection was idle to give it one: the next
    /// connection to go idle closes for it.
    wanted: bool,
}

impl Table {
    /// Asks connection `id` to close (once: it is no longer idle, so the next eviction picks
    /// another).
    fn evict(&mut self, id: u64, name: &str) {
        if let Some(entry) = self.open.get_mut(&id) {
            entry.0 = None;
            entry.1.send_replace(true);
            metrics::EVICTED_CONNECTIONS.with_label_values(&[name]).inc();
        }
    }
}

impl Registry {
    fn new(name: &'static str) -> Registry {
        Registry { name, table: Mutex::new(Table::default()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks the connection idle the longest to close. When none is idle, the next one to go
    /// idle will be asked: busy connections finish their request first, but none keeps its
    /// slot past it while a new connection waits.
    fn evict_one(&self) {
        let mut table = self.lock();
        let oldest = table.open.iter().filter_map(|(id, (idle, _))| Some(((*idle)?, *id))).min();
        match oldest {
            Some((_, id)) => table.evict(id, self.name),
            None => table.wanted = true,
        }
    }

    /// A slot came free: nobody needs to be evicted for the connection that was waiting.
    fn satisfied(&self) {
        self.lock().wanted = false;
    }
}

/// A connection's view of its listener: it reports when it is idle ([`Activity`]), and
/// learns when to close (the receiver shuts down, or it is evicted to make room).
#[derive(Debug)]
pub(crate) struct Connection {
    activity: Activity,
    close: watch::Receiver<bool>,
    stop: watch::Receiver<bool>,
}

/// Marks a connection busy or idle; cheap to clone into a request handler.
#[derive(Clone, Debug)]
pub(crate) struct Activity {
    id: u64,
    registry: Arc<Registry>,
    close: Arc<watch::Sender<bool>>,
}

impl Activity {
    /// Between requests, or waiting for bytes: may be evicted.
    pub(crate) fn idle(&self) {
        if *self.close.borrow() {
            // Already asked to close: not a slot anyone can be given again.
            return;
        }
        let mut table = self.registry.lock();
        if let Some(entry) = table.open.get_mut(&self.id) {
            entry.0 = Some(Instant::now());
        }
        if table.wanted {
            table.wanted = false;
            table.evict(self.id, self.registry.name);
        }
    }

    /// Working on a request or handing on messages: not evicted.
    pub(crate) fn busy(&self) {
        if let Some(entry) = self.registry.lock().open.get_mut(&self.id) {
            entry.0 = None;
        }
    }

    /// Waits `wait` (a penalty) as an idle connection does: evictable, so that a connection
    /// made to wait holds no slot another sender needs. Eviction ends the wait at once.
    pub(crate) async fn idle_for(&self, wait: Duration) {
        let mut close = self.close.subscribe();
        self.idle();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = close.wait_for(|c| *c) => {}
        }
        self.busy();
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
            _ = self.close.wait_for(|c| *c) => {}
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.activity.registry.lock().open.remove(&self.activity.id);
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
    let registry = Arc::new(Registry::new(name));
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
                registry.evict_one();
                let permit = tokio::select! {
                    p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                    () = &mut shutdown => break,
                };
                registry.satisfied();
                permit
            }
        };
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        let (close, closing) = watch::channel(false);
        let close = Arc::new(close);
        registry.lock().open.insert(id, (Some(Instant::now()), close.clone()));
        let activity = Activity { id, registry: registry.clone(), close };
        let connection = Connection { activity, close: closing, stop: stop_rx.clone() };
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
