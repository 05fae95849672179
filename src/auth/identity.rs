//! What the app is told about a signed-in user, as ready-made header values: username, email, display name,
//! roles and the signed identity assertion. They are made once per validated session (see
//! [`Authenticated::identity`](super::Authenticated::identity)) and then copied onto each proxied request by
//! reference count, so a busy tab costs no formatting, joining or signing per request.

use http::HeaderValue;
use time::OffsetDateTime;

use super::AssertionSigner;
use crate::domain::{Session, User};

/// Each value is `None` only if the text cannot be a header value (fields are validated, so this does not
/// happen in practice); such a header is then left out rather than sent half-written.
#[derive(Debug, Clone)]
pub struct IdentityValues {
    pub username: Option<HeaderValue>,
    pub email: Option<HeaderValue>,
    pub name: Option<HeaderValue>,
    /// Comma-separated role names.
    pub roles: Option<HeaderValue>,
    pub assertion: Option<HeaderValue>,
}

impl IdentityValues {
    pub fn new(session: &Session, user: &User, signer: &AssertionSigner, now: OffsetDateTime) -> Self {
        let value = |text: &str| HeaderValue::from_bytes(text.as_bytes()).ok();
        let roles = user.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",");
        Self {
            username: value(user.username.as_str()),
            email: value(user.email.as_ref().map(|e| e.as_str()).unwrap_or("")),
            name: value(user.name_for_display()),
            roles: value(&roles),
            assertion: signer.assertion_for(&session.id, user, now).and_then(|token| value(&token)),
        }
    }
}
