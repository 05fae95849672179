//! Forwarding an ordinary HTTP request: bodies stream both ways (hyper bodies are never collected), the
//! app's response head must arrive within `upstream.timeout`, counted from when the request body was sent in
//! full (see [`super::body_rate`]).

use axum::body::Body;
use http::{Request, Response};

use tokio::sync::oneshot;

use super::ProxyError;
use super::upstream::Upstream;

pub async fn forward_http(
    upstream: &Upstream,
    request: Request<Body>,
    body_sent: Option<&mut oneshot::Receiver<()>>,
) -> Result<Response<Body>, ProxyError> {
    let response = upstream.client().request(request);
    let answered = match body_sent {
        None => tokio::time::timeout(upstream.timeout, response).await,
        Some(sent) => {
            let mut response = std::pin::pin!(response);
            tokio::select! {
                result = &mut response => Ok(result),
                _ = sent => tokio::time::timeout(upstream.timeout, response).await,
            }
        }
    };
    let response = answered.map_err(|_| ProxyError::Timeout)?.map_err(|err| {
        if err.is_connect() { ProxyError::Connect(err.to_string()) } else { ProxyError::Upstream(err.to_string()) }
    })?;
    Ok(response.map(Body::new))
}
