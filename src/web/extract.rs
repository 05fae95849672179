//! What page handlers (and the proxy) need to know about a request: who the client is, which session the
//! cookie stands for, and the CSRF cookie/token pair for forms.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use http::header::{HeaderValue, SET_COOKIE, USER_AGENT};

use super::error::ErrorReply;
use crate::app::AppState;
use crate::auth::cookies::{read_cookie, read_single_cookie};
use crate::auth::csrf::check_origin;
use crate::auth::{Authenticated, ClientInfo};
use crate::proxy::forwarded::client_ip;

pub fn client_info(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> ClientInfo {
    ClientInfo {
        ip: Some(client_ip(peer, headers, &state.config.server.trusted_proxies).to_string()),
        user_agent: headers.get(USER_AGENT).and_then(|v| v.to_str().ok()).map(|ua| ua.chars().take(512).collect()),
    }
}

/// The signed-in session behind the request's cookie, if any. Database trouble is an error (fail closed).
/// Two session cookies means one was planted (e.g. with a longer Path): neither is trusted.
pub async fn current_session(state: &AppState, headers: &HeaderMap) -> Result<Option<Arc<Authenticated>>, ErrorReply> {
    match read_single_cookie(headers, state.cookies.session) {
        Some(value) => Ok(state.sessions.authenticate(value).await?),
        None => Ok(None),
    }
}

/// The CSRF token to embed in a page's forms, and the cookie to set if the browser has none yet.
pub struct CsrfPair {
    pub token: String,
    pub set_cookie: Option<HeaderValue>,
}

pub fn csrf_for_page(state: &AppState, headers: &HeaderMap) -> CsrfPair {
    if let Some(existing) = read_cookie(headers, state.cookies.csrf).filter(|v| state.csrf.is_minted(v)) {
        return CsrfPair { token: state.csrf.token_for(existing), set_cookie: None };
    }
    let value = state.csrf.new_cookie_value();
    let cookie = state.cookies.build(state.cookies.csrf, value.clone(), None);
    CsrfPair { token: state.csrf.token_for(&value), set_cookie: HeaderValue::from_str(&cookie.to_string()).ok() }
}

/// Both CSRF layers for a state-changing request.
pub fn verify_csrf(state: &AppState, headers: &HeaderMap, submitted: &str) -> Result<(), ErrorReply> {
    check_origin(headers, &state.config.server.public_url).map_err(|_| ErrorReply::csrf())?;
    state.csrf.verify_token(read_cookie(headers, state.cookies.csrf), submitted).map_err(|_| ErrorReply::csrf())
}

/// Adds `Set-Cookie` headers to a response.
pub fn with_cookies(response: impl IntoResponse, cookies: impl IntoIterator<Item = HeaderValue>) -> Response {
    let mut response = response.into_response();
    for cookie in cookies {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    response
}

/// Renders a page as an HTML response with the given status.
pub fn html_page(status: http::StatusCode, html: String) -> Response {
    (status, [(http::header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}
