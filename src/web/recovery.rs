//! `/_gatehouse/forgot-password`, `/_gatehouse/reset-password` and `/_gatehouse/forgot-username`. The two
//! "forgot" forms always answer with the same page, whatever was typed.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::error::ErrorReply;
use super::extract::{client_info, verify_csrf};
use super::form::HtmlForm;
use super::pages::{form_page, form_problem};
use crate::app::SharedState;

#[derive(Deserialize)]
pub struct ForgotForm {
    csrf_token: String,
    #[serde(default)]
    login: String,
    #[serde(default)]
    email: String,
}

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

#[derive(Deserialize)]
pub struct ResetForm {
    csrf_token: String,
    token: String,
    password: String,
}

pub async fn show_forgot_password(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    form_page(&state, &headers, StatusCode::OK, "forgot_password.html", minijinja::context! {})
}

pub async fn submit_forgot_password(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    HtmlForm(form): HtmlForm<ForgotForm>,
) -> Result<Response, ErrorReply> {
    verify_csrf(&state, &headers, &form.csrf_token)?;
    let client = client_info(&state, peer, &headers);
    match state.accounts.forgot_password(&form.login, &client).await {
        Ok(()) => Ok(sent_page(&state, &headers, "password")),
        Err(err) => {
            let problem = form_problem(err)?;
            let context = minijinja::context! { login => form.login.trim(), error => &problem.message };
            Ok(problem.finish(form_page(&state, &headers, problem.status, "forgot_password.html", context)))
        }
    }
}

pub async fn show_forgot_username(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    form_page(&state, &headers, StatusCode::OK, "forgot_username.html", minijinja::context! {})
}

pub async fn submit_forgot_username(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    HtmlForm(form): HtmlForm<ForgotForm>,
) -> Result<Response, ErrorReply> {
    verify_csrf(&state, &headers, &form.csrf_token)?;
    let client = client_info(&state, peer, &headers);
    match state.accounts.forgot_username(&form.email, &client).await {
        Ok(()) => Ok(sent_page(&state, &headers, "username")),
        Err(err) => {
            let problem = form_problem(err)?;
            let context = minijinja::context! { email => form.email.trim(), error => &problem.message };
            Ok(problem.finish(form_page(&state, &headers, problem.status, "forgot_username.html", context)))
        }
    }
}

/// The one answer to both "forgot" forms.
fn sent_page(state: &SharedState, headers: &HeaderMap, what: &str) -> Response {
    form_page(state, headers, StatusCode::OK, "sent.html", minijinja::context! { what => what })
}

fn invalid_link() -> ErrorReply {
    ErrorReply::forbidden("This reset link is invalid, used or expired. Ask for a new one on the sign-in page.")
}

pub async fn show_reset(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Result<Response, ErrorReply> {
    let token = query.token.unwrap_or_default();
    let user = state.accounts.reset_link_user(&token).await.map_err(|_| ErrorReply::database_unavailable())?;
    let user = user.ok_or_else(invalid_link)?;
    let context = minijinja::context! { token => token, username => user.username.as_str() };
    Ok(form_page(&state, &headers, StatusCode::OK, "reset_password.html", context))
}

pub async fn submit_reset(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    HtmlForm(form): HtmlForm<ResetForm>,
) -> Result<Response, ErrorReply> {
    verify_csrf(&state, &headers, &form.csrf_token)?;
    let client = client_info(&state, peer, &headers);
    match state.accounts.reset_password(&form.token, &form.password, &client).await {
        Ok(user) => {
            tracing::info!(user = %user.username, "password reset through an emailed link");
            Ok(Redirect::to("/_gatehouse/login?reset=1").into_response())
        }
        Err(err) => {
            let problem = form_problem(err)?;
            if problem.status == StatusCode::FORBIDDEN {
                return Err(invalid_link());
            }
            let username = state.accounts.reset_link_user(&form.token).await.ok().flatten().map(|u| u.username);
            let context = minijinja::context! {
                token => &form.token, username => username.as_ref().map(|u| u.as_str()), error => &problem.message,
            };
            Ok(problem.finish(form_page(&state, &headers, problem.status, "reset_password.html", context)))
        }
    }
}
