//! `/_gatehouse/admin/users/{username}`: one user's page — profile and roles to edit, disable/enable, a
//! password-reset link to send, their sessions (end one or all), their recent audit trail, and delete behind
//! a confirmation page. Each action is a small form posting to its own path; the result comes back as a
//! notice (after a redirect) or as the page with the problem shown.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::users::{parse_roles, status_of};
use super::{admin_failure, admin_form, admin_page, admin_problem, format_optional_time, require_admin};
use crate::admin::{AdminError, AdminResult};
use crate::app::SharedState;
use crate::auth::Authenticated;
use crate::domain::{Role, SessionId, User};
use crate::store::AuditFilter;
use crate::web::account::{format_time, session_row};
use crate::web::error::ErrorReply;
use crate::web::form::HtmlForm;

/// Events of the user's trail shown on the page; the audit page has the rest.
const TRAIL_LENGTH: i64 = 15;

#[derive(Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    done: String,
}

/// The fields of every action form; each action reads the ones it needs.
#[derive(Deserialize)]
pub struct ActionForm {
    csrf_token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    roles: String,
    #[serde(default)]
    session_id: String,
}

/// What an administrator can do to a user, by the last segment of the form's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UserAction {
    Profile,
    Roles,
    Disable,
    Enable,
    ResetLink,
    EndSession,
    EndAllSessions,
    Delete,
}

impl UserAction {
    fn from_path(segment: &str) -> Option<Self> {
        Some(match segment {
            "profile" => Self::Profile,
            "roles" => Self::Roles,
            "disable" => Self::Disable,
            "enable" => Self::Enable,
            "reset-link" => Self::ResetLink,
            "end-session" => Self::EndSession,
            "end-sessions" => Self::EndAllSessions,
            "delete" => Self::Delete,
            _ => return None,
        })
    }

    /// The notice the user's page shows afterwards (`?done=`).
    fn done(self) -> &'static str {
        match self {
            Self::Profile => "profile",
            Self::Roles => "roles",
            Self::Disable => "disabled",
            Self::Enable => "enabled",
            Self::ResetLink => "reset",
            Self::EndSession => "session",
            Self::EndAllSessions => "sessions",
            Self::Delete => "deleted",
        }
    }
}

fn user_path(username: &str) -> String {
    format!("/_gatehouse/admin/users/{username}")
}

pub async fn show(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Path(username): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Response, ErrorReply> {
    let admin = match require_admin(&state, &headers, &user_path(&username)).await {
        Ok(admin) => admin,
        Err(answer) => return Ok(answer),
    };
    let user = find(&state, &username).await?;
    let notice = match query.done.as_str() {
        "created" => Some("The user was created."),
        "profile" => Some("Name and email were saved."),
        "roles" => Some("The roles were saved. The app sees them on the user's next request."),
        "disabled" => Some("The user was disabled; their sessions ended and open tabs were closed."),
        "enabled" => Some("The user was enabled."),
        "reset" => Some("A password-reset link was sent."),
        "session" => Some("The session was ended."),
        "sessions" => Some("Every session of the user was ended."),
        _ => None,
    };
    user_page(&state, &headers, &admin, &user, StatusCode::OK, notice, None).await
}

/// `POST /_gatehouse/admin/users/{username}/{action}`.
pub async fn act(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path((username, action)): Path<(String, String)>,
    HtmlForm(form): HtmlForm<ActionForm>,
) -> Result<Response, ErrorReply> {
    let Some(action) = UserAction::from_path(&action) else { return Err(ErrorReply::not_found()) };
    perform(&state, peer, &headers, &username, action, form).await
}

/// `POST /_gatehouse/admin/users/{username}/delete` (the path also serves the confirmation page).
pub async fn delete(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(username): Path<String>,
    HtmlForm(form): HtmlForm<ActionForm>,
) -> Result<Response, ErrorReply> {
    perform(&state, peer, &headers, &username, UserAction::Delete, form).await
}

/// Runs one action on the user named in the path, then redirects back with a notice, or shows the user's
/// page with the problem.
async fn perform(
    state: &SharedState,
    peer: SocketAddr,
    headers: &HeaderMap,
    username: &str,
    action: UserAction,
    form: ActionForm,
) -> Result<Response, ErrorReply> {
    let (admin, actor) = match admin_form(state, peer, headers, &user_path(username), &form.csrf_token).await {
        Ok(pair) => pair,
        Err(answer) => return Ok(answer),
    };
    let user = find(state, username).await?;
    let service = &state.admin;
    let done: AdminResult<()> = match action {
        UserAction::Profile => service.update_profile(&actor, &user, &form.name, &form.email).await.map(drop),
        UserAction::Roles => match parse_roles(&form.roles) {
            Ok(roles) => service.set_roles(&actor, &user, roles).await.map(drop),
            Err(problem) => Err(problem),
        },
        UserAction::Disable => service.set_disabled(&actor, &user, true).await.map(drop),
        UserAction::Enable => service.set_disabled(&actor, &user, false).await.map(drop),
        UserAction::ResetLink => service.send_reset_link(&actor, &user).await,
        UserAction::EndSession => service.end_session(&actor, &user, &SessionId(form.session_id)).await,
        UserAction::EndAllSessions => service.end_all_sessions(&actor, &user).await.map(drop),
        UserAction::Delete => service.delete_user(&actor, &user).await.map(drop),
    };
    match done {
        Ok(()) if action == UserAction::Delete => {
            Ok(Redirect::to("/_gatehouse/admin/users?done=deleted").into_response())
        }
        Ok(()) => {
            Ok(Redirect::to(&format!("{}?done={}", user_path(user.username.as_str()), action.done())).into_response())
        }
        Err(err) => {
            let (status, message) = admin_problem(err)?;
            // The page shows the account as it is now.
            let user = find(state, username).await?;
            user_page(state, headers, &admin, &user, status, None, Some(&message)).await
        }
    }
}

/// The confirmation page: deleting cannot be undone, so it is one more deliberate click.
pub async fn confirm_delete(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Path(username): Path<String>,
) -> Result<Response, ErrorReply> {
    let admin = match require_admin(&state, &headers, &user_path(&username)).await {
        Ok(admin) => admin,
        Err(answer) => return Ok(answer),
    };
    let user = find(&state, &username).await?;
    let sessions = state.store.sessions_for_user(&user.id).await?.len();
    let context = minijinja::context! {
        username => user.username.as_str(),
        name => user.name_for_display(),
        sessions => sessions,
    };
    Ok(admin_page(&state, &headers, StatusCode::OK, "admin_delete.html", "users", &admin, context))
}

async fn find(state: &SharedState, username: &str) -> Result<User, ErrorReply> {
    match state.admin.user_by_name(username).await {
        Ok(user) => Ok(user),
        Err(AdminError::Invalid(_)) | Err(AdminError::NoSuchUser) => Err(super::no_such_user()),
        Err(err) => Err(admin_failure(err)),
    }
}

async fn user_page(
    state: &SharedState,
    headers: &HeaderMap,
    admin: &Authenticated,
    user: &User,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> Result<Response, ErrorReply> {
    let sessions = state.accounts.sessions_of(user).await.map_err(|_| ErrorReply::database_unavailable())?;
    let sessions: Vec<_> = sessions.iter().map(|s| session_row(s, &admin.session.id)).collect();
    let filter = AuditFilter {
        subject_or_actor: Some(user.username.as_str().to_owned()),
        limit: TRAIL_LENGTH,
        ..Default::default()
    };
    let trail: Vec<_> = state.store.list_audit(&filter).await?.iter().map(super::audit::event_row).collect();
    let is_self = admin.user.id == user.id;
    let context = minijinja::context! {
        username => user.username.as_str(),
        name => &user.display_name,
        display => user.name_for_display(),
        email => user.email.as_ref().map(|e| e.as_str()),
        email_verified => user.email_verified,
        roles => user.roles.iter().map(Role::as_str).collect::<Vec<_>>().join(", "),
        status => status_of(user),
        created => format_time(user.created_at),
        last_login => format_optional_time(user.last_login_at),
        login_count => user.login_count,
        sessions => sessions,
        trail => trail,
        is_self => is_self,
        notice => notice,
        error => error,
        admin_role => state.admin.admin_role().as_str(),
    };
    Ok(admin_page(state, headers, status, "admin_user.html", "users", admin, context))
}
