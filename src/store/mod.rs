//! Persistence. [`Store`] is everything Gatehouse keeps: users, sessions, the audit log, throttling counters,
//! one-time tokens and server settings. It is split into one trait per concern so each backend keeps one file
//! per concern, and one conformance suite (`tests/store_conformance.rs`) holds every backend to the same
//! behaviour. Nothing outside this module knows which database is underneath.

pub mod copy;
mod postgres;
mod rows;
mod shared;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

use crate::domain::oidc::{Consent, GrantToken, GrantTokenKind, OidcClient, SigningKeyRecord};
use crate::domain::{
    AuditEvent, AuditKind, ChallengePurpose, Email, EmailChallenge, Invite, NewSession, NewUser, Role, Session,
    SessionId, ThrottleState, TokenHash, User, UserId,
};

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken; the message names the field (e.g. "username").
    #[error("{0} is already taken")]
    Conflict(&'static str),
    #[error("not found")]
    NotFound,
    /// The database could not be reached or answered with an error; callers fail closed.
    #[error("database error: {0}")]
    Database(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait UserStore: Send + Sync {
    async fn create_user(&self, user: NewUser, now: OffsetDateTime) -> StoreResult<User>;
    async fn user_by_id(&self, id: &UserId) -> StoreResult<Option<User>>;
    /// Finds a user by username or email (the login form accepts either); `login` is matched case-insensitively.
    async fn user_by_login(&self, login: &str) -> StoreResult<Option<User>>;
    /// All users ordered by username.
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    async fn count_users(&self) -> StoreResult<i64>;
    async fn set_password_hash(&self, id: &UserId, hash: &str, now: OffsetDateTime) -> StoreResult<()>;
    async fn set_roles(&self, id: &UserId, roles: &[Role], now: OffsetDateTime) -> StoreResult<()>;
    async fn set_disabled(&self, id: &UserId, disabled: bool, now: OffsetDateTime) -> StoreResult<()>;
    /// Deletes the user and, with them, their sessions and roles.
    async fn delete_user(&self, id: &UserId) -> StoreResult<()>;
    /// Counts a successful sign-in.
    async fn record_login(&self, id: &UserId, now: OffsetDateTime) -> StoreResult<()>;
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn create_session(&self, session: NewSession) -> StoreResult<()>;
    /// The session with this token hash and its user, whatever its expiry (the caller decides validity).
    async fn session_by_token_hash(&self, hash: &TokenHash) -> StoreResult<Option<(Session, User)>>;
    async fn touch_session(&self, id: &SessionId, now: OffsetDateTime) -> StoreResult<()>;
    /// Returns whether a session was deleted.
    async fn delete_session(&self, id: &SessionId) -> StoreResult<bool>;
    /// Deletes every session of a user and returns their ids (so open connections can be closed).
    async fn delete_user_sessions(&self, user_id: &UserId) -> StoreResult<Vec<SessionId>>;
    async fn sessions_for_user(&self, user_id: &UserId) -> StoreResult<Vec<Session>>;
    /// Deletes sessions past their absolute or idle expiry; returns how many.
    async fn delete_expired_sessions(&self, now: OffsetDateTime) -> StoreResult<u64>;
    async fn count_active_sessions(&self, now: OffsetDateTime) -> StoreResult<i64>;
}

/// Which audit events to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub since: Option<OffsetDateTime>,
    /// Only events before this time.
    pub until: Option<OffsetDateTime>,
    pub subject_or_actor: Option<String>,
    pub kind: Option<AuditKind>,
    /// Only events older than the one with this id (the next page).
    pub before_id: Option<i64>,
    /// At most this many; 0 means 1000.
    pub limit: i64,
}

/// An audit event as stored, with its position in the log (for paging: ask for events before an id).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditEntry {
    pub id: i64,
    #[serde(flatten)]
    pub event: AuditEvent,
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()>;
    /// Events matching `filter`, newest first.
    async fn list_audit_entries(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEntry>>;
    async fn list_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEvent>> {
        Ok(self.list_audit_entries(filter).await?.into_iter().map(|entry| entry.event).collect())
    }
    /// Retention: deletes events older than `before`; the only way events ever leave the log.
    async fn delete_audit_before(&self, before: OffsetDateTime) -> StoreResult<u64>;
    /// How many events of each of `kinds` happened per UTC day since `since` (days as Unix days).
    async fn daily_audit_counts(&self, kinds: &[AuditKind], since: OffsetDateTime) -> StoreResult<Vec<DailyCount>>;
}

/// A count for one UTC day (`day` = Unix seconds / 86400) and, where counted per kind, one kind of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyCount {
    pub day: i64,
    pub kind: Option<AuditKind>,
    pub count: i64,
}

/// Which accounts the admin console lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    Active,
    Disabled,
    /// Registered, waiting for their email to be verified.
    Pending,
}

/// One page of the admin console's user list: filters, then `offset`/`limit` in username order.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    /// Found anywhere in the username, email or display name, ignoring case.
    pub text: Option<String>,
    pub role: Option<Role>,
    pub status: Option<UserStatus>,
    pub offset: i64,
    pub limit: i64,
}

/// What the admin console reads beyond single users.
#[async_trait]
pub trait AdminStore: Send + Sync {
    /// The users on one page of `query`, and how many match in all.
    async fn search_users(&self, query: &UserQuery) -> StoreResult<(Vec<User>, i64)>;
    /// Enabled accounts holding `role` (the last administrator may not be removed).
    async fn count_enabled_with_role(&self, role: &Role) -> StoreResult<i64>;
    /// Every role some account holds, sorted.
    async fn known_roles(&self) -> StoreResult<Vec<String>>;
    /// Accounts created per UTC day since `since`.
    async fn daily_new_users(&self, since: OffsetDateTime) -> StoreResult<Vec<DailyCount>>;
    /// An administrator's edit: display name and email (an address an administrator sets counts as verified;
    /// `None` removes it). [`StoreError::Conflict`] if another account has the address.
    async fn set_profile(
        &self,
        id: &UserId,
        display_name: &str,
        email: Option<&Email>,
        now: OffsetDateTime,
    ) -> StoreResult<()>;
}

#[async_trait]
pub trait ThrottleStore: Send + Sync {
    async fn throttle_state(&self, key: &str) -> StoreResult<Option<ThrottleState>>;
    /// Adds a failure atomically; a counter whose last failure is older than `reset_after` starts again at 1.
    async fn record_throttle_failure(
        &self,
        key: &str,
        now: OffsetDateTime,
        reset_after: Duration,
    ) -> StoreResult<ThrottleState>;
    async fn clear_throttle(&self, key: &str) -> StoreResult<()>;
    /// Forgets counters whose last failure is before `before` (they no longer throttle anything).
    async fn delete_stale_throttle(&self, before: OffsetDateTime) -> StoreResult<u64>;
}

/// A single-use secret sent to a person (setup link, later verification and reset links).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTimeToken {
    pub token_hash: TokenHash,
    pub purpose: String,
    pub subject: Option<String>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

#[async_trait]
pub trait TokenStore: Send + Sync {
    async fn create_one_time_token(&self, token: &OneTimeToken) -> StoreResult<()>;
    /// Whether an unexpired token with this hash and purpose exists, without using it up.
    async fn one_time_token_is_valid(&self, purpose: &str, hash: &TokenHash, now: OffsetDateTime) -> StoreResult<bool>;
    /// Uses the token up: deletes it and returns it if it existed with this purpose and had not expired.
    /// Two concurrent calls with the same token never both succeed.
    async fn consume_one_time_token(
        &self,
        purpose: &str,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<OneTimeToken>>;
    /// Deletes tokens that expired before `now`; returns how many.
    async fn delete_expired_one_time_tokens(&self, now: OffsetDateTime) -> StoreResult<u64>;
}

/// How many users an import created and updated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    pub created: usize,
    pub updated: usize,
}

/// Self-service accounts: registrations, invitations, email verification and the account page's changes.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Creates a user with every field of [`NewUser`] (pending registrations included).
    async fn create_account(&self, user: NewUser, now: OffsetDateTime) -> StoreResult<User>;
    async fn user_by_email(&self, email: &Email) -> StoreResult<Option<User>>;
    async fn set_display_name(&self, id: &UserId, name: &str, now: OffsetDateTime) -> StoreResult<()>;
    /// Replaces the email with a proven one; [`StoreError::Conflict`] if another account has it.
    async fn set_verified_email(&self, id: &UserId, email: &Email, now: OffsetDateTime) -> StoreResult<()>;
    /// Finishes a registration: email verified, no longer pending; `roles` (from an invitation) replace the
    /// account's roles when not empty.
    async fn activate_user(&self, id: &UserId, roles: &[Role], now: OffsetDateTime) -> StoreResult<()>;
    /// Creates and updates users in one transaction: all of them, or (on any error) none. `progress` is told
    /// how many rows were written so far, now and then.
    async fn import_users(
        &self,
        creates: &[NewUser],
        updates: &[(UserId, NewUser)],
        now: OffsetDateTime,
        progress: &(dyn Fn(usize) + Send + Sync),
    ) -> StoreResult<ImportCounts>;

    async fn create_invite(&self, invite: &Invite) -> StoreResult<()>;
    async fn invite_by_token(&self, hash: &TokenHash) -> StoreResult<Option<Invite>>;
    /// Uses an invitation up: deletes and returns it. Of two racing callers only one gets it.
    async fn take_invite(&self, hash: &TokenHash) -> StoreResult<Option<Invite>>;
    /// Newest first.
    async fn list_invites(&self) -> StoreResult<Vec<Invite>>;
    async fn revoke_invite(&self, id: &str) -> StoreResult<bool>;

    /// Stores a challenge, replacing any earlier one of the same user and purpose.
    async fn create_email_challenge(&self, challenge: &EmailChallenge) -> StoreResult<()>;
    async fn email_challenge(&self, id: &str) -> StoreResult<Option<EmailChallenge>>;
    async fn email_challenge_by_link(&self, hash: &TokenHash) -> StoreResult<Option<EmailChallenge>>;
    async fn latest_email_challenge(
        &self,
        user_id: &UserId,
        purpose: ChallengePurpose,
    ) -> StoreResult<Option<EmailChallenge>>;
    /// Counts one code attempt, atomically, if the challenge is open (unexpired, attempts left), and returns
    /// it; `None` when it is unknown or closed. Concurrent guesses can never exceed the attempt limit.
    async fn claim_code_attempt(&self, id: &str, now: OffsetDateTime) -> StoreResult<Option<EmailChallenge>>;
    /// Uses an unexpired challenge up; of two racing callers only one gets `true`.
    async fn take_email_challenge(&self, id: &str, now: OffsetDateTime) -> StoreResult<bool>;
    /// The one-time token with this hash and purpose, expired or not, without using it up.
    async fn one_time_token(&self, purpose: &str, hash: &TokenHash) -> StoreResult<Option<OneTimeToken>>;
    /// Deletes the one-time tokens of one purpose for one subject (e.g. every reset link of a user).
    async fn delete_one_time_tokens_for(&self, purpose: &str, subject: &str) -> StoreResult<u64>;
    /// Deletes expired challenges and invitations, and pending registrations past their time.
    async fn delete_expired_account_records(&self, now: OffsetDateTime) -> StoreResult<u64>;
}

#[async_trait]
pub trait SettingsStore: Send + Sync {
    /// Returns the stored value for `key`, storing `value_if_absent` first if there is none. Instances that
    /// race on first start all end up with the same value.
    async fn setting_or_insert(&self, key: &str, value_if_absent: &str) -> StoreResult<String>;
    async fn setting(&self, key: &str) -> StoreResult<Option<String>>;
    /// Stores `value` under `key`, replacing any value there.
    async fn set_setting(&self, key: &str, value: &str) -> StoreResult<()>;
}

/// The OpenID Connect provider's records: clients registered from the CLI, codes and tokens (by hash),
/// consents and ID token signing keys.
#[async_trait]
pub trait OidcStore: Send + Sync {
    /// [`StoreError::Conflict`] if the client id is taken.
    async fn create_oidc_client(&self, client: &OidcClient, now: OffsetDateTime) -> StoreResult<()>;
    async fn oidc_client(&self, client_id: &str) -> StoreResult<Option<OidcClient>>;
    /// Ordered by client id.
    async fn list_oidc_clients(&self) -> StoreResult<Vec<OidcClient>>;
    /// Deletes the client with every token issued to it and every consent given to it.
    async fn delete_oidc_client(&self, client_id: &str) -> StoreResult<bool>;
    async fn create_grant_token(&self, token: &GrantToken) -> StoreResult<()>;
    /// The token with this hash, expired or used or not (the caller decides).
    async fn grant_token(&self, kind: GrantTokenKind, hash: &TokenHash) -> StoreResult<Option<GrantToken>>;
    /// Uses a code or refresh token up and stores what it was exchanged for, in one transaction: `false` (and
    /// nothing stored) if it was used already. Of two racing callers exactly one gets `true`, and the other's
    /// replay can only be seen once the winner's tokens exist, so revoking the grant then catches them.
    async fn redeem_grant_token(
        &self,
        kind: GrantTokenKind,
        hash: &TokenHash,
        now: OffsetDateTime,
        issued: &[GrantToken],
    ) -> StoreResult<bool>;
    /// The Gatehouse session a grant was made in, if it still exists (valid or not).
    async fn grant_session(&self, session_id: &SessionId) -> StoreResult<Option<Session>>;
    /// Deletes the access and refresh tokens of a grant; returns how many.
    async fn revoke_grant(&self, grant_id: &str) -> StoreResult<u64>;
    /// Deletes the access and refresh tokens issued from a Gatehouse session (signed out through a client).
    async fn revoke_session_grants(&self, session_id: &SessionId) -> StoreResult<u64>;
    /// Hands the tokens issued from one session to another (the same user signed in again, e.g. for
    /// `prompt=login`): apps keep working when the old session is then ended.
    async fn move_session_grants(&self, from: &SessionId, to: &SessionId) -> StoreResult<u64>;
    /// Deletes codes and tokens that expired before `before`.
    async fn delete_expired_grant_tokens(&self, before: OffsetDateTime) -> StoreResult<u64>;
    async fn consent(&self, user_id: &UserId, client_id: &str) -> StoreResult<Option<Consent>>;
    /// Stores or replaces the user's consent for the client.
    async fn save_consent(&self, consent: &Consent) -> StoreResult<()>;
    /// Every signing key, newest first.
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>>;
    /// Makes `key` the current signing key, retiring `replaces` (the key the caller saw as current, `None` if
    /// there was none) as of `key.created_at`. [`StoreError::Conflict`] if the current key is no longer
    /// `replaces` (another process rotated at the same moment).
    async fn add_signing_key(&self, key: &SigningKeyRecord, replaces: Option<&str>) -> StoreResult<()>;
    /// Forgets retired keys no token can need any more.
    async fn delete_signing_keys_retired_before(&self, before: OffsetDateTime) -> StoreResult<u64>;
}

/// What other processes sharing the database did to sessions, as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// These sessions were ended (sign-out, a user disabled, deleted or given a new password).
    Ended(Vec<SessionId>),
    /// Events may have been missed (the feed's connection was lost and made again): forget what is cached.
    Resync,
}

/// Everything Gatehouse persists.
#[async_trait]
pub trait Store:
    UserStore
    + SessionStore
    + AuditStore
    + ThrottleStore
    + TokenStore
    + SettingsStore
    + AccountStore
    + AdminStore
    + OidcStore
{
    /// Cheap round trip for health checks.
    async fn ping(&self) -> StoreResult<()>;
    /// Short name of the backend for logs and health output.
    fn backend(&self) -> &'static str;
    /// A feed of sessions ended by any process using this database, so that every instance closes their
    /// tunnels and forgets them at once (PostgreSQL: LISTEN/NOTIFY; SQLite: a table of ended sessions that a
    /// trigger fills, read a few times a second). `None` where the backend has no such feed.
    async fn session_events(&self) -> StoreResult<Option<tokio::sync::mpsc::Receiver<SessionEvent>>> {
        Ok(None)
    }
}

pub type SharedStore = Arc<dyn Store>;

/// Opens the store a database URL names and applies pending migrations.
pub async fn open(url: &str) -> anyhow::Result<SharedStore> {
    check_database_url(url).map_err(|message| anyhow::anyhow!("unsupported database URL: {message}"))?;
    if is_postgres_url(url) {
        Ok(Arc::new(PostgresStore::open(url).await?))
    } else {
        Ok(Arc::new(SqliteStore::open(url).await?))
    }
}

/// Whether a URL names a database Gatehouse can use; the error says which URLs it can.
pub fn check_database_url(url: &str) -> Result<(), String> {
    if url.starts_with("sqlite:") || is_postgres_url(url) {
        Ok(())
    } else {
        Err(format!(
            "'{}' is not a database URL; use sqlite://PATH or postgres://USER:PASSWORD@HOST/DATABASE",
            redact_url(url)
        ))
    }
}

/// Whether a database URL names PostgreSQL.
fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres:") || url.starts_with("postgresql:")
}

/// A database URL with any password replaced by `***`, for messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Converts a time to the Unix seconds the schema stores.
pub(crate) fn unix(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

/// Converts stored Unix seconds back; out-of-range values (only possible through manual edits) clamp to the epoch.
pub(crate) fn from_unix(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
