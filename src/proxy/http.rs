//! Forwarding an ordinary HTTP request: bodies stream both ways (hyper bodies are never collected), the
//! app's response head must arrive within `upstream.timeout`, counted from when the request body was sent in
//! full (see [`super::body_rate`]), and an app that stops taking the body for `upstream.timeout` is given up
//! on.
//!
//! Requests without a body, or with a small one (which fits in the sockets' buffers, so the app cannot keep
//! it half-sent), use the worker's connection pool. A larger or unsized body gets a connection of its own:
//! giving up on an app that stopped reading it must close that connection, or the connection would keep the
//! body, and with it the client's connection, open for good; a pooled connection cannot be closed from here.

use axum::body::Body;
use http::{Request, Response, Uri};
use hyper_util::rt::TokioIo;
use std::time::Duration;

use super::ProxyError;
use super::body_rate::BodyWatch;
use super::upstream::{AckPolicy, Upstream};

/// Bodies up to this size go over a pooled connection (see the module comment).
const POOLED_BODY_LIMIT: u64 = 1 << 20;

pub async fn forward_http(
    upstream: &Upstream,
    mut request: Request<Body>,
    body: Option<&mut BodyWatch>,
) -> Result<Response<Body>, ProxyError> {
    use http_body::Body as _;
    let small = request.body().size_hint().exact().is_some_and(|length| length <= POOLED_BODY_LIMIT);
    let (body, dedicated) = match body {
        None => {
            *request.uri_mut() = upstream.uri_for(request.uri());
            let answered = tokio::time::timeout(upstream.timeout, upstream.client().request(request)).await;
            return finish(answered.map_err(|_| ProxyError::Timeout)?);
        }
        Some(body) => (body, !small),
    };
    if !dedicated {
        *request.uri_mut() = upstream.uri_for(request.uri());
        return finish(await_answer(upstream, body, upstream.client().request(request)).await?);
    }
    // A connection of its own, which is dropped (closed, with the body) if the app is given up on.
    let stream =
        upstream.connector.connect(AckPolicy::AtLineEnd).await.map_err(|e| ProxyError::Connect(e.to_string()))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| ProxyError::Connect(e.to_string()))?;
    let connection = tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(error = %err, "a request's own connection to the app ended with an error");
        }
    });
    // Origin-form on a connection of its own: only the path and query go on the request line.
    let origin_form = request.uri().path_and_query().map_or("/", |pq| pq.as_str()).to_owned();
    *request.uri_mut() = origin_form.parse::<Uri>().map_err(|_| ProxyError::Upstream("invalid request path".into()))?;
    let answered = await_answer(upstream, body, sender.send_request(request)).await;
    if !matches!(answered, Ok(Ok(_))) {
        connection.abort();
    }
    finish(answered?)
}

/// The app's answer: while the body is on its way the app must keep taking it, then it has
/// `upstream.timeout` to answer.
async fn await_answer<T>(
    upstream: &Upstream,
    body: &mut BodyWatch,
    answer: impl Future<Output = T>,
) -> Result<T, ProxyError> {
    let mut answer = std::pin::pin!(answer);
    let mut check = tokio::time::interval(upstream.timeout.min(Duration::from_secs(1)));
    loop {
        tokio::select! {
            result = &mut answer => return Ok(result),
            _ = &mut body.finished => {
                return tokio::time::timeout(upstream.timeout, answer).await.map_err(|_| ProxyError::Timeout);
            }
            _ = check.tick() => {
                if body.unread_for() >= upstream.timeout {
                    return Err(ProxyError::Timeout);
                }
            }
        }
    }
}

fn finish<B>(answered: Result<Response<B>, impl HyperError>) -> Result<Response<Body>, ProxyError>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let response = answered.map_err(|err| {
        if err.is_connect() { ProxyError::Connect(err.to_string()) } else { ProxyError::Upstream(err.to_string()) }
    })?;
    Ok(response.map(Body::new))
}

/// The two hyper client errors (pooled and own connection) as far as the proxy cares.
trait HyperError: std::fmt::Display {
    fn is_connect(&self) -> bool;
}

impl HyperError for hyper_util::client::legacy::Error {
    fn is_connect(&self) -> bool {
        hyper_util::client::legacy::Error::is_connect(self)
    }
}

impl HyperError for hyper::Error {
    fn is_connect(&self) -> bool {
        false
    }
}
