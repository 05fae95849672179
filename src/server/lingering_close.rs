//! Closing a connection the way nginx does (`lingering_close`): when Gatehouse answers before reading all
//! that the client sends (a 401 or 413 for an upload, a refused request), closing at once would leave the
//! client's bytes unread, the kernel would answer them with a reset, and a client still sending (curl, a
//! browser's upload) gets "broken pipe" instead of the answer. So on close, Gatehouse first ends its own side
//! (the client sees the answer end), then reads and discards what still arrives, until the client closes
//! too or [`LINGER`] has passed, whichever comes first.
//!
//! Like nginx, only when more input may be on its way: [`Linger`] is turned on while the connection's latest
//! request carried a body. A connection closed after a body-less request (idle keep-alive connections closed
//! at shutdown among them) closes at once, and so does a tunnel (a WebSocket): ending our side there is a
//! half-close the relay passes on, and what the client still sends belongs to the app.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// How long a closing connection keeps reading: enough for a client to see the answer and stop sending,
/// short enough that a client that keeps sending cannot keep its connection (and its slot) for long.
pub const LINGER: Duration = Duration::from_secs(5);

pub struct LingeringClose<S> {
    inner: S,
    closing: Closing,
    linger: Linger,
}

/// Whether closing should linger: set per request by the connection (off by default, for a tunnel and once
/// Gatehouse is shutting down).
#[derive(Clone, Default)]
pub struct Linger(Arc<AtomicBool>);

impl Linger {
    pub fn set(&self, wanted: bool) {
        self.0.store(wanted, Ordering::Release);
    }

    fn get(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

enum Closing {
    Open,
    /// Our side is shut; reading what is left until this fires.
    Draining(Pin<Box<Sleep>>),
    Closed,
}

impl<S> LingeringClose<S> {
    pub fn new(inner: S, linger: Linger) -> Self {
        Self { inner, closing: Closing::Open, linger }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for LingeringClose<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for LingeringClose<S> {
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
        loop {
            match &mut self.closing {
                Closing::Open => {
                    std::task::ready!(Pin::new(&mut self.inner).poll_shutdown(cx))?;
                    self.closing = if self.linger.get() {
                        Closing::Draining(Box::pin(tokio::time::sleep(LINGER)))
                    } else {
                        Closing::Closed
                    };
                }
                Closing::Draining(deadline) => {
                    if deadline.as_mut().poll(cx).is_ready() {
                        self.closing = Closing::Closed;
                        continue;
                    }
                    let mut scratch = [0u8; 8192];
                    let mut buf = ReadBuf::new(&mut scratch);
                    match Pin::new(&mut self.inner).poll_read(cx, &mut buf) {
                        // More of what the client sends: discard it and read on.
                        Poll::Ready(Ok(())) if !buf.filled().is_empty() => {}
                        // The client closed too (or the connection failed): nothing more to wait for.
                        Poll::Ready(_) => self.closing = Closing::Closed,
                        Poll::Pending => return Poll::Pending,
                    }
                }
                Closing::Closed => return Poll::Ready(Ok(())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn lingering() -> Linger {
        let linger = Linger::default();
        linger.set(true);
        linger
    }

    #[tokio::test(start_paused = true)]
    async fn closing_reads_what_the_client_still_sends_until_it_closes() {
        let (near, mut far) = tokio::io::duplex(1024);
        let mut stream = LingeringClose::new(near, lingering());
        stream.write_all(b"HTTP/1.1 401").await.unwrap();
        let client = tokio::spawn(async move {
            // The client is still sending 64 KiB, four times what the pipe holds, before it reads.
            far.write_all(&vec![7u8; 64 * 1024]).await.unwrap();
            let mut answer = Vec::new();
            far.read_to_end(&mut answer).await.unwrap();
            answer
        });
        let started = tokio::time::Instant::now();
        stream.shutdown().await.unwrap();
        assert_eq!(client.await.unwrap(), b"HTTP/1.1 401", "the client sent everything and read the answer");
        assert!(started.elapsed() < LINGER, "the client closed first");
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_never_closes_is_given_up_on_after_the_linger() {
        let (near, _far) = tokio::io::duplex(1024);
        let mut stream = LingeringClose::new(near, lingering());
        let started = tokio::time::Instant::now();
        stream.shutdown().await.unwrap();
        assert_eq!(started.elapsed(), LINGER);
    }

    #[tokio::test(start_paused = true)]
    async fn without_linger_closing_is_only_a_half_close_and_what_the_client_sends_is_left_unread() {
        let (near, mut far) = tokio::io::duplex(1024);
        let linger = lingering();
        let mut stream = LingeringClose::new(near, linger.clone());
        linger.set(false);
        far.write_all(b"for the app").await.unwrap();
        let started = tokio::time::Instant::now();
        stream.shutdown().await.unwrap();
        assert_eq!(started.elapsed(), Duration::ZERO, "nothing to wait for");
        let mut left = [0u8; 11];
        stream.read_exact(&mut left).await.unwrap();
        assert_eq!(&left, b"for the app");
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_keeps_sending_is_given_up_on_after_the_linger_too() {
        let (near, mut far) = tokio::io::duplex(1024);
        let mut stream = LingeringClose::new(near, lingering());
        tokio::spawn(async move {
            while far.write_all(&[1u8; 512]).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let started = tokio::time::Instant::now();
        stream.shutdown().await.unwrap();
        assert!(started.elapsed() >= LINGER && started.elapsed() < LINGER + Duration::from_millis(200));
    }
}
