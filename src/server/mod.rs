//! Accepting connections. Gatehouse runs its own accept loop on hyper rather than `axum::serve` so that every
//! connection has limits an unauthenticated client cannot stretch ([`ConnectionLimits`], `[server]` in the
//! configuration): HTTP/1.1 only (the app behind speaks HTTP/1.1, and one protocol is one attack surface),
//! request heads must arrive within `header_timeout`, at most `max_connections` connections are open at once,
//! and at most `max_connections_per_client` from one client network ([`client_slots`]), so neither a
//! slowloris client nor one client with thousands of connections can lock others out. A connection that
//! became a WebSocket tunnel still counts ([`counted`]). Bodies have limits of
//! their own (`web::form_deadline` for Gatehouse's forms, `proxy::body_rate` for the app's). A connection
//! closes the way nginx's do ([`lingering_close`]), so that a client still sending gets its answer. On
//! shutdown, open connections finish their current request.
//!
//! Accepted connections are served on [`Workers`] (one thread per core) when given, otherwise on the
//! current runtime (tests).

pub mod client_slots;
mod connection;
mod counted;
mod lingering_close;
mod send_deadline;
pub mod workers;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use crate::app::SharedState;
use crate::config::ConnectionLimits;
use client_slots::ClientSlots;
pub use connection::Handler;
use counted::Counted;
pub use workers::Workers;

/// What a client over its connection limit reads before the connection closes.
const TOO_MANY_CONNECTIONS: &[u8] =
    b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain\r\nContent-Length: 46\r\nConnection: close\r\n\r\nToo many connections from your address; retry.";

/// Accepts connections until `shutdown` is cancelled, then waits for the open ones to finish.
pub async fn accept_loop(
    listener: TcpListener,
    router: Router,
    state: SharedState,
    workers: Option<&Workers>,
) -> std::io::Result<()> {
    let shutdown = state.shutdown.clone();
    let limits: ConnectionLimits = state.config.server.limits.clone();
    let slots = ClientSlots::new(limits.max_connections_per_client, state.config.server.trusted_proxies.clone());
    let handler = Handler::new(router, state);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
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
        let Some(slot) = slots.take(peer.ip()) else {
            // One non-blocking write of a short answer; a client that does not read it just loses it.
            let _ = stream.try_write(TOO_MANY_CONNECTIONS);
            metrics::counter!("gatehouse_connections_refused_total", "reason" => "per_client").increment(1);
            tracing::debug!(peer = %peer.ip(), "refused a connection: too many open from this client");
            continue;
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
                        Ok(stream) => {
                            let stream = Counted::new(stream, permit, slot);
                            connection::serve_connection(stream, peer, handler, shutdown).await;
                        }
                        Err(err) => tracing::debug!(error = %err, "a worker could not adopt a connection"),
                    }
                }));
            }
            None => {
                let stream = Counted::new(stream, permit, slot);
                connections.spawn(connection::serve_connection(stream, peer, handler, shutdown));
            }
        }
    }
    connections.close();
    connections.wait().await;
    Ok(())
}
