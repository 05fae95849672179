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
use crate::app::SharedState;
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
        minijinja::context! {
            csrf_token => csrf.token,
            name => current.user.name_for_display(),
            username => current.user.username.as_str(),
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
    if let Some(current) = current_session(&state, &headers).await? {
        state.sessions.end(&current.session.id).await?;
        let client = client_info(&state, peer, &headers);
        let event = AuditEvent::new(state.clock.now(), AuditKind::SignOut)
            .actor(current.user.username.as_str())
            .subject(current.user.username.as_str())
            .client(client.ip, client.user_agent);
        state.store.append_audit(&event).await?;
        tracing::info!(user = %current.user.username, "signed out");
    }
    let removal = state.cookies.removal(state.cookies.session);
    let removal = HeaderValue::from_str(&removal.to_string()).map_err(|_| ErrorReply::internal())?;
    Ok(with_cookies(Redirect::to("/_gatehouse/login?signed_out=1"), [removal]))
}
