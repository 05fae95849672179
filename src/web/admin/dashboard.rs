//! `GET /_gatehouse/admin`: the dashboard. Charts of sign-ins and failed sign-ins per day and of new users
//! per day over 30 days, and the numbers people check first: users, active sessions, disabled, pending.

use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, StatusCode};

use super::charts::bar_chart;
use super::{admin_failure, admin_page, require_admin};
use crate::app::SharedState;
use crate::web::error::ErrorReply;

pub async fn show(State(state): State<SharedState>, headers: HeaderMap) -> Result<Response, ErrorReply> {
    let admin = match require_admin(&state, &headers, "/_gatehouse/admin").await {
        Ok(admin) => admin,
        Err(answer) => return Ok(answer),
    };
    let dashboard = state.admin.dashboard().await.map_err(admin_failure)?;
    let sign_ins = bar_chart(dashboard.first_day, &[(&dashboard.sign_ins, "ok"), (&dashboard.failed_sign_ins, "bad")]);
    let new_users = bar_chart(dashboard.first_day, &[(&dashboard.new_users, "new")]);
    let context = minijinja::context! {
        sign_ins => sign_ins,
        new_users => new_users,
        users => dashboard.users,
        disabled => dashboard.disabled,
        pending => dashboard.pending,
        active_sessions => dashboard.active_sessions,
        admins => dashboard.admins,
        admin_role => state.admin.admin_role().as_str(),
    };
    Ok(admin_page(&state, &headers, StatusCode::OK, "admin_dashboard.html", "dashboard", &admin, context))
}
