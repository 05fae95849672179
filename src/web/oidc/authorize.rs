//! `GET|POST /_gatehouse/oidc/authorize` and `POST /_gatehouse/oidc/consent`. A request that cannot be
//! trusted to redirect (unknown client, unregistered redirect URI) gets an error page; other problems go
//! back to the client. Signed-out browsers go through the sign-in page and come back here; signed-in ones
//! go straight back to the client (single sign-on), after the consent page for apps that are not first-party.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, StatusCode};

use super::{ProtocolParams, allow_form_targets};
use crate::app::SharedState;
use crate::oidc::Step;
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::oidc::request::{AuthorizationRequest, Params, Rejection};
use crate::web::error::ErrorReply;
use crate::web::extract::{client_info, csrf_for_page, current_session, html_page, verify_csrf, with_cookies};
use crate::web::templates::render;

/// The sign-in page's return path must fit `safe_return_path`'s limit, or the browser would land on `/`.
const MAX_RETURN_PATH: usize = 2000;

pub async fn authorize(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ProtocolParams { params, .. }: ProtocolParams,
) -> Result<Response, ErrorReply> {
    respond(&state, peer, &headers, params).await
}

async fn respond(
    state: &SharedState,
    peer: SocketAddr,
    headers: &HeaderMap,
    params: Result<Params, &'static str>,
) -> Result<Response, ErrorReply> {
    let request = checked_request(state, params).await?;
    let request = match request {
        Ok(request) => request,
        Err(redirect) => return Ok(redirect),
    };
    let session = current_session(state, headers).await?;
    let step = state.oidc.next_step(&request, session.as_deref()).await?;
    match (step, session.as_deref()) {
        (Step::SignIn { login_after }, _) => {
            let rd = request.resume_path(login_after);
            if rd.len() > MAX_RETURN_PATH {
                return Err(ErrorReply::bad_request("This sign-in request is too long (state or nonce)."));
            }
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query.append_pair("rd", &rd);
            if login_after.is_some() {
                query.append_pair("reauth", "1");
            }
            Ok(Redirect::to(&format!("/_gatehouse/login?{}", query.finish())).into_response())
        }
        (Step::Refuse(error), _) => Ok(back_with_error(state, &request, &error)),
        (Step::NotAdmitted, Some(signed_in)) => {
            let username = signed_in.user.username.as_str();
            tracing::info!(client = %request.client.client_id, user = %username, "authorization refused: the user lacks the client's roles");
            // "Sign in as someone else" keeps the request: the sign-in form, then back here.
            let again = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("rd", &request.resume_path(None))
                .append_pair("reauth", "1")
                .finish();
            Err(ErrorReply::role_required(&request.client.allowed_roles, username)
                .with_message(not_admitted_message(&request, username))
                .with_action(format!("/_gatehouse/login?{again}"), "Sign in as someone else"))
        }
        (Step::Consent, Some(signed_in)) => {
            Ok(consent_page(state, headers, &request, signed_in.user.username.as_str()))
        }
        (Step::Issue, Some(signed_in)) => {
            let to = state.oidc.issue_code(&request, signed_in, &client_info(state, peer, headers)).await?;
            Ok(Redirect::to(&to).into_response())
        }
        // `next_step` answers a browser without a session only with SignIn or Refuse.
        (Step::NotAdmitted | Step::Consent | Step::Issue, None) => Err(ErrorReply::internal()),
    }
}

/// A checked request, or the response that ends it: an error page (`Err`) or a redirect back to the client
/// with an error (`Ok(Err(..))`).
async fn checked_request(
    state: &SharedState,
    params: Result<Params, &'static str>,
) -> Result<Result<AuthorizationRequest, Response>, ErrorReply> {
    let params = params.map_err(|why| ErrorReply::bad_request(format!("This sign-in request is malformed: {why}.")))?;
    match state.oidc.authorization_request(&params).await {
        Ok(request) => Ok(Ok(request)),
        Err(Rejection::Page(message)) => {
            // What the app sent, so whoever set it up can compare it with what is registered; only values of
            // the right shape are repeated (a crafted link cannot put its own text on Gatehouse's page).
            let shown = |value: Option<&str>, valid: fn(&str) -> bool| match value {
                None => "(none)".to_owned(),
                Some(value) if valid(value) => value.to_owned(),
                Some(_) => "(not valid)".to_owned(),
            };
            let client_id = shown(params.get("client_id"), |v| crate::domain::oidc::parse_client_id(v).is_ok());
            let redirect_uri = shown(params.get("redirect_uri"), |v| {
                v.len() <= 500 && crate::domain::oidc::parse_redirect_uri(v).is_ok()
            });
            tracing::info!(client = ?client_id, redirect_uri = ?redirect_uri, reason = message, "authorization request refused");
            Err(ErrorReply::bad_request(format!("{message} (client_id: {client_id}, redirect_uri: {redirect_uri})")))
        }
        Err(Rejection::Redirect { redirect_uri, state: client_state, error }) => {
            tracing::info!(
                client = ?clip(params.get("client_id").unwrap_or("")),
                error = error.code.as_str(),
                reason = error.description,
                "authorization request refused; told the client"
            );
            let to = state.oidc.error_redirect(&redirect_uri, client_state.as_deref(), &error);
            Ok(Err(Redirect::to(&to).into_response()))
        }
    }
}

/// A value from a request, cut short for pages and logs.
fn clip(value: &str) -> String {
    if value.chars().count() > 200 {
        format!("{}…", value.chars().take(200).collect::<String>())
    } else {
        value.to_owned()
    }
}

fn back_with_error(state: &SharedState, request: &AuthorizationRequest, error: &OAuthError) -> Response {
    Redirect::to(&state.oidc.error_redirect(&request.redirect_uri, request.state.as_deref(), error)).into_response()
}

fn not_admitted_message(request: &AuthorizationRequest, username: &str) -> String {
    let roles: Vec<String> = request.client.allowed_roles.iter().map(|r| format!("'{r}'")).collect();
    let needed = if roles.len() == 1 {
        format!("the role {}", roles[0])
    } else {
        format!("one of the roles {}", roles.join(", "))
    };
    format!(
        "You are signed in as {username}, but {} is open only to people with {needed}. Ask an administrator for access, or sign in as someone else.",
        request.client.name
    )
}

/// What each scope releases, in words.
fn releases(request: &AuthorizationRequest) -> Vec<&'static str> {
    request
        .scopes
        .iter()
        .map(|scope| match scope {
            "openid" => "Your account identifier",
            "profile" => "Your name and username",
            "email" => "Your email address",
            "roles" => "Your roles",
            _ => "Other account details",
        })
        .collect()
}

fn consent_page(state: &SharedState, headers: &HeaderMap, request: &AuthorizationRequest, username: &str) -> Response {
    let csrf = csrf_for_page(state, headers);
    let origin = crate::oidc::origin_of(&request.redirect_uri).unwrap_or_default();
    let params: Vec<(&str, String)> = request.to_params(None);
    let html = render(
        "oidc_consent.html",
        &state.config.brand,
        minijinja::context! {
            csrf_token => csrf.token,
            client_name => request.client.name,
            username => username,
            releases => releases(request),
            redirect_origin => origin,
            params => params,
        },
    );
    let mut response = with_cookies(html_page(StatusCode::OK, html), csrf.set_cookie);
    allow_form_targets(&mut response, &[origin]);
    response
}

/// The consent form's answer. The request it carries is checked again from scratch: the form is only a
/// way to carry it, not something to trust.
pub async fn consent(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ProtocolParams { params, .. }: ProtocolParams,
) -> Result<Response, ErrorReply> {
    let (csrf_token, decision) = match &params {
        Ok(p) => (p.get("csrf_token").unwrap_or("").to_owned(), p.get("decision").unwrap_or("").to_owned()),
        Err(_) => (String::new(), String::new()),
    };
    verify_csrf(&state, &headers, &csrf_token)?;
    let request = match checked_request(&state, params).await? {
        Ok(request) => request,
        Err(redirect) => return Ok(redirect),
    };
    let Some(signed_in) = current_session(&state, &headers).await? else {
        // Signed out in another tab meanwhile: sign in again, then come back to the same request.
        let query =
            url::form_urlencoded::Serializer::new(String::new()).append_pair("rd", &request.resume_path(None)).finish();
        return Ok(Redirect::to(&format!("/_gatehouse/login?{query}")).into_response());
    };
    if !request.client.admits(&signed_in.user) {
        return Err(ErrorReply::forbidden(not_admitted_message(&request, signed_in.user.username.as_str())));
    }
    let client = client_info(&state, peer, &headers);
    match decision.as_str() {
        "allow" => {
            state.oidc.remember_consent(&request, &signed_in.user, &client).await?;
            let to = state.oidc.issue_code(&request, &signed_in, &client).await?;
            Ok(Redirect::to(&to).into_response())
        }
        "deny" => Ok(back_with_error(
            &state,
            &request,
            &OAuthError::new(ErrorCode::AccessDenied, "the user did not allow the request"),
        )),
        _ => Err(ErrorReply::bad_request("Choose Allow or Deny.")),
    }
}
