//! `/_gatehouse/admin/users`: the user list (search, filters by role and status, 50 per page, in username
//! order, counted and paged in the database so it stays fast at 100,000 users) and the form that creates a
//! user.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::{admin_form, admin_page, admin_problem, format_optional_time, require_admin};
use crate::admin::CreateUser;
use crate::app::SharedState;
use crate::auth::Authenticated;
use crate::domain::{Role, User};
use crate::store::{UserQuery, UserStatus};
use crate::web::error::ErrorReply;
use crate::web::form::HtmlForm;

const PAGE_SIZE: i64 = 50;
const USERS_PATH: &str = "/_gatehouse/admin/users";

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    page: Option<i64>,
    /// A notice after an action elsewhere (e.g. "deleted").
    #[serde(default)]
    done: String,
}

#[derive(Deserialize)]
pub struct CreateForm {
    csrf_token: String,
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    /// Comma or space separated.
    #[serde(default)]
    roles: String,
    #[serde(default)]
    password: String,
}

pub async fn list(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Result<Response, ErrorReply> {
    let admin = match require_admin(&state, &headers, USERS_PATH).await {
        Ok(admin) => admin,
        Err(answer) => return Ok(answer),
    };
    render_list(&state, &headers, &admin, &query, StatusCode::OK, None, None).await
}

pub async fn create(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    HtmlForm(form): HtmlForm<CreateForm>,
) -> Result<Response, ErrorReply> {
    let (admin, actor) = match admin_form(&state, peer, &headers, USERS_PATH, &form.csrf_token).await {
        Ok(pair) => pair,
        Err(answer) => return Ok(answer),
    };
    let created = match parse_roles(&form.roles) {
        Ok(roles) => {
            let request = CreateUser {
                username: &form.username,
                email: &form.email,
                name: &form.name,
                roles,
                password: &form.password,
            };
            state.admin.create_user(&actor, request).await
        }
        Err(problem) => Err(problem),
    };
    match created {
        Ok(user) => Ok(Redirect::to(&format!("{USERS_PATH}/{}?done=created", user.username)).into_response()),
        Err(err) => {
            let (status, message) = admin_problem(err)?;
            let typed = minijinja::context! {
                username => form.username, email => form.email, name => form.name, roles => form.roles,
            };
            render_list(&state, &headers, &admin, &ListQuery::default(), status, Some(message), Some(typed)).await
        }
    }
}

/// Roles as typed in a form field: separated by commas or spaces.
pub(super) fn parse_roles(raw: &str) -> Result<Vec<Role>, crate::admin::AdminError> {
    raw.split([',', ' ', '\n', '\t'])
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| Role::parse(r).map_err(crate::admin::AdminError::from))
        .collect()
}

async fn render_list(
    state: &SharedState,
    headers: &HeaderMap,
    admin: &Authenticated,
    query: &ListQuery,
    status: StatusCode,
    create_error: Option<String>,
    typed: Option<minijinja::Value>,
) -> Result<Response, ErrorReply> {
    let role = Role::parse(&query.role).ok();
    let user_status = match query.status.as_str() {
        "active" => Some(UserStatus::Active),
        "disabled" => Some(UserStatus::Disabled),
        "pending" => Some(UserStatus::Pending),
        _ => None,
    };
    let page = query.page.unwrap_or(1).clamp(1, 1_000_000);
    let text = query.q.trim().chars().take(100).collect::<String>();
    let filter = UserQuery {
        text: Some(text.clone()).filter(|t| !t.is_empty()),
        role: role.clone(),
        status: user_status,
        offset: (page - 1) * PAGE_SIZE,
        limit: PAGE_SIZE,
    };
    let (users, total) = state.store.search_users(&filter).await?;
    let pages = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    let rows: Vec<_> = users.iter().map(user_row).collect();
    let known_roles = state.store.known_roles().await?;
    let link = |page: i64| {
        let mut url = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in [("q", text.as_str()), ("role", query.role.as_str()), ("status", query.status.as_str())] {
            if !value.is_empty() {
                url.append_pair(key, value);
            }
        }
        url.append_pair("page", &page.to_string());
        format!("{USERS_PATH}?{}", url.finish())
    };
    let notice = match query.done.as_str() {
        "deleted" => Some("The user was deleted and their sessions ended."),
        _ => None,
    };
    let context = minijinja::context! {
        users => rows,
        total => total,
        page => page,
        pages => pages,
        first_shown => if total == 0 { 0 } else { (page - 1) * PAGE_SIZE + 1 },
        last_shown => ((page - 1) * PAGE_SIZE + users.len() as i64),
        previous_href => (page > 1).then(|| link(page - 1)),
        next_href => (page < pages).then(|| link(page + 1)),
        q => text,
        role => role.as_ref().map(Role::as_str).unwrap_or(""),
        status => query.status.as_str(),
        known_roles => known_roles,
        notice => notice,
        create_error => create_error,
        typed => typed.unwrap_or_else(|| minijinja::context! {}),
        create_open => typed_present(status),
    };
    Ok(admin_page(state, headers, status, "admin_users.html", "users", admin, context))
}

fn typed_present(status: StatusCode) -> bool {
    status != StatusCode::OK
}

fn user_row(user: &User) -> minijinja::Value {
    minijinja::context! {
        username => user.username.as_str(),
        name => &user.display_name,
        email => user.email.as_ref().map(|e| e.as_str()),
        roles => user.roles.iter().map(Role::as_str).collect::<Vec<_>>(),
        status => status_of(user),
        last_login => format_optional_time(user.last_login_at),
    }
}

pub(super) fn status_of(user: &User) -> &'static str {
    if user.disabled {
        "disabled"
    } else if user.is_pending() {
        "pending"
    } else {
        "active"
    }
}
