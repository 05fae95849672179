//! The proxy pipeline, in named stages like pingora's phases:
//! 1. **filter**: strip every identity header the client sent (any letter case);
//! 2. **authenticate**: the session cookie must name a live session of an enabled user; otherwise a page load
//!    is redirected (303) to the sign-in page with its return path, anything else gets 401 JSON;
//! 3. **rewrite request**: hop-by-hop headers out, `X-Forwarded-*` set, Gatehouse cookies removed, identity
//!    headers injected (on the WebSocket upgrade too);
//! 4. **forward**: WebSocket upgrades through their own tunnel, everything else through the pooled client;
//! 5. **rewrite response**: hop-by-hop headers out; upstream failures become branded 502/504 pages.

pub mod forwarded;
pub mod headers;
mod http;
pub mod upstream;
mod websocket;

use std::net::SocketAddr;
use std::time::Instant;

use ::http::header::{HeaderValue, LOCATION};
use ::http::{HeaderMap, StatusCode};
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use crate::app::{AppState, SharedState};
use crate::auth::Authenticated;
use crate::auth::cookies::read_cookie;
use crate::web::context::{Proxied, RequestId, wants_html};
use crate::web::error::ErrorReply;
use crate::web::extract::current_session;
use headers::{
    Identity, inject_identity, is_upgrade_request, remove_gatehouse_cookies, remove_hop_by_hop, strip_identity_headers,
};
use upstream::UpstreamState;

/// Why forwarding failed, classified by side so the right status goes back.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("could not connect to the app: {0}")]
    Connect(String),
    #[error("the app did not answer in time")]
    Timeout,
    #[error("the app's answer was broken: {0}")]
    Upstream(String),
}

pub async fn proxy_request(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
) -> Response {
    // 1. filter
    strip_identity_headers(request.headers_mut());
    let path = request.uri().path();
    if path == "/_gatehouse" || path.starts_with("/_gatehouse/") {
        // Gatehouse's namespace never falls through to the app, whatever the router did not match.
        return ErrorReply::not_found().into_response();
    }

    let Some(upstream) = state.upstream.clone() else {
        // `serve` without an app: only Gatehouse's own pages exist.
        return ErrorReply::not_found().into_response();
    };

    // 2. authenticate
    let current = match current_session(&state, request.headers()).await {
        Ok(Some(current)) => current,
        Ok(None) => return unauthenticated(&request),
        Err(reply) => return reply.into_response(),
    };

    if upstream.status.get() == UpstreamState::Starting {
        return ErrorReply::starting().into_response();
    }

    // 3. rewrite request
    let upgrade = request.method() == ::http::Method::GET && is_upgrade_request(request.headers());
    // Kept (before the rewrite strips it) for re-checking a WebSocket's session while it stays open.
    let session_cookie =
        if upgrade { read_cookie(request.headers(), state.cookies.session).map(str::to_owned) } else { None };
    let path_and_query =
        request.uri().path_and_query().map(|pq| pq.as_str().to_owned()).unwrap_or_else(|| "/".to_owned());
    let request_id = request.extensions().get::<RequestId>().cloned();
    {
        let headers = request.headers_mut();
        remove_hop_by_hop(headers, upgrade);
        forwarded::set_forwarded_headers(
            headers,
            peer,
            &state.config.server.trusted_proxies,
            state.config.server.public_url.scheme(),
        );
        remove_gatehouse_cookies(headers, &state.cookies);
        identity_headers(&state, &current, headers);
        if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(&id.0).ok()) {
            headers.insert("x-request-id", id);
        }
    }

    // 4. forward
    let started = Instant::now();
    let result = if upgrade {
        let live = state.sessions.revocations().register(&current.session.id);
        if let Some(cookie) = session_cookie {
            watch_session(state.clone(), cookie, live.cancelled.clone());
        }
        websocket::forward_websocket(&upstream, request, live, state.shutdown.clone()).await
    } else {
        match upstream.uri_for(&path_and_query) {
            Ok(uri) => {
                *request.uri_mut() = uri;
                http::forward_http(&upstream, request).await
            }
            Err(_) => {
                return ErrorReply::bad_request("The request path is not valid.").into_response();
            }
        }
    };
    metrics::histogram!("gatehouse_proxy_duration_seconds").record(started.elapsed().as_secs_f64());

    // 5. rewrite response
    match result {
        Ok(mut response) => {
            if response.status() != StatusCode::SWITCHING_PROTOCOLS {
                remove_hop_by_hop(response.headers_mut(), false);
            }
            headers::remove_gatehouse_set_cookies(response.headers_mut(), &state.cookies);
            response.extensions_mut().insert(Proxied);
            response
        }
        Err(err) => {
            tracing::warn!(error = %err, path = %request_path_for_log(&path_and_query), "proxying failed");
            match err {
                ProxyError::Timeout => ErrorReply::upstream_timeout().into_response(),
                ProxyError::Connect(_) | ProxyError::Upstream(_) => ErrorReply::upstream_unavailable().into_response(),
            }
        }
    }
}

/// Closes a tunnel (by cancelling `revoke`) once its session stops being valid. An open tab counts as
/// activity: each check also refreshes the session's idle timer, the absolute timeout still applies.
fn watch_session(state: SharedState, cookie: String, revoke: tokio_util::sync::CancellationToken) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(state.session_recheck);
        interval.tick().await;
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = revoke.cancelled() => return,
            }
            match state.sessions.authenticate(&cookie).await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    tracing::info!("closing a WebSocket: its session is no longer valid");
                    revoke.cancel();
                    return;
                }
                Err(err) => {
                    // Fail closed: without the database the session cannot be vouched for.
                    tracing::warn!(error = %err, "closing a WebSocket: its session cannot be checked");
                    revoke.cancel();
                    return;
                }
            }
        }
    });
}

/// Identity headers for a signed-in user, for proxied requests and for forward-auth answers.
pub fn identity_headers(state: &AppState, current: &Authenticated, headers: &mut HeaderMap) {
    let user = &current.user;
    let roles = user.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",");
    let assertion = state.assertions.assertion_for(&current.session.id, user, state.clock.now());
    let identity = Identity {
        username: user.username.as_str(),
        email: user.email.as_ref().map(|e| e.as_str()).unwrap_or(""),
        name: user.name_for_display(),
        roles: &roles,
        assertion: assertion.as_deref(),
    };
    inject_identity(headers, &identity, &state.config.upstream.header_aliases);
}

/// Characters escaped in the `rd` query parameter (everything that is not unreserved).
const RD_ESCAPE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b'/')
    .add(b':')
    .add(b';')
    .add(b'<')
    .add(b'=')
    .add(b'>')
    .add(b'?')
    .add(b'@')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// No session: page loads go to the sign-in page (and come back afterwards), everything else gets 401.
fn unauthenticated(request: &Request<Body>) -> Response {
    if !wants_html(request.headers())
        || is_upgrade_request(request.headers())
        || request.method() != ::http::Method::GET
    {
        return ErrorReply::unauthorized().into_response();
    }
    let path = request.uri().path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
    let target = format!("/_gatehouse/login?rd={}", utf8_percent_encode(path, RD_ESCAPE));
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(&target) {
        response.headers_mut().insert(LOCATION, location);
    }
    response
}

/// The path without its query string, which may carry secrets.
fn request_path_for_log(path_and_query: &str) -> &str {
    path_and_query.split('?').next().unwrap_or("/")
}
