//! Errors as people and programs see them. Handlers return [`ErrorReply`]; the request-context middleware
//! renders it as a branded HTML page for browsers or as JSON for API clients, always with the request id, so
//! a user can quote it and an operator can find the matching log line. Nothing internal (SQL, paths, tokens)
//! ever reaches the message.

use axum::response::{IntoResponse, Response};
use http::StatusCode;

#[derive(Debug, Clone)]
pub struct ErrorReply {
    pub status: StatusCode,
    /// Stable machine-readable code for the JSON face, e.g. `upstream_unavailable`.
    pub code: &'static str,
    pub title: &'static str,
    pub message: String,
    /// Seconds, sent as `Retry-After` (and used by the "starting" page to refresh itself).
    pub retry_after: Option<u64>,
    /// The page's button (address, label), when the default for the status does not fit.
    pub action: Option<(String, &'static str)>,
}

impl ErrorReply {
    fn new(status: StatusCode, code: &'static str, title: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, title, message: message.into(), retry_after: None, action: None }
    }

    /// The same reply with another button on its page.
    pub fn with_action(mut self, href: impl Into<String>, label: &'static str) -> Self {
        self.action = Some((href.into(), label));
        self
    }

    /// The same reply with another message.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// The same reply with another status (e.g. 405 for a refused method).
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", "Bad request", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "Sign-in required", "Sign in to continue.")
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Access denied", message)
    }

    /// A signed-in user without any of the roles an `[[access]]` rule (or the admin console) needs.
    pub fn role_required(roles: &[crate::domain::Role], username: &str) -> Self {
        let needed = match roles {
            [role] => format!("the role '{role}'"),
            [] => "a role you do not have".to_owned(),
            roles => {
                format!("one of the roles {}", roles.iter().map(|r| format!("'{r}'")).collect::<Vec<_>>().join(", "))
            }
        };
        Self::new(
            StatusCode::FORBIDDEN,
            "role_required",
            "Access denied",
            format!(
                "You are signed in as {username}, but this page needs {needed}. Ask an administrator for access, or sign in as someone else."
            ),
        )
    }

    /// Forward-auth was asked about a host or path that is not in canonical form (see `web::forward_auth`).
    pub fn not_canonical(reason: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "not_canonical",
            "Address refused",
            format!("{reason} Gatehouse refuses addresses the app could read differently from how they were checked."),
        )
    }

    /// A trusted proxy passed on another `Host` than the browser sent, while host rules apply.
    pub fn misdirected() -> Self {
        Self::new(
            StatusCode::MISDIRECTED_REQUEST,
            "misdirected",
            "Misdirected request",
            "The proxy in front of Gatehouse changed the host name of this request, so access rules for host names cannot apply. Configure it to pass the original Host header.",
        )
    }

    pub fn csrf() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "csrf_failed",
            "Form expired",
            "This form was not sent from this site or has expired. Go back, reload the page and try again.",
        )
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Page not found", "There is no Gatehouse page at this address.")
    }

    pub fn payload_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "Request too large",
            "The submitted form is too large.",
        )
    }

    /// A request body that did not arrive in time (`[server] form_timeout`, `body_timeout`, `body_min_rate`).
    pub fn request_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "Request timed out",
            "The request took too long to arrive. Check your connection and try again.",
        )
    }

    pub fn too_many_attempts(wait_secs: u64) -> Self {
        Self::throttled("Too many failed sign-in attempts.", wait_secs)
    }

    /// A self-service form was used too often (registration, codes, recovery).
    pub fn slow_down(wait_secs: u64) -> Self {
        Self::throttled("This was tried too often.", wait_secs)
    }

    fn throttled(what: &str, wait_secs: u64) -> Self {
        let mut reply = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            "Too many attempts",
            format!("{what} Try again in {}.", human_wait(wait_secs)),
        );
        reply.retry_after = Some(wait_secs);
        reply
    }

    /// A wait in whole seconds, rounded up (waiting exactly as long as told must be enough), at least 1.
    pub fn wait_secs(wait: time::Duration) -> u64 {
        let secs = wait.whole_seconds() + i64::from(wait.subsec_nanoseconds() > 0);
        u64::try_from(secs).unwrap_or(1).max(1)
    }

    pub fn starting() -> Self {
        let mut reply = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "upstream_starting",
            "Starting up",
            "The app is starting. This page will refresh by itself in a moment.",
        );
        reply.retry_after = Some(2);
        reply
    }

    pub fn upstream_unavailable() -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            "upstream_unavailable",
            "App unavailable",
            "The app behind Gatehouse is not answering. It may be restarting; try again in a moment.",
        )
    }

    pub fn upstream_timeout() -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "upstream_timeout",
            "App timed out",
            "The app behind Gatehouse took too long to answer.",
        )
    }

    pub fn database_unavailable() -> Self {
        let mut reply = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "Temporarily unavailable",
            "Gatehouse cannot reach its database right now, so nobody can be signed in. Try again shortly.",
        );
        reply.retry_after = Some(5);
        reply
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Something went wrong",
            "An unexpected error occurred.",
        )
    }

    /// A generic reply for a bare status produced outside a handler (e.g. 405 from the router).
    pub fn for_status(status: StatusCode) -> Self {
        match status {
            StatusCode::NOT_FOUND => Self::not_found(),
            StatusCode::PAYLOAD_TOO_LARGE => Self::payload_too_large(),
            StatusCode::UNAUTHORIZED => Self::unauthorized(),
            StatusCode::METHOD_NOT_ALLOWED => Self::new(
                status,
                "method_not_allowed",
                "Method not allowed",
                "This page does not accept that kind of request.",
            ),
            s if s.is_client_error() => Self { status: s, ..Self::bad_request("The request could not be understood.") },
            s => Self { status: s, ..Self::internal() },
        }
    }
}

impl IntoResponse for ErrorReply {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

impl From<crate::store::StoreError> for ErrorReply {
    fn from(err: crate::store::StoreError) -> Self {
        tracing::error!(error = %err, "database call failed");
        ErrorReply::database_unavailable()
    }
}

fn human_wait(secs: u64) -> String {
    match secs {
        0..=1 => "a second".to_owned(),
        2..=59 => format!("{secs} seconds"),
        60..=119 => "a minute".to_owned(),
        _ => format!("{} minutes", secs.div_ceil(60)),
    }
}
