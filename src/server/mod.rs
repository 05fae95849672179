//! Accepting connections. Gatehouse runs its own accept loop on hyper rather than `axum::serve` so that every
//! connection has limits an unauthenticated client cannot stretch: HTTP/1.1 only (the app behind speaks
//! HTTP/1.1, and one protocol is one attack surface), request heads must arrive within
//! [`HEADER_READ_TIMEOUT`], and at most [`MAX_CONNECTIONS`] connections are open at once, so a slowloris
//! client cannot exhaust file descriptors. On shutdown, open connections finish their current request.
//!
//! Accepted connections are served on [`Workers`] (one thread per core) when given, otherwise on the
//! current runtime (tests).

mod connection;
pub mod workers;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use crate::app::SharedState;
pub use connection::Handler;
pub use workers::Workers;

/// Time a client has to send a complete request head (also bounds idle keep-alive connections).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(20);
/// Connections served at once; further clients wait in the kernel's accept queue.
pub const MAX_CONNECTIONS: usize = 16_384;

/// Accepts connections until `shutdown` is cancelled, then waits for the open ones to finish.
pub async fn accept_loop(
    listener: TcpListener,
    router: Router,
    state: SharedState,
    workers: Option<&Workers>,
) -> std::io::Result<()> {
    let shutdown = state.shutdown.clone();
    let handler = Handler::new(router, state);
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let connections = TaskTracker::new();
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            _ = shutdown.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Typically EMFILE: back off briefly instead of spinning.
                    tracing::warn!(error = %err, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        // Replies are small and latency matters more than packet count: no Nagle delay towards browsers.
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let shutdown = shutdown.clone();
        match workers {
            Some(workers) => {
                // Moved to the worker's runtime: deregistered here, registered again there on first poll.
                let stream = match stream.into_std() {
                    Ok(stream) => stream,
                    Err(err) => {
                        tracing::debug!(error = %err, "could not hand a connection to a worker");
                        continue;
                    }
                };
                workers.spawn_connection(connections.track_future(async move {
                    match tokio::net::TcpStream::from_std(stream) {
                        Ok(stream) => connection::serve_connection(stream, peer, handler, shutdown).await,
                        Err(err) => tracing::debug!(error = %err, "a worker could not adopt a connection"),
                    }
                    drop(permit);
                }));
            }
            None => {
                connections.spawn(async move {
                    connection::serve_connection(stream, peer, handler, shutdown).await;
                    drop(permit);
                });
            }
        }
    }
    connections.close();
    connections.wait().await;
    Ok(())
}
