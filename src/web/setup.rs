//! Setup: `/_gatehouse/setup?token=...` gives an installation its administrator. While no enabled account
//! holds the administrator role (`[admin] role`), a link is printed at every start: on an empty database it
//! creates the first administrator; where accounts exist (added with `users add` or imported without the
//! role, or the role renamed away from everyone) it can also make an existing account the administrator,
//! for whoever signs in with that account's password. The token is stored hashed, lives one hour and is used
//! up by the first successful submission. Once an enabled administrator exists the page is gone.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::Deserialize;
use time::Duration;

use super::error::ErrorReply;
use super::extract::{client_info, csrf_for_page, current_session, html_page, verify_csrf, with_cookies};
use super::form::HtmlForm;
use super::templates::render;
use crate::admin::Actor;
use crate::app::{AppState, SharedState};
use crate::auth::{ClientInfo, LoginAttempt, LoginError};
use crate::domain::password_policy::check_new_password;
use crate::domain::user::parse_display_name;
use crate::domain::{AuditEvent, AuditKind, Email, InvalidInput, NewUser, Role, TokenHash, User, Username};
use crate::store::{OneTimeToken, SharedStore, StoreError};

pub const SETUP_PURPOSE: &str = "setup";
const SETUP_LIFETIME: Duration = Duration::hours(1);

/// A setup link to print.
pub struct SetupLink {
    pub url: String,
    /// Accounts exist, none of them an enabled administrator: the link can promote one of them.
    pub accounts_exist: bool,
}

/// Whether an enabled account holds `admin_role`.
pub async fn has_administrator(store: &SharedStore, admin_role: &Role) -> Result<bool, StoreError> {
    Ok(store.count_enabled_with_role(admin_role).await? > 0)
}

/// Creates a setup token while no enabled account holds `admin_role`; returns the link to print.
pub async fn issue_setup_link(
    store: &SharedStore,
    now: time::OffsetDateTime,
    public_url: &url::Url,
    admin_role: &Role,
) -> Result<Option<SetupLink>, StoreError> {
    if has_administrator(store, admin_role).await? {
        return Ok(None);
    }
    let accounts_exist = store.count_users().await? > 0;
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
    Ok(Some(SetupLink { url: link.to_string(), accounts_exist }))
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

/// Making an existing account the administrator: its own username (or email) and password.
#[derive(Deserialize)]
pub struct PromoteForm {
    csrf_token: String,
    token: String,
    username: String,
    password: String,
}

fn invalid_link() -> ErrorReply {
    ErrorReply::forbidden(
        "This setup link is invalid, used or expired. Restart Gatehouse to print a new one (it does so while there is no administrator).",
    )
}

/// Whether the link still works; if so, whether accounts exist (the page then offers to promote one).
async fn ensure_setup_open(state: &AppState, token: &str) -> Result<bool, ErrorReply> {
    // The token first: without one, nobody learns whether this installation has an administrator.
    if token.is_empty()
        || !state.store.one_time_token_is_valid(SETUP_PURPOSE, &TokenHash::of(token), state.clock.now()).await?
    {
        return Err(invalid_link());
    }
    if has_administrator(&state.store, state.admin.admin_role()).await? {
        return Err(ErrorReply::forbidden(
            "Gatehouse already has an administrator. Sign in, or ask an administrator for an account.",
        ));
    }
    Ok(state.store.count_users().await? > 0)
}

/// What the setup page shows: the values typed so far and the error of the form that was sent.
#[derive(Default)]
struct Page<'a> {
    accounts_exist: bool,
    username: &'a str,
    name: &'a str,
    email: &'a str,
    /// The existing account typed in the promotion form.
    login: &'a str,
    error: Option<&'a str>,
    promote_error: Option<&'a str>,
}

fn setup_page(state: &AppState, headers: &HeaderMap, status: StatusCode, token: &str, page: Page<'_>) -> Response {
    let csrf = csrf_for_page(state, headers);
    let html = render(
        "setup.html",
        &state.config.brand,
        minijinja::context! {
            csrf_token => csrf.token,
            token => token,
            accounts_exist => page.accounts_exist,
            admin_role => state.admin.admin_role().as_str(),
            username => page.username,
            name => page.name,
            email => page.email,
            login => page.login,
            min_length => state.config.password.min_length,
            password_policy => crate::domain::password_policy::describe_policy(state.config.password.min_length),
            error => page.error,
            promote_error => page.promote_error,
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
    let accounts_exist = ensure_setup_open(&state, &token).await?;
    Ok(setup_page(&state, &headers, StatusCode::OK, &token, Page { accounts_exist, ..Page::default() }))
}

/// Creates a new administrator account.
pub async fn submit(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    HtmlForm(form): HtmlForm<SetupForm>,
) -> Result<Response, ErrorReply> {
    verify_csrf(&state, &headers, &form.csrf_token)?;
    let accounts_exist = ensure_setup_open(&state, &form.token).await?;
    let validated = match validate(&state, &form) {
        Ok(user) => taken(&state, &user).await?.map_or(Ok(user), Err),
        Err(problem) => Err(problem),
    };
    let new_user = match validated {
        Ok(user) => user,
        Err(problem) => {
            let page = Page {
                accounts_exist,
                username: form.username.trim(),
                name: form.name.trim(),
                email: form.email.trim(),
                error: Some(&problem.0),
                ..Page::default()
            };
            return Ok(setup_page(&state, &headers, StatusCode::UNPROCESSABLE_ENTITY, &form.token, page));
        }
    };
    let hash = state.passwords.hash(form.password.clone()).await.map_err(|_| ErrorReply::internal())?;
    let now = state.clock.now();
    // Use the token up first: of two racing submissions only one gets past this line.
    if state.store.consume_one_time_token(SETUP_PURPOSE, &TokenHash::of(&form.token), now).await?.is_none() {
        return Err(invalid_link());
    }
    let user = match state.store.create_user(NewUser { password_hash: Some(hash), ..new_user }, now).await {
        Ok(user) => user,
        // Taken between the check above and now: the link is used up, so say how to get another.
        Err(StoreError::Conflict(field)) => {
            return Err(ErrorReply::forbidden(format!(
                "That {field} was taken a moment ago. Restart Gatehouse for a new setup link and choose another."
            ))
            .with_status(StatusCode::CONFLICT));
        }
        Err(err) => return Err(err.into()),
    };
    let client = client_info(&state, peer, &headers);
    audit_setup(&state, &user, &client, "created").await?;
    tracing::info!(user = %user.username, "administrator created through the setup link");

    let (token, session) = state.sessions.start(&user, false, &client).await?;
    super::pages::signed_in(&state, &token, &session, "/")
}

/// Makes an existing account the administrator, for whoever signs in with it here. The sign-in is the
/// ordinary one (throttled, audited, the same answers for unknown accounts and wrong passwords).
pub async fn promote(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    HtmlForm(form): HtmlForm<PromoteForm>,
) -> Result<Response, ErrorReply> {
    verify_csrf(&state, &headers, &form.csrf_token)?;
    ensure_setup_open(&state, &form.token).await?;
    let login = form.username.trim();
    let refuse = |status: StatusCode, message: &str| {
        let page = Page { accounts_exist: true, login, promote_error: Some(message), ..Page::default() };
        setup_page(&state, &headers, status, &form.token, page)
    };
    if login.is_empty() || form.password.is_empty() || login.len() > 254 || form.password.chars().count() > 1024 {
        return Ok(refuse(StatusCode::UNAUTHORIZED, "Incorrect username or password."));
    }
    let client = client_info(&state, peer, &headers);
    let attempt = LoginAttempt {
        login: login.to_owned(),
        password: form.password.clone(),
        remember_me: false,
        client: client.clone(),
        shared: false,
    };
    let signed_in = match state.login.sign_in(attempt).await {
        Ok(signed_in) => signed_in,
        Err(LoginError::InvalidCredentials) => {
            return Ok(refuse(StatusCode::UNAUTHORIZED, "Incorrect username or password."));
        }
        Err(LoginError::Disabled) => {
            return Ok(refuse(
                StatusCode::FORBIDDEN,
                "This account is disabled, so it cannot be the administrator. Create a new administrator instead.",
            ));
        }
        Err(LoginError::Pending(_)) => {
            return Ok(refuse(
                StatusCode::FORBIDDEN,
                "This account has not confirmed its email address yet. Create a new administrator instead.",
            ));
        }
        Err(LoginError::Throttled(wait)) => {
            let secs = ErrorReply::wait_secs(wait);
            let mut response = refuse(StatusCode::TOO_MANY_REQUESTS, &ErrorReply::too_many_attempts(secs).message);
            response.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
            return Ok(response);
        }
        Err(LoginError::Store(err)) => return Err(err.into()),
        Err(LoginError::Password(err)) => {
            tracing::error!(error = %err, "password verification failed");
            return Err(ErrorReply::internal());
        }
    };
    // The sign-in was only a means to the promotion: if the promotion fails, the session goes too.
    if let Err(reply) = make_administrator(&state, &form.token, &signed_in.user, &client).await {
        if let Err(err) = state.sessions.end(&signed_in.session.id).await {
            tracing::error!(error = %err, "could not end the session of a failed promotion");
        }
        return Err(reply);
    }
    // As a sign-in does: a session this browser had before is replaced.
    if let Some(previous) = current_session(&state, &headers).await.ok().flatten() {
        state.sessions.replace(&previous, &signed_in.session).await?;
    }
    super::pages::signed_in(&state, &signed_in.token, &signed_in.session, "/")
}

/// Uses the link up, then gives `user` the administrator role, audited.
async fn make_administrator(state: &AppState, token: &str, user: &User, client: &ClientInfo) -> Result<(), ErrorReply> {
    let now = state.clock.now();
    if state.store.consume_one_time_token(SETUP_PURPOSE, &TokenHash::of(token), now).await?.is_none() {
        // Another submission used the link first.
        return Err(invalid_link());
    }
    let mut roles = user.roles.clone();
    roles.push(state.admin.admin_role().clone());
    let actor = Actor::user(user, client.clone());
    if let Err(err) = state.admin.set_roles(&actor, user, roles).await {
        tracing::error!(error = %err, "could not make an account the administrator");
        return Err(ErrorReply::internal());
    }
    audit_setup(state, user, client, "promoted").await?;
    tracing::info!(user = %user.username, "an existing account was made the administrator through the setup link");
    Ok(())
}

/// `setup_completed`, by the new administrator themself: `created` or `promoted`.
async fn audit_setup(state: &AppState, user: &User, client: &ClientInfo, how: &str) -> Result<(), ErrorReply> {
    let event = AuditEvent::new(state.clock.now(), AuditKind::SetupCompleted)
        .actor(user.username.as_str())
        .subject(user.username.as_str())
        .detail(how)
        .client(client.ip.clone(), client.user_agent.clone());
    state.store.append_audit(&event).await?;
    Ok(())
}

/// Why a new administrator's username or email cannot be used: another account has it.
async fn taken(state: &AppState, user: &NewUser) -> Result<Option<InvalidInput>, ErrorReply> {
    if state.store.user_by_login(user.username.as_str()).await?.is_some() {
        return Ok(Some(InvalidInput::new("That username is already taken.")));
    }
    if let Some(email) = &user.email
        && state.store.user_by_email(email).await?.is_some()
    {
        return Ok(Some(InvalidInput::new("That email address is already used by another account.")));
    }
    Ok(None)
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
