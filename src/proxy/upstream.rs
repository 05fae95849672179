//! The protected app as seen from the proxy: where it is, whether it is ready, and a pooled HTTP/1.1 client
//! to reach it.
//!
//! Streamlit (uvicorn/tornado) does not set TCP_NODELAY and writes a response's head and body separately. On a
//! reused connection the body then waits, by Nagle's algorithm, for our ACK of the head, which Linux delays by
//! up to 40 ms: nginx with a keep-alive pool gets stuck at ~727 req/s this way (FACTS.md). [`QuickAckStream`]
//! sets `TCP_QUICKACK` after reads that may leave the app waiting for our ACK, which sends the pending ACK at
//! once, so the app's next segment is never held back, while connections are still reused.
//!
//! For pooled HTTP connections that is a read ending in CRLF: the end of a response head (the body may follow
//! in a separate write) or of a chunk of a chunked body. A read ending anywhere else (a whole response, head
//! and body, in one segment, as nginx or any app with TCP_NODELAY sends them) needs no early ACK: it rides on
//! the next request instead of costing a packet of its own, which matters for small responses. WebSocket
//! tunnels ACK after every read: messages are small and arrive in bursts.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use http::Uri;
use http::uri::{Authority, PathAndQuery, Scheme};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use url::Url;

use super::headers::PrivateIdentityNames;
use crate::isolation::keeper::Keeper;

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
    /// `host:port` of the app as the pooled client knows it. In `run` mode the app may move (a fresh port
    /// at every restart, a private network): [`UpstreamConnector`] knows where it really is.
    pub authority: Authority,
    /// One connection pool per worker thread (see [`crate::server::workers`]): a pooled connection is
    /// driven by a task on the thread that opened it, so sharing one pool across threads would hand requests
    /// to connections whose I/O runs on another core.
    clients: Arc<[UpstreamClient]>,
    pub timeout: Duration,
    pub status: UpstreamStatus,
    pub connector: UpstreamConnector,
    /// `run` mode: the current instance's secret header names for `st.user`.
    pub private_names: Option<Arc<CurrentNames>>,
}

/// The secret header names for `st.user` of the app instance `run` started last (new at every start, so
/// names a stranger might have seen are worthless to the next instance).
#[derive(Debug, Default)]
pub struct CurrentNames(RwLock<Option<Arc<PrivateIdentityNames>>>);

impl CurrentNames {
    pub fn get(&self) -> Option<Arc<PrivateIdentityNames>> {
        self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    pub fn set(&self, names: Arc<PrivateIdentityNames>) {
        *self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(names);
    }
}

impl Upstream {
    /// `pools` is normally the number of workers plus one.
    pub fn new(url: &Url, timeout: Duration, status: UpstreamStatus, pools: usize, private_names: bool) -> Self {
        let host = url.host_str().unwrap_or("127.0.0.1").trim_start_matches('[').trim_end_matches(']').to_owned();
        let port = url.port_or_known_default().unwrap_or(80);
        let authority = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
        let authority = Authority::from_maybe_shared(authority).expect("a host and port make a valid authority");
        let connector = UpstreamConnector { route: Arc::new(RwLock::new(Route::Network { host: host.into(), port })) };
        let clients = (0..pools.max(1))
            .map(|_| {
                Client::builder(TokioExecutor::new())
                    .pool_idle_timeout(Duration::from_secs(30))
                    .pool_max_idle_per_host(256)
                    // Keep the client's Host header (with its port) as it is: Streamlit compares it with Origin.
                    .set_host(false)
                    .build(connector.clone())
            })
            .collect();
        let private_names = private_names.then(Arc::default);
        Self { authority, clients, timeout, status, connector, private_names }
    }

    /// The pooled client of the worker this runs on.
    pub fn client(&self) -> &UpstreamClient {
        &self.clients[crate::server::workers::current() % self.clients.len()]
    }

    /// The absolute URI the pooled client needs for a request to `original` (origin-form, as received):
    /// the same path and query, reused without parsing them again.
    pub fn uri_for(&self, original: &Uri) -> Uri {
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(Scheme::HTTP);
        parts.authority = Some(self.authority.clone());
        parts.path_and_query =
            Some(original.path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/")));
        Uri::from_parts(parts).expect("scheme, authority and path make a valid URI")
    }
}

/// Where the app listens.
#[derive(Clone)]
pub enum Route {
    /// A host and port in the machine's network.
    Network { host: Arc<str>, port: u16 },
    /// The app's listener in its private network, reached through sockets its keeper makes (`run` mode with
    /// isolation, see [`crate::isolation`]).
    Private { keeper: Arc<Keeper>, addr: SocketAddr },
}

/// Connects to the app, wherever it currently is, whatever URI it is asked for.
#[derive(Clone)]
pub struct UpstreamConnector {
    route: Arc<RwLock<Route>>,
}

impl UpstreamConnector {
    /// Sends every new connection to `route` (the app restarted, on a fresh port or in a new network).
    pub fn set_route(&self, route: Route) {
        *self.route.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = route;
    }

    pub async fn connect(&self, acks: AckPolicy) -> io::Result<QuickAckStream> {
        let route = self.route.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let stream = match route {
            Route::Network { host, port } => TcpStream::connect((&*host, port)).await?,
            Route::Private { keeper, addr } => keeper.connect(addr).await?,
        };
        stream.set_nodelay(true)?;
        Ok(QuickAckStream { inner: stream, acks })
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
        Box::pin(async move { connector.connect(AckPolicy::AtLineEnd).await.map(TokioIo::new) })
    }
}

/// When [`QuickAckStream`] sends its ACK at once (see the module comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckPolicy {
    /// After a read that ends in CRLF (HTTP connections).
    AtLineEnd,
    /// After every read (WebSocket tunnels).
    EveryRead,
}

/// A TCP stream that sends ACKs at once where the app may be waiting for them (see the module comment).
pub struct QuickAckStream {
    inner: TcpStream,
    acks: AckPolicy,
}

impl QuickAckStream {
    fn quick_ack(&self) {
        // The kernel leaves quick-ACK mode on its own, so the flag is set again each time it is needed.
        // Failure only costs latency, never correctness, so it is ignored (e.g. on non-Linux systems).
        #[cfg(target_os = "linux")]
        let _ = socket2::SockRef::from(&self.inner).set_tcp_quickack(true);
    }
}

impl AsyncRead for QuickAckStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) {
            let read = &buf.filled()[before..];
            let wanted = match self.acks {
                AckPolicy::EveryRead => !read.is_empty(),
                AckPolicy::AtLineEnd => read.ends_with(b"\r\n"),
            };
            if wanted {
                self.quick_ack();
            }
        }
        result
    }
}

impl AsyncWrite for QuickAckStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
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
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
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
