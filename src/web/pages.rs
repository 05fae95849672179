//! What the self-service pages share: rendering a form page with its CSRF token, turning an
//! [`AccountError`] into either a message beside the form or an error page, and signing a browser in.

use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, HeaderValue, StatusCode};

use super::error::ErrorReply;
use super::extract::{csrf_for_page, html_page, with_cookies};
use super::templates::render;
use crate::accounts::AccountError;
use crate::app::AppState;
use crate::domain::{Session, SessionToken};

/// Renders `template` with `context` plus the form's CSRF token (and sets the CSRF cookie if needed).
pub fn form_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    template: &str,
    context: minijinja::Value,
) -> Response {
    let csrf = csrf_for_page(state, headers);
    let policy = crate::domain::password_policy::describe_policy(state.config.password.min_length);
    let html = render(
        template,
        &state.config.brand,
        minijinja::context! {
            csrf_token => csrf.token, min_length => state.config.password.min_length, password_policy => policy,
            ..context
        },
    );
    with_cookies(html_page(status, html), csrf.set_cookie)
}

/// A problem to show beside the form that caused it.
pub struct FormProblem {
    pub status: StatusCode,
    pub message: String,
    retry_after: Option<u64>,
}

impl FormProblem {
    /// Adds `Retry-After` when the problem was a limit.
    pub fn finish(&self, mut response: Response) -> Response {
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Bad input, limits and refusals become a message on the page; database and internal failures become the
/// error page (with nothing internal in it).
pub fn form_problem(err: AccountError) -> Result<FormProblem, ErrorReply> {
    match err {
        AccountError::Invalid(problem) => {
            Ok(FormProblem { status: StatusCode::UNPROCESSABLE_ENTITY, message: problem.0, retry_after: None })
        }
        AccountError::NotAllowed(message) => {
            Ok(FormProblem { status: StatusCode::FORBIDDEN, message, retry_after: None })
        }
        AccountError::Throttled(wait) => {
            let secs = ErrorReply::wait_secs(wait);
            let reply = ErrorReply::slow_down(secs);
            Ok(FormProblem { status: StatusCode::TOO_MANY_REQUESTS, message: reply.message, retry_after: Some(secs) })
        }
        AccountError::Store(err) => Err(err.into()),
        AccountError::Internal(message) => {
            tracing::error!(error = %message, "account operation failed");
            Err(ErrorReply::internal())
        }
    }
}

/// Redirects to `to` with the cookie of a new session.
pub fn signed_in(state: &AppState, token: &SessionToken, session: &Session, to: &str) -> Result<Response, ErrorReply> {
    let cookie =
        state.cookies.build(state.cookies.session, token.expose().to_owned(), state.sessions.cookie_max_age(session));
    let cookie = HeaderValue::from_str(&cookie.to_string()).map_err(|_| ErrorReply::internal())?;
    Ok(with_cookies(Redirect::to(to).into_response(), [cookie]))
}
