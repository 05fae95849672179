//! Tunnelling WebSocket (and other `Upgrade`) requests. The handshake is forwarded on a dedicated upstream
//! connection with every end-to-end header unchanged (`Origin`, `Cookie`, `Host` with port,
//! `Sec-WebSocket-Protocol`, which carries Streamlit's XSRF token); after `101 Switching Protocols` the two
//! sockets are spliced until either side closes, the session is revoked, or Gatehouse shuts down.

use axum::body::Body;
use http::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;

use super::ProxyError;
use super::upstream::{AckPolicy, Upstream};
use crate::auth::revocation::LiveConnection;

pub async fn forward_websocket(
    upstream: &Upstream,
    mut request: Request<Body>,
    live: Option<LiveConnection>,
    used: super::session_watch::TunnelUse,
    shutdown: CancellationToken,
) -> Result<Response<Body>, ProxyError> {
    let client_upgrade = hyper::upgrade::on(&mut request);
    let stream =
        upstream.connector.connect(AckPolicy::EveryRead).await.map_err(|e| ProxyError::Connect(e.to_string()))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| ProxyError::Connect(e.to_string()))?;
    tokio::spawn(async move {
        if let Err(err) = connection.with_upgrades().await {
            tracing::debug!(error = %err, "upstream upgrade connection ended with an error");
        }
    });

    // A dedicated connection speaks origin-form: only the path and query go on the request line.
    let path_and_query = request.uri().path_and_query().map(|pq| pq.as_str().to_owned()).unwrap_or_else(|| "/".into());
    *request.uri_mut() = path_and_query.parse().map_err(|_| ProxyError::Upstream("invalid request path".into()))?;
    let (parts, _body) = request.into_parts();
    let upstream_request = Request::from_parts(parts, http_body_util::Empty::<bytes::Bytes>::new());

    let mut response = tokio::time::timeout(upstream.timeout, sender.send_request(upstream_request))
        .await
        .map_err(|_| ProxyError::Timeout)?
        .map_err(|e| ProxyError::Upstream(e.to_string()))?;

    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        // The app declined the upgrade; pass its answer on as an ordinary response.
        return Ok(response.map(Body::new));
    }
    if !super::headers::is_websocket_token(response.headers().get(http::header::UPGRADE)) {
        // A 101 to anything but WebSocket would turn the connection into an unfiltered raw pipe.
        return Err(ProxyError::Upstream("the app switched to a protocol other than WebSocket".into()));
    }

    // A public path's anonymous tunnel has no session to end; it only stops with a side or the server.
    let revoked = live.as_ref().map(|live| live.cancelled.clone()).unwrap_or_default();
    let upstream_upgrade = hyper::upgrade::on(&mut response);
    tokio::spawn(async move {
        let (client, app) = match tokio::try_join!(client_upgrade, upstream_upgrade) {
            Ok(pair) => pair,
            Err(err) => {
                tracing::debug!(error = %err, "WebSocket upgrade did not complete");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut app = TokioIo::new(app);
        metrics::gauge!("gatehouse_websockets_open").increment(1.0);
        tokio::select! {
            result = super::relay::relay(&mut client, &mut app, used.observer()) => {
                if let Err(err) = result {
                    tracing::debug!(error = %err, "WebSocket tunnel closed with an error");
                }
            }
            _ = revoked.cancelled() => tracing::info!("WebSocket closed: its session ended"),
            _ = shutdown.cancelled() => {}
        }
        metrics::gauge!("gatehouse_websockets_open").decrement(1.0);
        drop(live);
    });

    let (parts, _) = response.into_parts();
    Ok(Response::from_parts(parts, Body::empty()))
}
