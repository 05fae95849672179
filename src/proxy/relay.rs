//! Splicing an upgraded connection to the app's: bytes copied both ways until either side is done.
//!
//! Unlike `tokio::io::copy_bidirectional`, which keeps an 8 KiB buffer per direction for the life of the
//! tunnel (16 KiB per open WebSocket, most of them idle in a Streamlit deployment), this relay reads into a
//! buffer on the stack and writes straight on. Only when the other side cannot take everything at once is
//! the rest copied to the heap, and freed as soon as it is written. An idle tunnel holds no buffer at all.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes read in one go. On the stack of the worker thread only while a poll runs.
const CHUNK: usize = 64 * 1024;

/// One direction of the relay.
#[derive(Default)]
struct Direction {
    /// Read but not yet written: only while the writer pushes back.
    pending: Option<(Box<[u8]>, usize)>,
    /// The reader reached end of stream; the writer's side is being shut down.
    read_done: bool,
    /// Written since the last flush.
    unflushed: bool,
    done: bool,
}

impl Direction {
    fn poll<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        mut reader: Pin<&mut R>,
        mut writer: Pin<&mut W>,
        observe: &mut impl FnMut(&[u8]),
    ) -> Poll<io::Result<()>>
    where
        R: AsyncRead + ?Sized,
        W: AsyncWrite + ?Sized,
    {
        loop {
            if self.done {
                return Poll::Ready(Ok(()));
            }
            if let Some((buf, written)) = &mut self.pending {
                while *written < buf.len() {
                    let n = ready!(writer.as_mut().poll_write(cx, &buf[*written..]))?;
                    if n == 0 {
                        return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                    }
                    *written += n;
                    self.unflushed = true;
                }
                self.pending = None;
            }
            if self.read_done {
                ready!(writer.as_mut().poll_shutdown(cx))?;
                self.done = true;
                continue;
            }
            let mut chunk = [0u8; CHUNK];
            let mut read = ReadBuf::new(&mut chunk);
            match reader.as_mut().poll_read(cx, &mut read) {
                Poll::Pending => {
                    if self.unflushed {
                        ready!(writer.as_mut().poll_flush(cx))?;
                        self.unflushed = false;
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Ready(Ok(())) => {}
            }
            let data = read.filled();
            if data.is_empty() {
                self.read_done = true;
                continue;
            }
            observe(data);
            let written = match writer.as_mut().poll_write(cx, data) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Pending => 0,
            };
            if written > 0 {
                self.unflushed = true;
            }
            if written < data.len() {
                // The writer pushed back: keep the rest, and read no more until it is written.
                self.pending = Some((data[written..].into(), 0));
            }
        }
    }
}

/// Copies `a` to `b` and `b` to `a` until both directions have reached end of stream (each end's write side
/// is shut down when the other end's read side ends), or an error occurs. `observe_a` sees every chunk read
/// from `a`, before it is written on.
pub async fn relay<A, B>(a: &mut A, b: &mut B, mut observe_a: impl FnMut(&[u8])) -> io::Result<()>
where
    A: AsyncRead + AsyncWrite + Unpin + ?Sized,
    B: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let mut a_to_b = Direction::default();
    let mut b_to_a = Direction::default();
    poll_fn(|cx| {
        let forward = a_to_b.poll(cx, Pin::new(&mut *a), Pin::new(&mut *b), &mut observe_a)?;
        let backward = b_to_a.poll(cx, Pin::new(&mut *b), Pin::new(&mut *a), &mut |_: &[u8]| {})?;
        if forward.is_ready() && backward.is_ready() { Poll::Ready(Ok(())) } else { Poll::Pending }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    #[tokio::test]
    async fn copies_both_ways_and_passes_end_of_stream_on() {
        let (mut client, mut client_side) = duplex(64);
        let (mut app_side, mut app) = duplex(64);
        let observed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = observed.clone();
        let relay = tokio::spawn(async move {
            relay(&mut client_side, &mut app_side, |chunk: &[u8]| {
                counter.fetch_add(chunk.len(), std::sync::atomic::Ordering::Relaxed);
            })
            .await
        });

        // More than the duplex buffers hold, so the writer pushes back and the pending path is taken.
        let message: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let sent = message.clone();
        let writer = tokio::spawn(async move {
            client.write_all(&sent).await.unwrap();
            client.shutdown().await.unwrap();
            let mut back = Vec::new();
            client.read_to_end(&mut back).await.unwrap();
            back
        });
        let mut received = Vec::new();
        app.read_to_end(&mut received).await.unwrap();
        assert_eq!(received, message, "every byte arrives, in order, and then end of stream");
        app.write_all(b"bye").await.unwrap();
        app.shutdown().await.unwrap();
        assert_eq!(writer.await.unwrap(), b"bye");
        relay.await.unwrap().unwrap();
        assert_eq!(observed.load(std::sync::atomic::Ordering::Relaxed), message.len(), "the observer saw a's bytes");
    }

    #[test]
    fn an_idle_relay_holds_no_buffer() {
        let direction = Direction::default();
        assert!(direction.pending.is_none());
        assert!(std::mem::size_of::<Direction>() < 64, "the state is a few words, not a buffer");
    }
}
