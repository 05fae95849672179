//! `/_gatehouse/admin/invites`: open invitations (who, which roles, by whom, until when), a form to invite
//! someone by email, and a button to revoke an invitation before it is used.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::users::parse_roles;
use super::{admin_form, admin_page, admin_problem, format_time, require_admin};
use crate::app::SharedState;
use crate::auth::Authenticated;
use crate::config::SignupMode;
use crate::domain::Role;
use crate::web::error::ErrorReply;
use crate::web::form::HtmlForm;

const INVITES_PATH: &str = "/_gatehouse/admin/invites";

#[derive(Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    done: String,
}

#[derive(Deserialize)]
pub struct InviteForm {
    csrf_token: String,
    email: String,
    #[serde(default)]
    roles: String,
}

#[derive(Deserialize)]
pub struct RevokeForm {
    csrf_token: String,
    #[serde(default)]
    invite_id: String,
}

pub async fn list(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Query(query): Query<PageQuery>,
) -> Result<Response, ErrorReply> {
    let admin = match require_admin(&state, &headers, INVITES_PATH).await {
        Ok(admin) => admin,
        Err(answer) => return Ok(answer),
    };
    let notice = match query.done.as_str() {
        "sent" => Some("The invitation was sent."),
        "revoked" => Some("The invitation was revoked; its link no longer works."),
        _ => None,
    };
    render(&state, &headers, &admin, StatusCode::OK, notice, None).await
}

pub async fn create(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    HtmlForm(form): HtmlForm<InviteForm>,
) -> Result<Response, ErrorReply> {
    let (admin, actor) = match admin_form(&state, peer, &headers, INVITES_PATH, &form.csrf_token).await {
        Ok(pair) => pair,
        Err(answer) => return Ok(answer),
    };
    let sent = match parse_roles(&form.roles) {
        Ok(roles) => state.admin.invite(&actor, &form.email, roles).await,
        Err(err) => Err(err),
    };
    match sent {
        Ok(_) => Ok(Redirect::to(&format!("{INVITES_PATH}?done=sent")).into_response()),
        Err(err) => {
            let (status, message) = admin_problem(err)?;
            render(&state, &headers, &admin, status, None, Some(&message)).await
        }
    }
}

pub async fn revoke(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    HtmlForm(form): HtmlForm<RevokeForm>,
) -> Result<Response, ErrorReply> {
    let (admin, actor) = match admin_form(&state, peer, &headers, INVITES_PATH, &form.csrf_token).await {
        Ok(pair) => pair,
        Err(answer) => return Ok(answer),
    };
    match state.admin.revoke_invite(&actor, &form.invite_id).await {
        Ok(()) => Ok(Redirect::to(&format!("{INVITES_PATH}?done=revoked")).into_response()),
        Err(err) => {
            let (status, message) = admin_problem(err)?;
            render(&state, &headers, &admin, status, None, Some(&message)).await
        }
    }
}

async fn render(
    state: &SharedState,
    headers: &HeaderMap,
    admin: &Authenticated,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> Result<Response, ErrorReply> {
    let now = state.clock.now();
    let invites: Vec<_> = state
        .store
        .list_invites()
        .await?
        .iter()
        .filter(|invite| invite.is_valid_at(now))
        .map(|invite| {
            minijinja::context! {
                id => &invite.id,
                email => invite.email.as_str(),
                roles => invite.roles.iter().map(Role::as_str).collect::<Vec<_>>().join(", "),
                invited_by => invite.invited_by.as_deref().unwrap_or("-"),
                created => format_time(invite.created_at),
                expires => format_time(invite.expires_at),
            }
        })
        .collect();
    let context = minijinja::context! {
        invites => invites,
        notice => notice,
        error => error,
        signup_closed => state.config.signup.mode == SignupMode::Closed,
    };
    Ok(admin_page(state, headers, status, "admin_invites.html", "invites", admin, context))
}
