//! A body on its way to the app must keep moving: after `[server] body_timeout`, it must have averaged at
//! least `body_min_rate` bytes a second since it started (every `body_min_rate` bytes buy one more second,
//! as with Apache's `mod_reqtimeout`). A client that stalls is cut off, and gets 408 if the app has not
//! answered yet, instead of holding a connection to Gatehouse and one to the app for as long as it likes.
//! Uploads at any real speed are unaffected, however large.
//!
//! The body also says when it has been sent in full, so the app's answer is awaited with `upstream.timeout`
//! from then on rather than from the first byte: a long upload is not an app that fails to answer.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};

/// The error a stalled body ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request body arrived more slowly than the configured minimum rate")]
pub struct BodyTooSlow;

/// A request body with the minimum rate enforced (see the module comment).
pub struct MinRateBody {
    inner: Body,
    started: Instant,
    grace: Duration,
    min_rate: u64,
    received: u64,
    deadline: Pin<Box<Sleep>>,
    /// Set when this body was cut off for being too slow, so the proxy can answer 408.
    stalled: Arc<AtomicBool>,
    /// Fired once the body has ended (sent in full, failed or cut off).
    finished: Option<oneshot::Sender<()>>,
}

/// What the proxy keeps of a wrapped body: whether it stalled, and when it finished.
pub struct BodyWatch {
    stalled: Arc<AtomicBool>,
    pub finished: oneshot::Receiver<()>,
}

impl BodyWatch {
    pub fn stalled(&self) -> bool {
        self.stalled.load(Ordering::Acquire)
    }
}

impl MinRateBody {
    pub fn wrap(inner: Body, grace: Duration, min_rate: u64) -> (Self, BodyWatch) {
        let started = Instant::now();
        let stalled = Arc::new(AtomicBool::new(false));
        let (sender, finished) = oneshot::channel();
        let body = Self {
            inner,
            started,
            grace,
            min_rate: min_rate.max(1),
            received: 0,
            deadline: Box::pin(tokio::time::sleep_until(started + grace)),
            stalled: stalled.clone(),
            finished: Some(sender),
        };
        (body, BodyWatch { stalled, finished })
    }

    /// `grace` after the start, plus one second per `min_rate` bytes received.
    fn deadline(&self) -> Instant {
        let earned = Duration::from_secs_f64(self.received as f64 / self.min_rate as f64);
        self.started + self.grace + earned
    }

    fn finish(&mut self) {
        if let Some(sender) = self.finished.take() {
            let _ = sender.send(());
        }
    }
}

impl http_body::Body for MinRateBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    let deadline = this.deadline();
                    this.deadline.as_mut().reset(deadline);
                }
                if this.inner.is_end_stream() {
                    this.finish();
                }
                return Poll::Ready(Some(Ok(frame)));
            }
            Poll::Ready(end) => {
                this.finish();
                return Poll::Ready(end);
            }
            Poll::Pending => {}
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.stalled.store(true, Ordering::Release);
            this.finish();
            return Poll::Ready(Some(Err(axum::Error::new(BodyTooSlow))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    /// A body fed by hand: `send` a chunk whenever the test wants.
    fn channel_body() -> (tokio::sync::mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>, Body) {
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        (tx, Body::new(http_body_util::StreamBody::new(stream)))
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_is_cut_off_after_the_grace_period() {
        let (tx, inner) = channel_body();
        let (mut body, watch) = MinRateBody::wrap(inner, Duration::from_secs(20), 1024);
        tx.send(Ok(Frame::data(Bytes::from_static(b"x")))).await.unwrap();
        assert!(body.frame().await.unwrap().is_ok());
        let started = Instant::now();
        let next = body.frame().await.unwrap();
        assert!(next.is_err(), "the stalled body ends with an error");
        assert!(watch.stalled());
        let waited = started.elapsed();
        assert!(waited >= Duration::from_secs(20) && waited < Duration::from_secs(21), "{waited:?}");
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_but_steady_body_passes_and_says_when_it_is_done() {
        let (tx, inner) = channel_body();
        let (body, mut watch) = MinRateBody::wrap(inner, Duration::from_secs(2), 100);
        tokio::spawn(async move {
            // 60 seconds at 200 bytes a second: twice the minimum rate.
            for _ in 0..60 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                tx.send(Ok(Frame::data(Bytes::from(vec![b'x'; 200])))).await.unwrap();
            }
        });
        assert!(watch.finished.try_recv().is_err());
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(collected.len(), 12_000);
        assert!(!watch.stalled());
        assert!(watch.finished.try_recv().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_below_the_rate_is_cut_off_once_it_falls_behind() {
        let (tx, inner) = channel_body();
        let (body, watch) = MinRateBody::wrap(inner, Duration::from_secs(20), 1024);
        tokio::spawn(async move {
            // One byte every 5 seconds, the attack that held a connection for 75 s.
            for _ in 0..100 {
                if tx.send(Ok(Frame::data(Bytes::from_static(b"x")))).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        });
        let started = Instant::now();
        assert!(body.collect().await.is_err());
        assert!(watch.stalled());
        assert!(started.elapsed() < Duration::from_secs(21), "{:?}", started.elapsed());
    }
}
