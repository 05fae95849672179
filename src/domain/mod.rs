//! The rules of the product as plain types: who a user is, what a session is, which events are audited,
//! how failed sign-ins are throttled and which return paths are safe. No I/O, no SQL, no HTTP here, so every
//! rule can be tested on its own and shared by every store and every front end.

pub mod access;
pub mod audit;
pub mod client_network;
pub mod email_challenge;
pub mod invite;
pub mod oidc;
pub mod password_policy;
pub mod request_target;
pub mod return_path;
pub mod session;
pub mod throttle;
pub mod user;

pub use audit::{AuditEvent, AuditKind};
pub use email_challenge::{ChallengePurpose, EmailChallenge};
pub use invite::Invite;
pub use session::{DigestHasher, NewSession, Session, SessionId, SessionToken, TokenDigest, TokenHash};
pub use throttle::{ThrottlePolicy, ThrottleState};
pub use user::{Email, NewUser, Role, User, UserId, Username};

/// A rule of the domain was broken by input; the message is safe to show to the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(pub String);

impl InvalidInput {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}
