//! Invitations: a link that lets one email address register (in `invite` sign-up mode), with the roles the
//! inviter chose. Only the SHA-256 of the link's token is stored.

use time::OffsetDateTime;

use super::{Email, Role, TokenHash};

/// Invitations last a week unless configured otherwise (`signup.invite_lifetime`).
pub const DEFAULT_INVITE_LIFETIME: time::Duration = time::Duration::days(7);

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Invite {
    pub id: String,
    #[serde(skip)]
    pub token_hash: TokenHash,
    pub email: Email,
    pub roles: Vec<Role>,
    /// Username of the admin who invited, or `cli`.
    pub invited_by: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl Invite {
    /// A new invitation and the token to put in its link (shown or mailed once, never stored).
    pub fn new(
        email: Email,
        roles: Vec<Role>,
        invited_by: Option<String>,
        now: OffsetDateTime,
        lifetime: time::Duration,
    ) -> (Self, String) {
        let token = crate::random::url_token(32);
        let invite = Self {
            id: crate::random::hex_token(8),
            token_hash: TokenHash::of(&token),
            email,
            roles: super::user::normalize_roles(roles),
            invited_by,
            created_at: now,
            expires_at: now + lifetime,
        };
        (invite, token)
    }

    pub fn is_valid_at(&self, now: OffsetDateTime) -> bool {
        now < self.expires_at
    }
}
