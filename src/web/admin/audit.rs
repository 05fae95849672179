//! `/_gatehouse/admin/audit`: the audit log, newest first, filtered by user (actor or subject), kind and
//! time range, 100 events a page ("older" continues below the last event shown, so paging stays fast however
//! long the log is).

use axum::extract::{Query, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::{admin_page, format_time, require_admin};
use crate::app::SharedState;
use crate::domain::audit::parse_point_in_time;
use crate::domain::{AuditEvent, AuditKind};
use crate::store::AuditFilter;
use crate::web::error::ErrorReply;

const PAGE_SIZE: i64 = 100;
const AUDIT_PATH: &str = "/_gatehouse/admin/audit";

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    user: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    before: Option<i64>,
}

pub async fn list(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Query(query): Query<AuditQuery>,
) -> Result<Response, ErrorReply> {
    let admin = match require_admin(&state, &headers, AUDIT_PATH).await {
        Ok(admin) => admin,
        Err(answer) => return Ok(answer),
    };
    let now = state.clock.now();
    let mut problems = Vec::new();
    let mut time_filter = |raw: &str| {
        let raw = raw.trim();
        if raw.is_empty() {
            return None;
        }
        parse_point_in_time(raw, now).map_err(|e| problems.push(e.0)).ok()
    };
    let since = time_filter(&query.since);
    let until = time_filter(&query.until);
    let kind = match query.kind.trim() {
        "" => None,
        name => match name.parse::<AuditKind>() {
            Ok(kind) => Some(kind),
            Err(message) => {
                problems.push(message);
                None
            }
        },
    };
    let user = query.user.trim().to_lowercase();
    let filter = AuditFilter {
        since,
        until,
        subject_or_actor: Some(user.clone()).filter(|u| !u.is_empty()),
        kind,
        before_id: query.before,
        limit: PAGE_SIZE,
    };
    let entries = state.store.list_audit_entries(&filter).await?;
    let older_href = (entries.len() as i64 == PAGE_SIZE).then(|| {
        let mut url = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in [("user", user.as_str()), ("kind", query.kind.trim()), ("since", query.since.trim())] {
            if !value.is_empty() {
                url.append_pair(key, value);
            }
        }
        if !query.until.trim().is_empty() {
            url.append_pair("until", query.until.trim());
        }
        if let Some(last) = entries.last() {
            url.append_pair("before", &last.id.to_string());
        }
        format!("{AUDIT_PATH}?{}", url.finish())
    });
    let rows: Vec<_> = entries.iter().map(|entry| event_row(&entry.event)).collect();
    let context = minijinja::context! {
        events => rows,
        kinds => AuditKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
        user => user,
        kind => query.kind.trim(),
        since => query.since.trim(),
        until => query.until.trim(),
        paged => query.before.is_some(),
        older_href => older_href,
        error => (!problems.is_empty()).then(|| problems.join(" ")),
    };
    let status = if problems.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(admin_page(&state, &headers, status, "admin_audit.html", "audit", &admin, context))
}

/// One event as the audit tables show it.
pub(super) fn event_row(event: &AuditEvent) -> minijinja::Value {
    let filter_href = |who: &Option<String>| {
        who.as_deref().map(|who| {
            let query = url::form_urlencoded::Serializer::new(String::new()).append_pair("user", who).finish();
            format!("{AUDIT_PATH}?{query}")
        })
    };
    // "Chrome on Linux", as the session lists say it; the whole string is the cell's tooltip.
    let agent_short = event.user_agent.as_deref().map(|agent| crate::web::account::describe_device(Some(agent)));
    minijinja::context! {
        actor_href => filter_href(&event.actor),
        subject_href => filter_href(&event.subject),
        user_agent_short => agent_short,
        at => format_time(event.at),
        kind => event.kind.as_str(),
        failed => matches!(event.kind, AuditKind::SignInFailed | AuditKind::RegistrationRefused),
        actor => event.actor.as_deref().unwrap_or(""),
        subject => event.subject.as_deref().unwrap_or(""),
        ip => event.client_ip.as_deref().unwrap_or(""),
        user_agent => event.user_agent.as_deref().unwrap_or(""),
        detail => event.detail.as_deref().unwrap_or(""),
    }
}
