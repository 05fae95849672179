//! The proxy pipeline, in named stages like pingora's phases:
//! 0. **canonicalise** (for every request, in `server::connection`): one canonical host and path, which
//!    are both judged and forwarded ([`canonical`]);
//! 1. **filter**: strip every identity header the client sent (any letter case);
//! 2. **authenticate**: the session cookie must name a live session of an enabled user; otherwise a page load
//!    is redirected (303) to the sign-in page with its return path, anything else gets 401 JSON;
//! 3. **rewrite request**: hop-by-hop headers out, `X-Forwarded-*` set, Gatehouse cookies removed, identity
//!    headers injected (on the WebSocket upgrade too);
//! 4. **forward**: WebSocket upgrades through their own tunnel, everything else through the pooled client;
//! 5. **rewrite response**: hop-by-hop headers out; upstream failures become branded 502/504 pages.

mod body_rate;
pub mod canonical;
mod client_frames;
pub mod forwarded;
pub mod headers;
mod http;
pub mod page_script;
mod relay;
mod session_watch;
pub mod upstream;
mod websocket;

use std::time::Instant;

use ::http::StatusCode;
use ::http::header::{HeaderValue, LOCATION};
use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use crate::app::SharedState;
use crate::auth::cookies::read_cookie;
use crate::domain::access::Access;
use crate::web::context::{Answer, REQUEST_ID, RequestId, wants_html};
use crate::web::error::ErrorReply;
use crate::web::extract::current_session;
use canonical::{Target, judged_request_path};
use forwarded::Peer;
use headers::{
    inject_identity, is_upgrade_request, remove_gatehouse_cookies, remove_hop_by_hop, strip_identity_headers,
};
use upstream::UpstreamState;

/// Why forwarding failed, classified by side so the right status goes back.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("could not connect to the app: {0}")]
    Connect(String),
    #[error("the app did not answer in time")]
    Timeout,
    #[error("the client sent the request body too slowly")]
    BodyTooSlow,
    #[error("the app's answer was broken: {0}")]
    Upstream(String),
}

/// The whole pipeline for one request that is not Gatehouse's own. `request_id` is echoed to the app.
pub async fn proxy_request(
    state: &SharedState,
    peer: &Peer,
    mut request: Request,
    target: &Target,
    request_id: &RequestId,
) -> Answer {
    // 1. filter
    strip_identity_headers(request.headers_mut());

    let Some(upstream) = state.upstream.as_ref() else {
        // `serve` without an app (the provider for apps elsewhere): only Gatehouse's own pages exist, and
        // the front page is the account page, where "Back to the app" on an error page leads.
        if request.uri().path() == "/" {
            return Answer::Own(axum::response::Redirect::to("/_gatehouse/account").into_response());
        }
        return Answer::Own(ErrorReply::not_found().into_response());
    };

    // 2. authenticate and authorize: the `[[access]]` rules say what this canonical host and path need.
    let trusted = &state.config.server.trusted_proxies;
    let host = target.host.as_ref().map(|host| host.as_str());
    if state.config.access.has_host_rules()
        && forwarded::proxy_names_another_host(request.headers(), peer, trusted, host)
    {
        tracing::warn!("refused a request whose Host the proxy in front changed: host rules could not apply");
        return Answer::Own(ErrorReply::misdirected().into_response());
    }
    let access = state.config.access.decide(target.host_name(), &judged_request_path(&request));
    let current = match current_session(state, request.headers()).await {
        Ok(Some(current)) => Some(current),
        Ok(None) | Err(_) if access == Access::Public => None,
        Ok(None) => return Answer::Own(unauthenticated(&request)),
        Err(reply) => return Answer::Own(reply.into_response()),
    };
    if let Some(current) = &current
        && let Some(needed) = access.unmet(&current.user.roles)
    {
        return Answer::Own(ErrorReply::role_required(needed, current.user.username.as_str()).into_response());
    }

    if upstream.status.get() == UpstreamState::Starting {
        return Answer::Own(ErrorReply::starting().into_response());
    }

    // 3. rewrite request
    let upgrade = request.method() == ::http::Method::GET && is_upgrade_request(request.headers());
    // A signed-in tab loading a page gets the script that follows its session (see `page_script`).
    let add_script = state.config.session.follow_open_tabs
        && current.is_some()
        && request.method() == ::http::Method::GET
        && !upgrade
        && page_script::is_page_load(request.headers());
    // Kept (before the rewrite strips it) for re-checking a WebSocket's session while it stays open.
    let session_cookie =
        if upgrade { read_cookie(request.headers(), state.cookies.session).map(str::to_owned) } else { None };
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
        // A public path reached without a session goes to the app with no identity at all.
        if let Some(current) = &current {
            let identity = current.identity(&state.assertions, state.clock.now());
            let private_names = upstream.private_names.as_ref().and_then(|names| names.get());
            inject_identity(headers, identity, &state.config.upstream.header_aliases, private_names.as_deref());
        }
        headers.insert(REQUEST_ID, request_id.header_value().clone());
        if add_script {
            page_script::prepare_request(headers);
        }
    }

    // 4. forward
    // For the log line if forwarding fails (cheap: the parts are reference-counted).
    let original_uri = request.uri().clone();
    let started = Instant::now();
    let result = if upgrade {
        let live = current.as_ref().map(|current| state.sessions.revocations().register(&current.session.id));
        let used = session_watch::TunnelUse::default();
        if let (Some(cookie), Some(live), Some(current)) = (session_cookie, &live, &current) {
            let idle = current.session.idle_timeout.try_into().unwrap_or(std::time::Duration::MAX);
            session_watch::watch_session(state.clone(), cookie, live.cancelled.clone(), used.clone(), idle);
        }
        // Boxed, like every rare path here, to keep the common path's future small.
        Box::pin(websocket::forward_websocket(upstream, request, live, used, state.shutdown.clone())).await
    } else {
        forward_with_body_rate(state, upstream, request).await
    };
    let result = match result {
        Ok(response) if add_script => {
            let timeout = upstream.timeout;
            let read = tokio::time::timeout(timeout, Box::pin(page_script::add_script(response))).await;
            read.unwrap_or(Err(ProxyError::Timeout))
        }
        other => other,
    };
    crate::telemetry::hot_metrics().record_proxy_duration(started.elapsed());

    // 5. rewrite response
    match result {
        Ok(mut response) => {
            if response.status() != StatusCode::SWITCHING_PROTOCOLS {
                remove_hop_by_hop(response.headers_mut(), false);
            }
            headers::remove_gatehouse_set_cookies(response.headers_mut(), &state.cookies);
            headers::limit_clear_site_data(response.headers_mut());
            Answer::App(response)
        }
        Err(err) => {
            // The path only: the query string may carry secrets.
            tracing::warn!(error = %err, path = original_uri.path(), "proxying failed");
            let (reply, close) = match err {
                ProxyError::BodyTooSlow => (ErrorReply::request_timeout(), true),
                ProxyError::Timeout => (ErrorReply::upstream_timeout(), true),
                ProxyError::Connect(_) | ProxyError::Upstream(_) => (ErrorReply::upstream_unavailable(), false),
            };
            let mut response = reply.into_response();
            // The rest of a request body may still be on its way, and nobody will read it.
            if close {
                response.headers_mut().insert(::http::header::CONNECTION, HeaderValue::from_static("close"));
            }
            Answer::Own(response)
        }
    }
}

/// Forwards an ordinary request; one with a body has it held to `[server] body_timeout` and `body_min_rate`.
async fn forward_with_body_rate(
    state: &SharedState,
    upstream: &upstream::Upstream,
    request: Request,
) -> Result<Response, ProxyError> {
    use http_body::Body as _;
    if request.body().is_end_stream() {
        return http::forward_http(upstream, request, None).await;
    }
    let limits = &state.config.server.limits;
    let (parts, body) = request.into_parts();
    let (body, mut watch) = body_rate::MinRateBody::wrap(body, limits.body_timeout, limits.body_min_rate);
    let result = http::forward_http(upstream, Request::from_parts(parts, Body::new(body)), Some(&mut watch)).await;
    match result {
        Err(_) if watch.stalled() => Err(ProxyError::BodyTooSlow),
        other => other,
    }
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

/// What Streamlit's frontend shows, word for word, when its reconnect pings are refused: a sentence for a
/// person rather than the JSON an API client gets (the tab script normally leaves for the sign-in page first).
const SIGNED_OUT_SENTENCE: &str = "You are signed out. Reload this page to sign in again.";

/// Streamlit's reconnect pings (`/_stcore/health`, `/_stcore/host-config`, under any base path), asked
/// without wanting JSON: the frontend's `fetch` sends `Accept: */*`.
fn is_streamlit_ping(request: &Request<Body>) -> bool {
    let path = request.uri().path();
    let accept = request.headers().get(::http::header::ACCEPT).map(|v| v.as_bytes()).unwrap_or(b"");
    (path.ends_with("/_stcore/health") || path.ends_with("/_stcore/host-config"))
        && !accept.windows(4).any(|w| w.eq_ignore_ascii_case(b"json"))
}

/// No session: page loads go to the sign-in page (and come back afterwards), everything else gets 401.
fn unauthenticated(request: &Request<Body>) -> Response {
    if is_streamlit_ping(request) {
        let mut response = (StatusCode::UNAUTHORIZED, SIGNED_OUT_SENTENCE).into_response();
        response
            .headers_mut()
            .insert(::http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        // The sentence is the answer: not to be replaced by the error page or JSON.
        response.extensions_mut().insert(crate::web::context::Proxied);
        return response;
    }
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
