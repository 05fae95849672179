//! The protected app as seen from the proxy: where it is, whether it is ready, and a pooled HTTP/1.1 client
//! to reach it.
//!
//! Streamlit (uvicorn) does not set TCP_NODELAY and writes a response's head and body separately. On a reused
//! connection the body then waits, by Nagle's algorithm, for our ACK of the head, which Linux delays by up to
//! 40 ms: nginx with a keep-alive pool gets stuck at ~727 req/s this way (FACTS.md). [`QuickAckStream`]
//! re-arms `TCP_QUICKACK` after every read and write on the upstream socket, so our ACKs leave at once and the
//! app's second segment is never held back, while connections are still reused.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use http::Uri;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use url::Url;

/// Readiness of the app, as far as the proxy knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamState {
    /// `run` mode: the child is starting or restarting and has not answered yet.
    Starting,
    Ready,
}

/// Shared, cheaply readable readiness flag, written by the supervisor in `run` mode.
#[derive(Debug, Clone)]
pub struct UpstreamStatus(Arc<AtomicU8>);

impl UpstreamStatus {
    pub fn new(state: UpstreamState) -> Self {
        let status = Self(Arc::new(AtomicU8::new(0)));
        status.set(state);
        status
    }

    pub fn set(&self, state: UpstreamState) {
        self.0.store(matches!(state, UpstreamState::Ready) as u8, Ordering::Release);
    }

    pub fn get(&self) -> UpstreamState {
        if self.0.load(Ordering::Acquire) == 1 { UpstreamState::Ready } else { UpstreamState::Starting }
    }
}

pub type UpstreamClient = Client<UpstreamConnector, Body>;

#[derive(Clone)]
pub struct Upstream {
    /// `host:port` of the app.
    pub authority: Arc<str>,
    pub client: UpstreamClient,
    pub timeout: Duration,
    pub status: UpstreamStatus,
    pub connector: UpstreamConnector,
}

impl Upstream {
    pub fn new(url: &Url, timeout: Duration, status: UpstreamStatus) -> Self {
        let host = url.host_str().unwrap_or("127.0.0.1").trim_start_matches('[').trim_end_matches(']').to_owned();
        let port = url.port_or_known_default().unwrap_or(80);
        let authority: Arc<str> =
            if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }.into();
        let connector = UpstreamConnector { host: host.into(), port };
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(256)
            // Keep the client's Host header (with its port) as it is: Streamlit compares it with Origin.
            .set_host(false)
            .build(connector.clone());
        Self { authority, client, timeout, status, connector }
    }

    /// The URI to send for a request whose path and query are `path_and_query`.
    pub fn uri_for(&self, path_and_query: &str) -> Result<Uri, http::Error> {
        Uri::builder().scheme("http").authority(&*self.authority).path_and_query(path_and_query).build()
    }
}

/// Connects to the one upstream address, whatever URI it is asked for.
#[derive(Clone)]
pub struct UpstreamConnector {
    host: Arc<str>,
    port: u16,
}

impl UpstreamConnector {
    pub async fn connect(&self) -> io::Result<QuickAckStream> {
        let stream = TcpStream::connect((&*self.host, self.port)).await?;
        stream.set_nodelay(true)?;
        Ok(QuickAckStream::new(stream))
    }
}

impl tower::Service<Uri> for UpstreamConnector {
    type Response = TokioIo<QuickAckStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        let connector = self.clone();
        Box::pin(async move { connector.connect().await.map(TokioIo::new) })
    }
}

/// A TCP stream that keeps delayed ACKs off (see the module comment).
pub struct QuickAckStream {
    inner: TcpStream,
}

impl QuickAckStream {
    fn new(inner: TcpStream) -> Self {
        let stream = Self { inner };
        stream.quick_ack();
        stream
    }

    fn quick_ack(&self) {
        // The kernel clears the flag on its own after some events, so it is set again after every I/O.
        // Failure only costs latency, never correctness, so it is ignored (e.g. on non-Linux systems).
        #[cfg(target_os = "linux")]
        let _ = socket2::SockRef::from(&self.inner).set_tcp_quickack(true);
    }
}

impl AsyncRead for QuickAckStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.quick_ack();
        }
        result
    }
}

impl AsyncWrite for QuickAckStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.quick_ack();
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.quick_ack();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl Connection for QuickAckStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}
