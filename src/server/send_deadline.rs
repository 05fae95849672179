//! A client that stops reading cannot hold its connection: a write to it that makes no progress for
//! `[server] send_timeout` fails the connection (like nginx's `send_timeout`). Without this, a client that
//! pipelines requests, or asks for a large response, and never reads, keeps the connection (and the app's
//! connection behind it) open indefinitely, with megabytes queued in the kernel: the header timeout does not
//! run while Gatehouse is waiting to write. It also covers the client side of WebSocket tunnels, which keep
//! this stream after the upgrade.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

pub struct SendDeadline<S> {
    inner: S,
    timeout: Duration,
    /// Armed when a write would block; dropped as soon as one makes progress. Boxed: most connections
    /// never wait to write, and they allocate nothing.
    waiting: Option<Pin<Box<Sleep>>>,
}

impl<S> SendDeadline<S> {
    pub fn new(inner: S, timeout: Duration) -> Self {
        Self { inner, timeout, waiting: None }
    }

    /// After a write returned Pending: fails once the client has not taken anything for `timeout`.
    fn check(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let timeout = self.timeout;
        let waiting = self.waiting.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if waiting.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "the client stopped reading")));
        }
        Poll::Pending
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for SendDeadline<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SendDeadline<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, data) {
            Poll::Ready(result) => {
                self.waiting = None;
                Poll::Ready(result)
            }
            Poll::Pending => self.check(cx),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(result) => {
                self.waiting = None;
                Poll::Ready(result)
            }
            Poll::Pending => self.check(cx),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_never_reads_is_cut_off() {
        // A pipe with a small buffer and nobody reading the other end.
        let (near, _far) = tokio::io::duplex(1024);
        let mut stream = SendDeadline::new(near, Duration::from_secs(60));
        let started = tokio::time::Instant::now();
        let result = stream.write_all(&vec![0u8; 64 * 1024]).await;
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_secs(60) && started.elapsed() < Duration::from_secs(61));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_that_keeps_reading_is_not() {
        use tokio::io::AsyncReadExt;
        let (near, mut far) = tokio::io::duplex(1024);
        tokio::spawn(async move {
            let mut buffer = [0u8; 512];
            // 512 bytes every 30 s: slow, but never 60 s without progress.
            while far.read(&mut buffer).await.is_ok_and(|n| n > 0) {
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
        });
        let mut stream = SendDeadline::new(near, Duration::from_secs(60));
        stream.write_all(&vec![0u8; 8 * 1024]).await.unwrap();
    }
}
