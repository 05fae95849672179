//! First run: `/_gatehouse/setup?token=...` creates the first administrator. The link is printed once at
//! start while the database has no users; its token is stored hashed, lives one hour and is used up by the
//! first successful submission. Once any user exists the page is gone for good.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::response::Response;
use axum::response::{IntoResponse, Redirect};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::Deserialize;
use time::Duration;

use super::error::ErrorReply;
use super::extract::{client_info, csrf_for_page, html_page, verify_csrf, with_cookies};
use super::form::HtmlForm;
use super::templates::render;
use crate::app::{AppState, SharedState};
use crate::domain::password_policy::check_new_password;
use crate::domain::user::parse_display_name;
use crate::domain::{AuditEvent, AuditKind, Email, InvalidInput, NewUser, TokenHash, Username};
use crate::store::{OneTimeToken, SharedStore, StoreError};

pub const SETUP_PURPOSE: &str = "setup";
const SETUP_LIFETIME: Duration = Duration::hours(1);

/// Creates a setup token if the database has no users; returns the link to print.
pub async fn issue_setup_link(
    store: &SharedStore,
    now: time::OffsetDateTime,
    public_url: &url::Url,
) -> Result<Option<String>, StoreError> {
    if store.count_users().await? > 0 {
        return Ok(None);
    }
    let token = crate::random::url_token(32);
    store
        .create_one_time_token(&OneTimeToken {
            token_hash: TokenHash::of(&token),
            purpose: SETUP_PURPOSE.to_owned(),
            subject: None,
            created_at: now,
            expires_at: now + SETUP_LIFETIME,
        })
        .await?;
    let mut link = public_url.join("/_gatehouse/setup").expect("constant path joins");
    link.query_pairs_mut().append_pair("token", &token);
    Ok(Some(link.to_string()))
}

#[derive(Deserialize)]
pub struct SetupQuery {
    token: Option<String>,
}

#[derive(Deserialize)]
pub struct SetupForm {
    csrf_token: String,
    token: String,
    username: String,
    #[serde(default)]
    name: String,
    email: String,
    password: String,
    password_confirm: String,
}

fn invalid_link() -> ErrorReply {
    ErrorReply::forbidden(
        "This setup link is invalid, used or expired. Restart Gatehouse to print a new one (it only does so while there are no users).",
    )
}

async fn ensure_setup_open(state: &AppState, token: &str) -> Result<(), ErrorReply> {
    if state.store.count_users().await? > 0 {
        return Err(ErrorReply::forbidden(
            "Gatehouse is already set up. Sign in, or ask an administrator for an account.",
        ));
    }
    if token.is_empty()
        || !state.store.one_time_token_is_valid(SETUP_PURPOSE, &TokenHash::of(token), state.clock.now()).await?
    {
        return Err(invalid_link());
    }
    Ok(())
}

struct Values<'a> {
    username: &'a str,
    name: &'a str,
    email: &'a str,
}

fn setup_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    token: &str,
    values: Values<'_>,
    error: Option<&str>,
) -> Response {
    let csrf = csrf_for_page(state, headers);
    let html = render(
        "setup.html",
        minijinja::context! {
            csrf_token => csrf.token,
            token => token,
            username => values.username,
            name => values.name,
            email => values.email,
            min_length => state.config.password.min_length,
            password_policy => crate::domain::password_policy::describe_policy(state.config.password.min_length),
            error => error,
        },
    );
    with_cookies(html_page(status, html), csrf.set_cookie)
}

pub async fn show(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Query(query): Query<SetupQuery>,
) -> Result<Response, ErrorReply> {
    let token = query.token.unwrap_or_default();
    ensure_setup_open(&state, &token).await?;
    Ok(setup_page(&state, &headers, StatusCode::OK, &token, Values { username: "", name: "", email: "" }, None))
}

pub async fn submit(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    HtmlForm(form): HtmlForm<SetupForm>,
) -> Result<Response, ErrorReply> {
    verify_csrf(&state, &headers, &form.csrf_token)?;
    ensure_setup_open(&state, &form.token).await?;
    let values = Values { username: form.username.trim(), name: form.name.trim(), email: form.email.trim() };
    let new_user = match validate(&state, &form) {
        Ok(user) => user,
        Err(problem) => {
            return Ok(setup_page(
                &state,
                &headers,
                StatusCode::UNPROCESSABLE_ENTITY,
                &form.token,
                values,
                Some(&problem.0),
            ));
        }
    };
    let hash = state.passwords.hash(form.password.clone()).await.map_err(|_| ErrorReply::internal())?;
    let now = state.clock.now();
    // Use the token up first: of two racing submissions only one gets past this line.
    if state.store.consume_one_time_token(SETUP_PURPOSE, &TokenHash::of(&form.token), now).await?.is_none() {
        return Err(invalid_link());
    }
    let user = state.store.create_user(NewUser { password_hash: Some(hash), ..new_user }, now).await?;
    let client = client_info(&state, peer, &headers);
    let event = AuditEvent::new(now, AuditKind::SetupCompleted)
        .actor(user.username.as_str())
        .subject(user.username.as_str())
        .client(client.ip.clone(), client.user_agent.clone());
    state.store.append_audit(&event).await?;
    tracing::info!(user = %user.username, "first administrator created through the setup link");

    let (token, session) = state.sessions.start(&user, false, &client).await?;
    let cookie =
        state.cookies.build(state.cookies.session, token.expose().to_owned(), state.sessions.cookie_max_age(&session));
    let cookie = HeaderValue::from_str(&cookie.to_string()).map_err(|_| ErrorReply::internal())?;
    Ok(with_cookies(Redirect::to("/").into_response(), [cookie]))
}

fn validate(state: &AppState, form: &SetupForm) -> Result<NewUser, InvalidInput> {
    let username = Username::parse(&form.username)?;
    let email = Email::parse(&form.email)?;
    let display_name = parse_display_name(&form.name)?;
    if form.password != form.password_confirm {
        return Err(InvalidInput::new("The two passwords do not match."));
    }
    check_new_password(&form.password, state.config.password.min_length, username.as_str(), Some(email.as_str()))?;
    Ok(NewUser::by_admin(username, Some(email), display_name, vec![state.config.admin.role.clone()]))
}
