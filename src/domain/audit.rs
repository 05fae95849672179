//! Audit events: what happened, when, who did it, to whom, and from where. The log is append-only through the
//! application; nothing in the store trait updates or deletes single events.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use time::OffsetDateTime;

/// The kinds of events Gatehouse records. The string forms are stable: they are stored and exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    SignIn,
    SignInFailed,
    SignOut,
    SessionEnded,
    PasswordChanged,
    PasswordRehashed,
    UserCreated,
    RolesChanged,
    UserDisabled,
    UserEnabled,
    UserDeleted,
    SetupCompleted,
    Registered,
    RegistrationRefused,
    EmailVerified,
    EmailChangeRequested,
    EmailChanged,
    PasswordResetRequested,
    PasswordReset,
    UsernameReminderRequested,
    ProfileChanged,
    InviteCreated,
    InviteRevoked,
    UsersImported,
}

impl AuditKind {
    pub const ALL: [AuditKind; 24] = [
        AuditKind::SignIn,
        AuditKind::SignInFailed,
        AuditKind::SignOut,
        AuditKind::SessionEnded,
        AuditKind::PasswordChanged,
        AuditKind::PasswordRehashed,
        AuditKind::UserCreated,
        AuditKind::RolesChanged,
        AuditKind::UserDisabled,
        AuditKind::UserEnabled,
        AuditKind::UserDeleted,
        AuditKind::SetupCompleted,
        AuditKind::Registered,
        AuditKind::RegistrationRefused,
        AuditKind::EmailVerified,
        AuditKind::EmailChangeRequested,
        AuditKind::EmailChanged,
        AuditKind::PasswordResetRequested,
        AuditKind::PasswordReset,
        AuditKind::UsernameReminderRequested,
        AuditKind::ProfileChanged,
        AuditKind::InviteCreated,
        AuditKind::InviteRevoked,
        AuditKind::UsersImported,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::SignIn => "sign_in",
            AuditKind::SignInFailed => "sign_in_failed",
            AuditKind::SignOut => "sign_out",
            AuditKind::SessionEnded => "session_ended",
            AuditKind::PasswordChanged => "password_changed",
            AuditKind::PasswordRehashed => "password_rehashed",
            AuditKind::UserCreated => "user_created",
            AuditKind::RolesChanged => "roles_changed",
            AuditKind::UserDisabled => "user_disabled",
            AuditKind::UserEnabled => "user_enabled",
            AuditKind::UserDeleted => "user_deleted",
            AuditKind::SetupCompleted => "setup_completed",
            AuditKind::Registered => "registered",
            AuditKind::RegistrationRefused => "registration_refused",
            AuditKind::EmailVerified => "email_verified",
            AuditKind::EmailChangeRequested => "email_change_requested",
            AuditKind::EmailChanged => "email_changed",
            AuditKind::PasswordResetRequested => "password_reset_requested",
            AuditKind::PasswordReset => "password_reset",
            AuditKind::UsernameReminderRequested => "username_reminder_requested",
            AuditKind::ProfileChanged => "profile_changed",
            AuditKind::InviteCreated => "invite_created",
            AuditKind::InviteRevoked => "invite_revoked",
            AuditKind::UsersImported => "users_imported",
        }
    }
}

impl fmt::Display for AuditKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuditKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AuditKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| format!("unknown audit event kind '{s}'"))
    }
}

/// One audit record. `actor` is who acted (the signed-in user, an admin, or `cli`), `subject` whom it
/// concerned (usually a username), `detail` a short machine-readable reason such as `bad_password`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub kind: AuditKind,
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub detail: Option<String>,
}

impl AuditEvent {
    pub fn new(at: OffsetDateTime, kind: AuditKind) -> Self {
        Self { at, kind, actor: None, subject: None, client_ip: None, user_agent: None, detail: None }
    }

    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn client(mut self, ip: Option<String>, user_agent: Option<String>) -> Self {
        self.client_ip = ip;
        self.user_agent = user_agent;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in AuditKind::ALL {
            assert_eq!(kind.as_str().parse::<AuditKind>(), Ok(kind));
        }
        assert!("nope".parse::<AuditKind>().is_err());
    }
}
