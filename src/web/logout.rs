//! `GET/POST /_gatehouse/logout`: a confirmation page (so a link or an image tag cannot sign anyone out) and
//! the sign-out itself, which deletes the session server-side and closes its WebSockets.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::Deserialize;

use super::error::ErrorReply;
use super::extract::{client_info, csrf_for_page, current_session, html_page, verify_csrf, with_cookies};
use super::form::HtmlForm;
use super::templates::render;
use crate::app::{AppState, SharedState};
use crate::auth::{Authenticated, ClientInfo};
use crate::domain::{AuditEvent, AuditKind};

#[derive(Deserialize)]
pub struct LogoutForm {
    csrf_token: String,
}

pub async fn show(State(state): State<SharedState>, headers: HeaderMap) -> Result<Response, ErrorReply> {
    let Some(current) = current_session(&state, &headers).await? else {
        return Ok(Redirect::to("/_gatehouse/login").into_response());
    };
    let csrf = csrf_for_page(&state, &headers);
    let html = render(
        "logout.html",
        &state.config.brand,
        minijinja::context! {
            csrf_token => csrf.token,
            name => current.user.name_for_display(),
            username => current.user.username.as_str(),
            signed_in => true,
            is_admin => current.user.has_role(state.config.admin.role.as_str()),
        },
    );
    Ok(with_cookies(html_page(StatusCode::OK, html), csrf.set_cookie))
}

pub async fn submit(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    HtmlForm(form): HtmlForm<LogoutForm>,
) -> Result<Response, ErrorReply> {
    verify_csrf(&state, &headers, &form.csrf_token)?;
    let removal = match current_session(&state, &headers).await? {
        Some(current) => sign_out(&state, &current, client_info(&state, peer, &headers), None).await?,
        None => session_cookie_removal(&state)?,
    };
    Ok(with_cookies(Redirect::to("/_gatehouse/login?signed_out=1"), [removal]))
}

/// Signs the browser's session out: ends it (its WebSockets close), audits it (`detail` says through what,
/// e.g. which app asked), and returns the header that removes the session cookie.
pub(crate) async fn sign_out(
    state: &AppState,
    current: &Authenticated,
    client: ClientInfo,
    detail: Option<String>,
) -> Result<HeaderValue, ErrorReply> {
    state.sessions.end(&current.session.id).await?;
    let mut event = AuditEvent::new(state.clock.now(), AuditKind::SignOut)
        .actor(current.user.username.as_str())
        .subject(current.user.username.as_str())
        .client(client.ip, client.user_agent);
    if let Some(detail) = &detail {
        event = event.detail(detail.as_str());
    }
    state.store.append_audit(&event).await?;
    tracing::info!(user = %current.user.username, via = detail.as_deref().unwrap_or("sign-out page"), "signed out");
    session_cookie_removal(state)
}

/// The `Set-Cookie` value that removes the session cookie.
pub(crate) fn session_cookie_removal(state: &AppState) -> Result<HeaderValue, ErrorReply> {
    let removal = state.cookies.removal(state.cookies.session);
    HeaderValue::from_str(&removal.to_string()).map_err(|_| ErrorReply::internal())
}
