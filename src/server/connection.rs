//! One client connection: hyper's HTTP/1.1 server with Gatehouse's limits, and the split of its requests
//! between Gatehouse's own pages (the axum router, under `/_gatehouse/`) and everything else, which goes
//! straight into the proxy pipeline. The proxy path skips the router and its middleware stack: it is most
//! of the traffic, and each layer would cost an allocation or a lookup on every request.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::counted::Counted;
use super::lingering_close::{Linger, LingeringClose};
use super::send_deadline::SendDeadline;
use crate::app::SharedState;
use crate::proxy::canonical::{Refusal, canonicalise};
use crate::proxy::forwarded::Peer;
use crate::web::context::{Answer, RequestContext};
use crate::web::error::ErrorReply;

/// Answers the requests of every connection.
#[derive(Clone)]
pub struct Handler {
    router: Router,
    state: SharedState,
}

impl Handler {
    pub fn new(router: Router, state: SharedState) -> Self {
        Self { router, state }
    }

    async fn answer(&self, peer: &Peer, request: hyper::Request<Incoming>) -> Response {
        let mut request = request.map(Body::new);
        // Stage 0: one canonical host and path, judged and forwarded alike (or a refusal).
        let target = match canonicalise(&mut request) {
            Ok(target) => target,
            Err(refusal) => return refuse(&request, refusal, &self.state.config.brand),
        };
        if crate::web::is_gatehouse_path(request.uri().path()) {
            // Boxed: the router's future is large, and keeping it out of line keeps the proxy path's future
            // (moved into hyper's dispatcher on every request) small.
            return Box::pin(self.answer_own_page(peer, request)).await;
        }
        let context = RequestContext::begin(&request);
        let answer = crate::proxy::proxy_request(&self.state, peer, request, &target, &context.id).await;
        context.finish(answer, &self.state.config.brand)
    }

    /// Gatehouse's own pages: the whole body first, within its deadline, before any of the router's state
    /// exists (a stalled form then holds little memory), then the router.
    async fn answer_own_page(&self, peer: &Peer, mut request: axum::extract::Request) -> Response {
        use http_body::Body as _;
        if !request.body().is_end_stream() {
            // Kept only to answer a refused body; the router's middleware has its own for the rest.
            let context = RequestContext::begin(&request);
            request = match crate::web::form_deadline::read_form_body(&self.state, request).await {
                Ok(request) => request,
                Err(refusal) => return context.finish(Answer::Own(refusal), &self.state.config.brand),
            };
        }
        request.extensions_mut().insert(ConnectInfo(peer.addr));
        self.router.clone().oneshot(request).await.unwrap_or_else(|never| match never {})
    }
}

/// The answer to a request without a canonical form: 400 (405 for CONNECT), as a page or JSON.
fn refuse(request: &axum::extract::Request, refusal: Refusal, brand: &crate::config::brand::BrandConfig) -> Response {
    let context = RequestContext::begin(request);
    // Debug, not info: refusals cost a client nothing, so they must not be a cheap way to flood the log.
    tracing::debug!(reason = refusal.code(), "refused a request without a canonical host and path");
    let reply = ErrorReply::bad_request(refusal.message()).with_status(refusal.status());
    context.finish(Answer::Own(reply.into_response()), brand)
}

struct ConnectionScope {
    handler: Handler,
    peer: Peer,
    linger: Linger,
}

pub async fn serve_connection(
    stream: Counted<tokio::net::TcpStream>,
    peer: SocketAddr,
    handler: Handler,
    shutdown: CancellationToken,
) {
    // Shared by the connection's requests: one reference count per request instead of three.
    let linger = Linger::default();
    let scope = Arc::new(ConnectionScope { handler, peer: Peer::new(peer), linger: linger.clone() });
    let service = hyper::service::service_fn({
        let scope = scope.clone();
        move |request: hyper::Request<Incoming>| {
            let scope = scope.clone();
            async move {
                use http_body::Body as _;
                // A body may still be arriving when this request is answered (or the connection closed).
                scope.linger.set(!request.body().is_end_stream());
                let response = scope.handler.answer(&scope.peer, request).await;
                if response.status() == http::StatusCode::SWITCHING_PROTOCOLS {
                    scope.linger.set(false);
                }
                Ok::<_, Infallible>(response)
            }
        }
    });
    let limits = &scope.handler.state.config.server.limits;
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(
            TokioIo::new(LingeringClose::new(SendDeadline::new(stream, limits.send_timeout), linger)),
            service,
        )
        .with_upgrades();
    let mut connection = std::pin::pin!(connection);
    // A token of this connection's own: polling the shared one on every wake-up would take a lock that every
    // connection on every core is taking too.
    let shutdown = shutdown.child_token();
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(err) = result {
                tracing::debug!(error = %err, peer = %scope.peer.addr, "connection ended with an error");
            }
        }
        _ = shutdown.cancelled() => {
            // Stopping: idle connections close at once, without waiting on their clients.
            scope.linger.set(false);
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(10), connection).await;
        }
    }
}
