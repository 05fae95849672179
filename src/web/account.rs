//! `/_gatehouse/account`: the signed-in person's own page. Display name, email (a code goes to the new
//! address first), password (the current one required; other sessions end), and the list of their sessions
//! with a button to end any one of them or all the others.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::error::ErrorReply;
use super::extract::{client_info, current_session, verify_csrf};
use super::form::HtmlForm;
use super::pages::{form_page, form_problem};
use crate::accounts::AccountError;
use crate::accounts::shared_password;
use crate::app::SharedState;
use crate::auth::Authenticated;
use crate::domain::{Session, SessionId};

const ACCOUNT_PATH: &str = "/_gatehouse/account";

#[derive(Deserialize)]
pub struct AccountQuery {
    done: Option<String>,
}

#[derive(Deserialize)]
pub struct NameForm {
    csrf_token: String,
    name: String,
}

#[derive(Deserialize)]
pub struct EmailForm {
    csrf_token: String,
    email: String,
    current_password: String,
}

#[derive(Deserialize)]
pub struct PasswordForm {
    csrf_token: String,
    current_password: String,
    new_password: String,
}

#[derive(Deserialize)]
pub struct SessionForm {
    csrf_token: String,
    #[serde(default)]
    session_id: String,
}

/// The signed-in session, or a redirect to the sign-in page that comes back here.
async fn signed_in_or_redirect(state: &SharedState, headers: &HeaderMap) -> Result<Arc<Authenticated>, Response> {
    match current_session(state, headers).await {
        Ok(Some(auth)) => Ok(auth),
        Ok(None) => Err(Redirect::to("/_gatehouse/login?rd=%2F_gatehouse%2Faccount").into_response()),
        Err(reply) => Err(reply.into_response()),
    }
}

/// A problem to show in one section of the page.
struct SectionError<'a> {
    section: &'a str,
    message: &'a str,
}

async fn account_page(
    state: &SharedState,
    headers: &HeaderMap,
    auth: &Authenticated,
    status: StatusCode,
    done: Option<&str>,
    error: Option<SectionError<'_>>,
) -> Result<Response, ErrorReply> {
    let user = &auth.user;
    let sessions = state.accounts.sessions_of(user).await.map_err(|_| ErrorReply::database_unavailable())?;
    let sessions: Vec<_> = sessions.iter().map(|s| session_row(s, &auth.session.id)).collect();
    let notice = match done {
        Some("name") => Some("Your display name was saved."),
        Some("email") => Some("Your email address was changed."),
        Some("password") => Some("Your password was changed. Your other sessions were ended."),
        Some("session") => Some("The session was ended."),
        Some("others") => Some("Your other sessions were ended."),
        _ => None,
    };
    let shared_account = shared_password::is_shared_account(&state.store, user).await?;
    // The shared account's sessions are other people's: each sees only their own.
    let sessions: Vec<_> = if shared_account {
        sessions.into_iter().filter(|row| row.get_attr("current").is_ok_and(|current| current.is_true())).collect()
    } else {
        sessions
    };
    let context = minijinja::context! {
        shared_account => shared_account,
        username => user.username.as_str(),
        name => &user.display_name,
        email => user.email.as_ref().map(|e| e.as_str()),
        email_verified => user.email_verified,
        roles => user.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        is_admin => user.has_role(state.config.admin.role.as_str()),
        sessions => sessions,
        notice => notice,
        error_section => error.as_ref().map(|e| e.section),
        error => error.as_ref().map(|e| e.message),
    };
    Ok(form_page(state, headers, status, "account.html", context))
}

pub async fn show(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Query(query): Query<AccountQuery>,
) -> Result<Response, ErrorReply> {
    let auth = match signed_in_or_redirect(&state, &headers).await {
        Ok(auth) => auth,
        Err(redirect) => return Ok(redirect),
    };
    account_page(&state, &headers, &auth, StatusCode::OK, query.done.as_deref(), None).await
}

/// Runs one account change for the signed-in session and answers with a redirect back to the page, or the
/// page with the problem shown in `section`.
async fn change<F, Fut, T>(
    state: &SharedState,
    headers: &HeaderMap,
    csrf_token: &str,
    section: &str,
    operation: F,
) -> Result<Response, ErrorReply>
where
    F: FnOnce(SharedState, Arc<Authenticated>) -> Fut,
    Fut: std::future::Future<Output = Result<T, AccountError>>,
    T: Into<String>,
{
    verify_csrf(state, headers, csrf_token)?;
    let auth = match signed_in_or_redirect(state, headers).await {
        Ok(auth) => auth,
        Err(redirect) => return Ok(redirect),
    };
    // Everyone who knows the shared password is this account: none of them may change it for the others.
    if shared_password::is_shared_account(&state.store, &auth.user).await? {
        return Err(ErrorReply::forbidden(
            "Everybody signs in with the shared password, so this account's name, email and password cannot be changed here. The operator sets the password (gatehouse run --shared-password-file).",
        ));
    }
    match operation(state.clone(), auth.clone()).await {
        Ok(to) => Ok(Redirect::to(&to.into()).into_response()),
        Err(err) => {
            let problem = form_problem(err)?;
            let error = SectionError { section, message: &problem.message };
            Ok(problem.finish(account_page(state, headers, &auth, problem.status, None, Some(error)).await?))
        }
    }
}

pub async fn change_name(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    HtmlForm(mut form): HtmlForm<NameForm>,
) -> Result<Response, ErrorReply> {
    let client = client_info(&state, peer, &headers);
    let csrf_token = std::mem::take(&mut form.csrf_token);
    change(&state, &headers, &csrf_token, "name", |state, auth| async move {
        state.accounts.change_display_name(&auth.user, &form.name, &client).await?;
        Ok(format!("{ACCOUNT_PATH}?done=name"))
    })
    .await
}

pub async fn change_email(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    HtmlForm(mut form): HtmlForm<EmailForm>,
) -> Result<Response, ErrorReply> {
    let client = client_info(&state, peer, &headers);
    let csrf_token = std::mem::take(&mut form.csrf_token);
    change(&state, &headers, &csrf_token, "email", |state, auth| async move {
        let request =
            state.accounts.request_email_change(&auth.user, &form.email, &form.current_password, &client).await?;
        Ok(format!("/_gatehouse/verify?id={}", request.challenge_id))
    })
    .await
}

pub async fn change_password(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    HtmlForm(mut form): HtmlForm<PasswordForm>,
) -> Result<Response, ErrorReply> {
    let client = client_info(&state, peer, &headers);
    let csrf_token = std::mem::take(&mut form.csrf_token);
    change(&state, &headers, &csrf_token, "password", |state, auth| async move {
        let (user, session) = (&auth.user, &auth.session.id);
        state.accounts.change_password(user, session, &form.current_password, &form.new_password, &client).await?;
        Ok(format!("{ACCOUNT_PATH}?done=password"))
    })
    .await
}

pub async fn end_session(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    HtmlForm(mut form): HtmlForm<SessionForm>,
) -> Result<Response, ErrorReply> {
    let client = client_info(&state, peer, &headers);
    let csrf_token = std::mem::take(&mut form.csrf_token);
    change(&state, &headers, &csrf_token, "sessions", |state, auth| async move {
        let id = SessionId(form.session_id);
        state.accounts.end_own_session(&auth.user, &id, &client).await?;
        // Ending the current session is signing out.
        Ok(if id == auth.session.id {
            "/_gatehouse/login?signed_out=1".to_owned()
        } else {
            format!("{ACCOUNT_PATH}?done=session")
        })
    })
    .await
}

pub async fn end_other_sessions(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    HtmlForm(mut form): HtmlForm<SessionForm>,
) -> Result<Response, ErrorReply> {
    let client = client_info(&state, peer, &headers);
    let csrf_token = std::mem::take(&mut form.csrf_token);
    change(&state, &headers, &csrf_token, "sessions", |state, auth| async move {
        state.accounts.end_other_sessions(&auth.user, &auth.session.id, &client).await?;
        Ok(format!("{ACCOUNT_PATH}?done=others"))
    })
    .await
}

/// One session as the session lists show it (the account page and an administrator's view of a user);
/// `current` is the session of the browser looking at the list.
pub(crate) fn session_row(session: &Session, current: &SessionId) -> minijinja::Value {
    minijinja::context! {
        id => session.id.0.as_str(),
        device => describe_device(session.user_agent.as_deref()),
        ip => session.client_ip.as_deref().unwrap_or("unknown"),
        last_seen => format_time(session.last_seen_at),
        last_seen_iso => session.last_seen_at.format(&Rfc3339).unwrap_or_default(),
        created => format_time(session.created_at),
        current => &session.id == current,
    }
}

/// "2026-11-24 14:05 UTC" (stored times are UTC).
pub(crate) fn format_time(t: OffsetDateTime) -> String {
    format!("{:04}-{:02}-{:02} {:02}:{:02} UTC", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute())
}

/// "Chrome on Linux" from a User-Agent: enough for people to recognise their own devices.
pub fn describe_device(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent.filter(|ua| !ua.is_empty()) else { return "Unknown device".to_owned() };
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chromium/", "Chromium"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
        ("python-requests", "Python requests"),
    ]
    .iter()
    .find(|(needle, _)| ua.contains(needle))
    .map(|(_, name)| *name);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(needle, _)| ua.contains(needle))
    .map(|(_, name)| *name);
    match (browser, system) {
        (Some(b), Some(s)) => format!("{b} on {s}"),
        (Some(b), None) => b.to_owned(),
        (None, Some(s)) => s.to_owned(),
        (None, None) => ua.chars().take(40).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::describe_device;

    #[test]
    fn devices_are_named_by_browser_and_system() {
        let chrome =
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36";
        assert_eq!(describe_device(Some(chrome)), "Chrome on Linux");
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile/15E148 Safari/604.1";
        assert_eq!(describe_device(Some(iphone)), "Safari on iPhone");
        assert_eq!(describe_device(None), "Unknown device");
        assert_eq!(describe_device(Some("curl/8.5.0")), "curl");
    }
}
