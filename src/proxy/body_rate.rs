//! A body on its way to the app must keep moving: after `[server] body_timeout`, it must have averaged at
//! least `body_min_rate` bytes a second since it started (every `body_min_rate` bytes buy one more second,
//! as with Apache's `mod_reqtimeout`), and it may never pause for longer than `body_timeout` (so a fast
//! start does not buy days of silence). A client that stalls is cut off, and gets 408 if the app has not
//! answered yet, instead of holding a connection to Gatehouse and one to the app for as long as it likes.
//! Uploads at any real speed are unaffected, however large.
//!
//! The body also says when it has been sent in full, and when the app last took some of it: the app's answer
//! is awaited with `upstream.timeout` from the end of the body rather than from its first byte (a long upload
//! is not an app that fails to answer), and an app that stops reading the body for `upstream.timeout` is
//! given up on (the client's data rate cannot be checked while nobody reads).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// When data last arrived.
    last_data: Instant,
    /// Wakes the body to check [`MinRateBody::deadline`]; re-armed only when it fires.
    timer: Pin<Box<Sleep>>,
    /// Set when this body was cut off for being too slow, so the proxy can answer 408.
    stalled: Arc<AtomicBool>,
    /// Milliseconds after the start at which the app last took a piece of the body (polled it).
    last_read_ms: Arc<AtomicU64>,
    /// Fired once the body has ended (sent in full, failed or cut off).
    finished: Option<oneshot::Sender<()>>,
}

/// What the proxy keeps of a wrapped body: whether it stalled, whether the app still reads it, and when it
/// finished.
pub struct BodyWatch {
    started: Instant,
    stalled: Arc<AtomicBool>,
    last_read_ms: Arc<AtomicU64>,
    pub finished: oneshot::Receiver<()>,
}

impl BodyWatch {
    pub fn stalled(&self) -> bool {
        self.stalled.load(Ordering::Acquire)
    }

    /// How long since the app last took a piece of the body.
    pub fn unread_for(&self) -> Duration {
        let last = self.started + Duration::from_millis(self.last_read_ms.load(Ordering::Relaxed));
        Instant::now().saturating_duration_since(last)
    }
}

impl MinRateBody {
    pub fn wrap(inner: Body, grace: Duration, min_rate: u64) -> (Self, BodyWatch) {
        let started = Instant::now();
        let stalled = Arc::new(AtomicBool::new(false));
        let last_read_ms = Arc::new(AtomicU64::new(0));
        let (sender, finished) = oneshot::channel();
        let body = Self {
            inner,
            started,
            grace,
            min_rate: min_rate.max(1),
            received: 0,
            last_data: started,
            timer: Box::pin(tokio::time::sleep_until(started + grace)),
            stalled: stalled.clone(),
            last_read_ms: last_read_ms.clone(),
            finished: Some(sender),
        };
        (body, BodyWatch { started, stalled, last_read_ms, finished })
    }

    /// The earlier of: `grace` after the start plus one second per `min_rate` bytes received, and `grace`
    /// after the last data.
    fn deadline(&self) -> Instant {
        let earned = Duration::from_secs_f64(self.received as f64 / self.min_rate as f64);
        (self.started + self.grace + earned).min(self.last_data + self.grace)
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
        // Being polled is the app (through hyper) reading: it still wants the body.
        let read_ms = u64::try_from(this.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        this.last_read_ms.store(read_ms, Ordering::Relaxed);
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    this.last_data = Instant::now();
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
        // The timer is only re-armed when it fires (data moves the deadline, not the timer): one timer
        // operation per check rather than per chunk.
        while this.timer.as_mut().poll(cx).is_ready() {
            let deadline = this.deadline();
            if Instant::now() >= deadline {
                this.stalled.store(true, Ordering::Release);
                this.finish();
                return Poll::Ready(Some(Err(axum::Error::new(BodyTooSlow))));
            }
            this.timer.as_mut().reset(deadline);
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
    async fn a_fast_start_does_not_buy_a_long_silence() {
        let (tx, inner) = channel_body();
        let (mut body, watch) = MinRateBody::wrap(inner, Duration::from_secs(20), 1024);
        // A megabyte at once would earn 1,000 s at the minimum rate; a pause still ends after 20 s.
        tx.send(Ok(Frame::data(Bytes::from(vec![b'x'; 1 << 20])))).await.unwrap();
        assert!(body.frame().await.unwrap().is_ok());
        let started = Instant::now();
        assert!(body.frame().await.unwrap().is_err());
        assert!(watch.stalled());
        assert!(started.elapsed() <= Duration::from_secs(20), "{:?}", started.elapsed());
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn the_watch_sees_when_the_app_stops_reading() {
        let (tx, inner) = channel_body();
        let (mut body, watch) = MinRateBody::wrap(inner, Duration::from_secs(20), 1024);
        tx.send(Ok(Frame::data(Bytes::from_static(b"x")))).await.unwrap();
        assert!(body.frame().await.unwrap().is_ok());
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(watch.unread_for() >= Duration::from_secs(30), "{:?}", watch.unread_for());
        drop(tx);
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
