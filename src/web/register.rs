//! `/_gatehouse/register` (the registration form, also reached from invitation links) and
//! `/_gatehouse/verify` (entering the emailed code, or confirming through the emailed link; and "send a new
//! code").

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::error::ErrorReply;
use super::extract::{client_info, current_session, verify_csrf};
use super::form::HtmlForm;
use super::pages::{form_page, form_problem, signed_in};
use crate::accounts::{Registration, RegistrationOutcome, Verified};
use crate::app::SharedState;
use crate::config::SignupMode;
use crate::domain::ChallengePurpose;

#[derive(Deserialize)]
pub struct RegisterQuery {
    invite: Option<String>,
}

#[derive(Deserialize)]
pub struct RegisterForm {
    csrf_token: String,
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    password: String,
    #[serde(default)]
    invite: String,
}

fn closed() -> ErrorReply {
    ErrorReply::forbidden("Accounts are created by an administrator here. Ask one for an account or an invitation.")
}

pub async fn show(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Query(query): Query<RegisterQuery>,
) -> Result<Response, ErrorReply> {
    if state.config.signup.mode == SignupMode::Closed {
        return Err(closed());
    }
    let token = query.invite.unwrap_or_default();
    let invite = match token.is_empty() {
        true => None,
        false => {
            Some(state.accounts.invitation(&token).await.map_err(|_| ErrorReply::database_unavailable())?.ok_or_else(
                || ErrorReply::forbidden("This invitation is invalid, used or expired. Ask for a new one."),
            )?)
        }
    };
    let email = invite.as_ref().map(|i| i.email.to_string()).unwrap_or_default();
    Ok(register_page(&state, &headers, StatusCode::OK, &token, Values { email: &email, ..Values::default() }, None))
}

#[derive(Default)]
struct Values<'a> {
    username: &'a str,
    email: &'a str,
    name: &'a str,
}

fn register_page(
    state: &SharedState,
    headers: &HeaderMap,
    status: StatusCode,
    invite: &str,
    values: Values<'_>,
    error: Option<&str>,
) -> Response {
    let signup = &state.config.signup;
    let context = minijinja::context! {
        invite => invite,
        invite_only => signup.mode == SignupMode::Invite,
        domains => &signup.allowed_email_domains,
        username => values.username,
        email => values.email,
        name => values.name,
        error => error,
    };
    form_page(state, headers, status, "register.html", context)
}

pub async fn submit(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    HtmlForm(form): HtmlForm<RegisterForm>,
) -> Result<Response, ErrorReply> {
    verify_csrf(&state, &headers, &form.csrf_token)?;
    if state.config.signup.mode == SignupMode::Closed {
        return Err(closed());
    }
    let client = client_info(&state, peer, &headers);
    let (username, email, name) =
        (form.username.trim().to_owned(), form.email.trim().to_owned(), form.name.trim().to_owned());
    let invite = form.invite.clone();
    let registration = Registration {
        username: form.username,
        email: form.email,
        name: form.name,
        password: form.password,
        invite: Some(form.invite),
    };
    match state.accounts.register(registration, &client).await {
        Ok(RegistrationOutcome::VerifyEmail { challenge_id, .. }) => {
            Ok(Redirect::to(&format!("/_gatehouse/verify?id={challenge_id}")).into_response())
        }
        Ok(RegistrationOutcome::SignedIn { token, session }) => signed_in(&state, &token, &session, "/"),
        Err(err) => {
            let problem = form_problem(err)?;
            let values = Values { username: &username, email: &email, name: &name };
            let page = register_page(&state, &headers, problem.status, &invite, values, Some(&problem.message));
            Ok(problem.finish(page))
        }
    }
}

#[derive(Deserialize)]
pub struct VerifyQuery {
    id: Option<String>,
    token: Option<String>,
    resent: Option<String>,
}

#[derive(Deserialize)]
pub struct VerifyForm {
    csrf_token: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    token: String,
}

#[derive(Deserialize)]
pub struct ResendForm {
    csrf_token: String,
    id: String,
}

struct VerifyView<'a> {
    id: &'a str,
    token: &'a str,
    notice: Option<&'a str>,
    error: Option<&'a str>,
}

async fn verify_page(
    state: &SharedState,
    headers: &HeaderMap,
    status: StatusCode,
    view: VerifyView<'_>,
) -> Result<Response, ErrorReply> {
    // The address is not shown: for a decoy challenge it would have to be, too, and the page must not tell
    // the two apart.
    let context = minijinja::context! {
        id => view.id,
        token => view.token,
        notice => view.notice,
        error => view.error,
    };
    Ok(form_page(state, headers, status, "verify.html", context))
}

pub async fn show_verify(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Query(query): Query<VerifyQuery>,
) -> Result<Response, ErrorReply> {
    let id = query.id.unwrap_or_default();
    let token = query.token.unwrap_or_default();
    if id.is_empty() && token.is_empty() {
        return Err(ErrorReply::bad_request(
            "This page needs the link from your email, or the page that sent the code.",
        ));
    }
    // A link is confirmed with a button (a POST), not on load: mail scanners open links too.
    let notice = query.resent.is_some().then_some("We sent a new code. Only the newest code works.");
    verify_page(&state, &headers, StatusCode::OK, VerifyView { id: &id, token: &token, notice, error: None }).await
}

pub async fn submit_verify(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    HtmlForm(form): HtmlForm<VerifyForm>,
) -> Result<Response, ErrorReply> {
    verify_csrf(&state, &headers, &form.csrf_token)?;
    let client = client_info(&state, peer, &headers);
    let account = current_session(&state, &headers).await?.map(|auth| auth.user.id.clone());
    let result = if form.token.is_empty() {
        state.accounts.verify_code(&form.id, &form.code, &client, account.as_ref()).await
    } else {
        state.accounts.verify_link(&form.token, &client, account.as_ref()).await
    };
    match result {
        Ok(Verified::Registered { user, token, session }) => {
            tracing::info!(user = %user.username, "email verified; registration complete");
            signed_in(&state, &token, &session, "/")
        }
        Ok(Verified::RegistrationConfirmed { user }) => {
            tracing::info!(user = %user.username, "email verified through the link; registration complete");
            Ok(Redirect::to("/_gatehouse/login?verified=1").into_response())
        }
        Ok(Verified::EmailChanged { .. }) => Ok(Redirect::to("/_gatehouse/account?done=email").into_response()),
        // Confirmed meanwhile through the link (maybe on another device): say so and go on.
        Ok(Verified::AlreadyConfirmed { purpose: ChallengePurpose::EmailChange }) => {
            Ok(Redirect::to("/_gatehouse/account?done=email").into_response())
        }
        Ok(Verified::AlreadyConfirmed { purpose: ChallengePurpose::Registration }) => {
            let to = if account.is_some() { "/" } else { "/_gatehouse/login?verified=1" };
            Ok(Redirect::to(to).into_response())
        }
        Err(err) => {
            let problem = form_problem(err)?;
            let view = VerifyView { id: &form.id, token: &form.token, notice: None, error: Some(&problem.message) };
            Ok(problem.finish(verify_page(&state, &headers, problem.status, view).await?))
        }
    }
}

pub async fn resend(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    HtmlForm(form): HtmlForm<ResendForm>,
) -> Result<Response, ErrorReply> {
    verify_csrf(&state, &headers, &form.csrf_token)?;
    let client = client_info(&state, peer, &headers);
    match state.accounts.resend(&form.id, &client).await {
        Ok(id) => Ok(Redirect::to(&format!("/_gatehouse/verify?id={id}&resent=1")).into_response()),
        Err(err) => {
            let problem = form_problem(err)?;
            let view = VerifyView { id: &form.id, token: "", notice: None, error: Some(&problem.message) };
            Ok(problem.finish(verify_page(&state, &headers, problem.status, view).await?))
        }
    }
}
