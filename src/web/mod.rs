//! Gatehouse's own pages and endpoints under `/_gatehouse/`. One file per page group; this file assembles
//! them and applies what every page gets: security headers, a small body limit and a 404 page for unknown
//! Gatehouse paths (which never fall through to the app).

pub(crate) mod account;
mod admin;
mod assertion_key;
pub mod context;
pub mod error;
pub mod extract;
mod form;
pub mod form_deadline;
mod forward_auth;
mod health;
mod login;
mod logout;
mod metrics_endpoint;
pub mod oidc;
mod pages;
mod recovery;
mod register;
mod session_live;
pub mod setup;
mod static_files;
pub mod templates;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, HeaderValue, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};

use crate::app::SharedState;
use error::ErrorReply;

/// Whether a path is in Gatehouse's namespace, which is served by Gatehouse and never falls through to the
/// app. Decided on the raw path: an encoded `/_gatehouse%2F...` is not Gatehouse's and goes to the app.
pub fn is_gatehouse_path(path: &str) -> bool {
    path.strip_prefix("/_gatehouse").is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

pub fn routes(state: SharedState) -> Router<SharedState> {
    Router::new()
        .route("/login", get(login::show).post(login::submit))
        .route("/logout", get(logout::show).post(logout::submit))
        .route("/setup", get(setup::show).post(setup::submit))
        .route("/setup/promote", post(setup::promote))
        .route("/register", get(register::show).post(register::submit))
        .route("/verify", get(register::show_verify).post(register::submit_verify))
        .route("/verify/resend", post(register::resend))
        .route("/forgot-password", get(recovery::show_forgot_password).post(recovery::submit_forgot_password))
        .route("/reset-password", get(recovery::show_reset).post(recovery::submit_reset))
        .route("/forgot-username", get(recovery::show_forgot_username).post(recovery::submit_forgot_username))
        .route("/account", get(account::show))
        .route("/account/name", post(account::change_name))
        .route("/account/email", post(account::change_email))
        .route("/account/password", post(account::change_password))
        .route("/account/sessions/end", post(account::end_session))
        .route("/account/sessions/end-others", post(account::end_other_sessions))
        .route("/session/live", get(session_live::live))
        .merge(admin::routes())
        .merge(oidc::routes())
        .route("/assertion-key", get(assertion_key::assertion_key))
        .route("/auth", get(forward_auth::forward_auth))
        .route("/health", get(health::health))
        .route("/metrics", get(metrics_endpoint::metrics))
        .route("/static/{name}", get(static_files::static_file))
        .fallback(|| async { ErrorReply::not_found().into_response() })
        .layer(DefaultBodyLimit::max(form::MAX_FORM_BYTES))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
}

/// Headers for every Gatehouse page: no framing, no inline script or style, no referrer to other sites (setup
/// links carry a token; same-origin keeps the `Origin` header meaningful for CSRF checks), and no caching of personal pages (static files opt back in).
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    apply_security_headers(response.headers_mut());
    response
}

pub fn apply_security_headers(headers: &mut http::HeaderMap) {
    // A page may have set its own policy (one that lets its form lead to an OpenID Connect client).
    headers.entry(CONTENT_SECURITY_POLICY).or_insert(
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.entry(CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
}

#[cfg(test)]
mod tests {
    use super::is_gatehouse_path;

    #[test]
    fn gatehouse_owns_its_prefix_and_nothing_that_merely_starts_like_it() {
        for path in ["/_gatehouse", "/_gatehouse/", "/_gatehouse/login", "/_gatehouse/x/y"] {
            assert!(is_gatehouse_path(path), "{path}");
        }
        for path in ["/", "/_gatehousex", "/_gatehouse%2Flogin", "/app/_gatehouse/login", "/_GATEHOUSE/login"] {
            assert!(!is_gatehouse_path(path), "{path}");
        }
    }
}
