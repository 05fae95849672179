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
    UserUpdated,
    AppSignIn,
    ConsentGranted,
    TokenReplay,
    ClientAdded,
    ClientRemoved,
    SigningKeyRotated,
}

impl AuditKind {
    pub const ALL: [AuditKind; 31] = [
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
        AuditKind::UserUpdated,
        AuditKind::AppSignIn,
        AuditKind::ConsentGranted,
        AuditKind::TokenReplay,
        AuditKind::ClientAdded,
        AuditKind::ClientRemoved,
        AuditKind::SigningKeyRotated,
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
            AuditKind::UserUpdated => "user_updated",
            AuditKind::AppSignIn => "app_sign_in",
            AuditKind::ConsentGranted => "consent_granted",
            AuditKind::TokenReplay => "token_replay",
            AuditKind::ClientAdded => "client_added",
            AuditKind::ClientRemoved => "client_removed",
            AuditKind::SigningKeyRotated => "signing_key_rotated",
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

/// A point in time as people type it in filters: an RFC 3339 time (`2026-11-24T09:00:00Z`), a UTC date
/// (`2026-11-24`, meaning its midnight), or a time ago (`24h`, `7d`, `90m`).
pub fn parse_point_in_time(raw: &str, now: OffsetDateTime) -> Result<OffsetDateTime, super::InvalidInput> {
    let raw = raw.trim();
    if let Ok(t) = OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339) {
        return Ok(t);
    }
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(date) = time::Date::parse(raw, &date_format) {
        return Ok(date.midnight().assume_utc());
    }
    if let Ok(ago) = humantime::parse_duration(raw)
        && let Ok(ago) = time::Duration::try_from(ago)
        && let Some(t) = now.checked_sub(ago)
    {
        return Ok(t);
    }
    Err(super::InvalidInput::new(format!(
        "'{raw}' is not a time: use a date like 2026-11-24, a time like 2026-11-24T09:00:00Z, or a time ago like 24h or 7d"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_in_time_are_dates_times_or_durations_ago() {
        let now = time::macros::datetime!(2026-11-24 12:00 UTC);
        assert_eq!(parse_point_in_time("2026-11-20", now).unwrap(), time::macros::datetime!(2026-11-20 0:00 UTC));
        assert_eq!(
            parse_point_in_time("2026-11-20T08:30:00+01:00", now).unwrap(),
            time::macros::datetime!(2026-11-20 7:30 UTC)
        );
        assert_eq!(parse_point_in_time("24h", now).unwrap(), time::macros::datetime!(2026-11-23 12:00 UTC));
        assert_eq!(parse_point_in_time(" 7d ", now).unwrap(), time::macros::datetime!(2026-11-17 12:00 UTC));
        assert!(parse_point_in_time("yesterday", now).is_err());
        assert!(parse_point_in_time("2026-13-01", now).is_err());
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in AuditKind::ALL {
            assert_eq!(kind.as_str().parse::<AuditKind>(), Ok(kind));
        }
        assert!("nope".parse::<AuditKind>().is_err());
    }
}
