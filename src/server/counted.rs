//! A connection's places in the connection limits (`max_connections` and the client's
//! `max_connections_per_client` slot) travel with its socket and are given back only when the socket is
//! dropped. Tying them to the socket rather than to the task serving HTTP matters for WebSocket tunnels:
//! hyper's connection task ends at the upgrade and hands the socket to the tunnel, which may stay open for
//! hours. Counted by task, every tunnel would leave the limits at once, and one client could open as many
//! as the file descriptor limit allows.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::OwnedSemaphorePermit;

use super::client_slots::ClientSlot;

/// A socket that keeps its two places (in `max_connections` and in its client's slots) for as long as it
/// lives.
pub struct Counted<S> {
    inner: S,
    _places: (OwnedSemaphorePermit, ClientSlot),
}

impl<S> Counted<S> {
    pub fn new(inner: S, total: OwnedSemaphorePermit, client: ClientSlot) -> Self {
        Self { inner, _places: (total, client) }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
