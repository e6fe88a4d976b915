//! What every receiver does with its listening socket: accept under a connection limit, run a
//! task per connection that is told when to stop, and on shutdown wait for them all.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::frame::Protocol;
use crate::metrics;

/// Accepts connections until `shutdown` resolves, running `handle(stream, peer, stop)` for each
/// on its own task; `stop` turns true when the receiver shuts down. Returns once every
/// connection task has ended.
pub(crate) async fn accept_loop<H, F>(
    listener: TcpListener,
    protocol: Protocol,
    max_connections: usize,
    shutdown: impl Future<Output = ()>,
    handle: H,
) where
    H: Fn(TcpStream, SocketAddr, watch::Receiver<bool>) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let limit = max_connections.max(1);
    let permits = Arc::new(Semaphore::new(limit));
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(protocol = protocol.as_str(), error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let connection = handle(stream, peer, stop_rx.clone());
        tokio::spawn(async move {
            let open = metrics::OPEN_CONNECTIONS.with_label_values(&[protocol.as_str()]);
            open.inc();
            connection.await;
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
