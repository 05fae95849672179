//! `GET/POST /_gatehouse/login`: the sign-in form and its submission.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::Deserialize;

use super::error::ErrorReply;
use super::extract::{client_info, csrf_for_page, current_session, html_page, verify_csrf, with_cookies};
use super::form::HtmlForm;
use super::templates::render;
use crate::accounts::shared_password;
use crate::app::SharedState;
use crate::auth::{LoginAttempt, LoginError};
use crate::domain::return_path::safe_return_path;

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    rd: Option<String>,
    signed_out: Option<String>,
    reset: Option<String>,
    verified: Option<String>,
    /// An open tab of the app came here because its session ended (`static/session.js`).
    ended: Option<String>,
    /// Show the form even to a signed-in browser (an OpenID Connect client asked for a fresh sign-in).
    reauth: Option<String>,
    /// With a shared password: the form for accounts (username and password) instead.
    account: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    /// Absent on the shared-password form, which asks only for the password.
    #[serde(default)]
    username: String,
    password: String,
    remember: Option<String>,
    csrf_token: String,
    rd: Option<String>,
    reauth: Option<String>,
}

/// What the form shows besides its fields.
#[derive(Default)]
struct FormState<'a> {
    username: &'a str,
    remember: bool,
    rd: &'a str,
    error: Option<&'a str>,
    notice: Option<&'a str>,
    reauth: bool,
    /// The OpenID Connect client the sign-in is for, when `rd` resumes its authorization request.
    client: Option<crate::oidc::ReturningClient>,
    /// Only a password field: sign-in is by the shared password (`accounts::shared_password`).
    shared: bool,
}

fn login_page(state: &SharedState, headers: &HeaderMap, status: StatusCode, form: FormState<'_>) -> Response {
    let csrf = csrf_for_page(state, headers);
    let remember_days = state.config.session.remember_me.as_secs().div_ceil(86_400);
    let html = render(
        "login.html",
        &state.config.brand,
        minijinja::context! {
            csrf_token => csrf.token,
            rd => form.rd,
            username => form.username,
            remember => form.remember,
            remember_days => remember_days,
            signup_open => state.config.signup.mode != crate::config::SignupMode::Closed,
            error => form.error,
            notice => form.notice,
            reauth => form.reauth,
            client_name => form.client.as_ref().map(|c| c.name.clone()),
            shared => form.shared,
            account_form_href => format!("/_gatehouse/login?account=1&rd={}", percent_encoding::utf8_percent_encode(form.rd, percent_encoding::NON_ALPHANUMERIC)),
        },
    );
    let mut response = with_cookies(html_page(status, html), csrf.set_cookie);
    // The form's redirect chain ends at the client's redirect URI, which CSP `form-action` must allow.
    let targets: Vec<String> = form.client.map(|c| c.origin).into_iter().collect();
    super::oidc::allow_form_targets(&mut response, &targets);
    response
}

pub async fn show(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Result<Response, ErrorReply> {
    let rd = safe_return_path(query.rd.as_deref().unwrap_or("/"));
    let reauth = query.reauth.is_some();
    let current = current_session(&state, &headers).await?;
    if current.is_some() && !reauth {
        return Ok(Redirect::to(&rd).into_response());
    }
    let client = state.oidc.client_for_return_path(&rd).await;
    let username = current.as_ref().map(|c| c.user.username.as_str().to_owned()).unwrap_or_default();
    let notice = if query.verified.is_some() {
        Some("Your email address is confirmed. Sign in to continue.")
    } else if query.reset.is_some() {
        Some("Your password was changed and every session was ended. Sign in with the new password.")
    } else if let Some(why) = query.ended.as_deref() {
        Some(match why {
            "idle" => {
                "You were signed out because the page was not used for a while. Sign in again to go back to where you were."
            }
            "expired" => "Your sign-in has expired. Sign in again to go back to where you were.",
            _ => "Your session has ended. Sign in again to go back to where you were.",
        })
    } else {
        query.signed_out.is_some().then_some("You have been signed out.")
    };
    let shared = query.account.is_none() && shared_mode(&state).await;
    Ok(login_page(
        &state,
        &headers,
        StatusCode::OK,
        FormState { rd: &rd, notice, reauth, client, username: &username, shared, ..Default::default() },
    ))
}

/// Whether sign-in is by the shared password. Without the database the form for accounts is shown (and
/// signing in then fails closed like any other), so the page still says what is wrong.
async fn shared_mode(state: &SharedState) -> bool {
    shared_password::is_on(&state.store).await.unwrap_or_else(|err| {
        tracing::warn!(error = %err, "could not tell whether sign-in is by the shared password");
        false
    })
}

pub async fn submit(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    HtmlForm(form): HtmlForm<LoginForm>,
) -> Result<Response, ErrorReply> {
    let rd = safe_return_path(form.rd.as_deref().unwrap_or("/"));
    let remember = form.remember.as_deref().is_some_and(|v| !v.is_empty());
    // The shared-password form sends no username: the password is the shared account's.
    let shared_on = shared_mode(&state).await;
    let shared = form.username.trim().is_empty() && shared_on;
    let username = if shared { shared_password::USERNAME } else { form.username.trim() };
    let reauth = form.reauth.is_some();
    let client = state.oidc.client_for_return_path(&rd).await;
    let redisplay = |status, error| {
        let state_of_form = FormState {
            username,
            remember,
            rd: &rd,
            error: Some(error),
            notice: None,
            reauth,
            client: client.clone(),
            shared,
        };
        login_page(&state, &headers, status, state_of_form)
    };
    let incorrect = if shared { "Incorrect password." } else { "Incorrect username or password." };
    // Signing in again (prompt=login) replaces the browser's session: the old one ends with it.
    let previous = current_session(&state, &headers).await.ok().flatten();
    if verify_csrf(&state, &headers, &form.csrf_token).is_err() {
        // A stale tab is the usual cause: show the form again with a fresh token rather than a dead end.
        return Ok(redisplay(StatusCode::FORBIDDEN, "This sign-in form had expired. Please try again."));
    }
    if username.is_empty() || form.password.is_empty() || username.len() > 254 || form.password.chars().count() > 1024 {
        return Ok(redisplay(StatusCode::UNAUTHORIZED, incorrect));
    }
    let attempt = LoginAttempt {
        login: username.to_owned(),
        password: form.password,
        remember_me: remember,
        client: client_info(&state, peer, &headers),
        // Whichever form it came from: the shared account is counted per address only.
        shared: shared_on && username.eq_ignore_ascii_case(shared_password::USERNAME),
    };
    match state.login.sign_in(attempt).await {
        Ok(signed_in) => {
            let max_age = state.sessions.cookie_max_age(&signed_in.session);
            let cookie = state.cookies.build(state.cookies.session, signed_in.token.expose().to_owned(), max_age);
            tracing::info!(user = %signed_in.user.username, "signed in");
            if let Some(previous) = previous {
                state.sessions.replace(&previous, &signed_in.session).await?;
            }
            let cookie = HeaderValue::from_str(&cookie.to_string()).map_err(|_| ErrorReply::internal())?;
            Ok(with_cookies(Redirect::to(&rd), [cookie]))
        }
        Err(LoginError::InvalidCredentials) => Ok(redisplay(StatusCode::UNAUTHORIZED, incorrect)),
        Err(LoginError::Disabled) => {
            Ok(redisplay(StatusCode::FORBIDDEN, "This account is disabled. Ask an administrator to enable it."))
        }
        Err(LoginError::Throttled(wait)) => {
            let secs = ErrorReply::wait_secs(wait);
            let reply = ErrorReply::too_many_attempts(secs);
            let mut response = redisplay(StatusCode::TOO_MANY_REQUESTS, &reply.message);
            response.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
            Ok(response)
        }
        Err(LoginError::Pending(user)) => match state.accounts.challenge_for_pending(&user).await {
            Ok(challenge_id) => Ok(Redirect::to(&format!("/_gatehouse/verify?id={challenge_id}")).into_response()),
            Err(err) => {
                let problem = super::pages::form_problem(err)?;
                Ok(problem.finish(redisplay(problem.status, &problem.message)))
            }
        },
        Err(LoginError::Store(err)) => Err(err.into()),
        Err(LoginError::Password(err)) => {
            tracing::error!(error = %err, "password verification failed");
            Err(ErrorReply::internal())
        }
    }
}
