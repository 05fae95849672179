//! Forwarding an ordinary HTTP request: bodies stream both ways (hyper bodies are never collected), the
//! app's response head must arrive within the configured timeout.

use axum::body::Body;
use http::{Request, Response};

use super::ProxyError;
use super::upstream::Upstream;

pub async fn forward_http(upstream: &Upstream, request: Request<Body>) -> Result<Response<Body>, ProxyError> {
    let response = tokio::time::timeout(upstream.timeout, upstream.client().request(request))
        .await
        .map_err(|_| ProxyError::Timeout)?
        .map_err(|err| {
            if err.is_connect() { ProxyError::Connect(err.to_string()) } else { ProxyError::Upstream(err.to_string()) }
        })?;
    Ok(response.map(Body::new))
}
