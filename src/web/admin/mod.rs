//! `/_gatehouse/admin`: the admin console, for holders of the `[admin] role` (default `admin`). One file per
//! page group: the dashboard, the user list and one user's page, invitations, the audit log. Every page asks
//! [`require_admin`] first, every form carries the CSRF token, and the rules about what an administrator may
//! do live in [`crate::admin`], not here.

mod audit;
mod charts;
mod dashboard;
mod invites;
mod user;
mod users;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode};
use time::OffsetDateTime;

use super::error::ErrorReply;
use super::extract::{client_info, current_session, verify_csrf};
use super::pages::form_page;
use crate::admin::{Actor, AdminError};
use crate::app::SharedState;
use crate::auth::Authenticated;
use crate::web::account::format_time;

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/admin", get(dashboard::show))
        .route("/admin/users", get(users::list).post(users::create))
        .route("/admin/users/{username}", get(user::show))
        .route("/admin/users/{username}/delete", get(user::confirm_delete).post(user::delete))
        .route("/admin/users/{username}/{action}", post(user::act))
        .route("/admin/invites", get(invites::list).post(invites::create))
        .route("/admin/invites/revoke", post(invites::revoke))
        .route("/admin/audit", get(audit::list))
}

/// The signed-in administrator, or the answer to give instead: the sign-in page (coming back to `path`) for
/// a browser without a session, 401 for anything else, 403 naming the role for a signed-in non-administrator.
async fn require_admin(state: &SharedState, headers: &HeaderMap, path: &str) -> Result<Arc<Authenticated>, Response> {
    let current = match current_session(state, headers).await {
        Ok(current) => current,
        Err(reply) => return Err(reply.into_response()),
    };
    let Some(current) = current else {
        let is_page_load = super::context::wants_html(headers);
        return Err(if is_page_load {
            const RD: &percent_encoding::AsciiSet =
                &percent_encoding::NON_ALPHANUMERIC.remove(b'_').remove(b'-').remove(b'.');
            let rd = percent_encoding::utf8_percent_encode(path, RD);
            Redirect::to(&format!("/_gatehouse/login?rd={rd}")).into_response()
        } else {
            ErrorReply::unauthorized().into_response()
        });
    };
    let role = std::slice::from_ref(state.admin.admin_role());
    if !current.user.roles.contains(&role[0]) {
        tracing::info!(user = %current.user.username, path, "refused the admin console to a non-administrator");
        return Err(ErrorReply::role_required(role, current.user.username.as_str()).into_response());
    }
    Ok(current)
}

/// What every admin form needs before it acts: a signed-in administrator (see [`require_admin`]), the form's
/// CSRF token, and the [`Actor`] to audit the action under.
async fn admin_form(
    state: &SharedState,
    peer: SocketAddr,
    headers: &HeaderMap,
    path: &str,
    csrf_token: &str,
) -> Result<(Arc<Authenticated>, Actor), Response> {
    let admin = require_admin(state, headers, path).await?;
    verify_csrf(state, headers, csrf_token).map_err(IntoResponse::into_response)?;
    let actor = Actor::user(&admin.user, client_info(state, peer, headers));
    Ok((admin, actor))
}

/// A failure that has no place on the page that asked (the page could not even be drawn).
fn admin_failure(err: AdminError) -> ErrorReply {
    match admin_problem(err) {
        Ok((status, message)) => ErrorReply { status, ..ErrorReply::bad_request(message) },
        Err(reply) => reply,
    }
}

/// Renders an admin page: `template` with the console's navigation (`section` highlighted) and the signed-in
/// administrator's name.
fn admin_page(
    state: &SharedState,
    headers: &HeaderMap,
    status: StatusCode,
    template: &str,
    section: &str,
    admin: &Authenticated,
    context: minijinja::Value,
) -> Response {
    let context = minijinja::context! {
        section => section,
        admin_username => admin.user.username.as_str(),
        ..context
    };
    form_page(state, headers, status, template, context)
}

/// How an [`AdminError`] is shown: a message on the page (with the status) or, for failures, the error page.
fn admin_problem(err: AdminError) -> Result<(StatusCode, String), ErrorReply> {
    match err {
        AdminError::Invalid(problem) => Ok((StatusCode::UNPROCESSABLE_ENTITY, problem.0)),
        AdminError::Refused(message) => Ok((StatusCode::CONFLICT, message)),
        AdminError::NoSuchUser => Err(no_such_user()),
        AdminError::Store(err) => Err(err.into()),
        AdminError::Internal(message) => {
            tracing::error!(error = %message, "admin action failed");
            Err(ErrorReply::internal())
        }
    }
}

fn no_such_user() -> ErrorReply {
    ErrorReply { status: StatusCode::NOT_FOUND, ..ErrorReply::not_found() }
        .with_message("There is no user with that name (they may have been deleted).")
}

fn format_optional_time(t: Option<OffsetDateTime>) -> String {
    t.map(format_time).unwrap_or_else(|| "never".to_owned())
}
