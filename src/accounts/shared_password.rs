//! One shared password instead of accounts: Streamlit's own first recipe (`password` in `secrets.toml`) and
//! what Ploomber's protection offers, with Gatehouse's sessions, throttling, audit and sign-out.
//!
//! The password belongs to an account named `shared` that Gatehouse creates and marks as its own (its id in
//! the `settings` table), so sign-in, sessions, throttling and the audit log are the ordinary ones, and the
//! app sees `st.user.username == "shared"`. While that account is enabled the sign-in page asks only for the
//! password. It is installed from `[password] shared` / `shared_file` (or `--shared-password-file`) at every
//! start, and by `users import --format secrets-toml` from a top-level `password`. Switching to accounts
//! later keeps everything else: add accounts, then disable or delete `shared` (and drop the setting).

use time::OffsetDateTime;

use crate::auth::Passwords;
use crate::auth::password::Verification;
use crate::domain::{AuditEvent, AuditKind, NewUser, User, UserId, Username};
use crate::import::{Password, classify_password};
use crate::store::{SharedStore, StoreError};

/// The account's username: what `st.user` and the audit log show for everyone who signed in with it.
pub const USERNAME: &str = "shared";
/// The `settings` key that holds the id of the account Gatehouse made.
const SETTING: &str = "shared_password_account";

#[derive(Debug, thiserror::Error)]
pub enum SharedPasswordError {
    #[error("the shared password {0}")]
    Invalid(String),
    #[error(
        "a user named '{USERNAME}' already exists and is not Gatehouse's shared-password account; rename or delete it (gatehouse users delete {USERNAME}) to use a shared password"
    )]
    NameTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("could not hash the shared password: {0}")]
    Hash(String),
}

/// Reads the shared password as configured: a bcrypt or argon2 hash (from `gatehouse hash`) is kept, anything
/// else is the password itself. An empty one is refused.
pub fn parse(raw: &str) -> Result<Password, SharedPasswordError> {
    match classify_password(raw).map_err(SharedPasswordError::Invalid)? {
        Password::None => Err(SharedPasswordError::Invalid("is empty".into())),
        password => Ok(password),
    }
}

/// Gatehouse's shared-password account, if it made one (enabled or not).
pub async fn account(store: &SharedStore) -> Result<Option<User>, StoreError> {
    let Some(id) = store.setting(SETTING).await? else {
        return Ok(None);
    };
    store.user_by_id(&UserId(id)).await
}

/// Whether sign-in is by the shared password: Gatehouse's shared account exists and is enabled.
pub async fn is_on(store: &SharedStore) -> Result<bool, StoreError> {
    Ok(account(store).await?.is_some_and(|user| !user.disabled))
}

/// Whether `user` is the shared-password account (whose password only its installer changes).
pub async fn is_shared_account(store: &SharedStore, user: &User) -> Result<bool, StoreError> {
    Ok(store.setting(SETTING).await?.is_some_and(|id| id == user.id.0))
}

/// What [`install`] did, for the log and the import report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installed {
    Created,
    Changed,
    Unchanged,
}

/// Makes `password` the shared password: creates the account, or gives the existing one this password and
/// enables it. `actor` is who did it, for the audit log ("config", "import").
pub async fn install(
    store: &SharedStore,
    passwords: &Passwords,
    password: &Password,
    actor: &str,
    now: OffsetDateTime,
) -> Result<Installed, SharedPasswordError> {
    let existing = match account(store).await? {
        Some(user) => Some(user),
        None => match store.user_by_login(USERNAME).await? {
            // Someone's own account: never taken over.
            Some(_) => return Err(SharedPasswordError::NameTaken),
            None => None,
        },
    };
    let audit = |kind: AuditKind| AuditEvent::new(now, kind).actor(actor).subject(USERNAME).detail("shared_password");
    let Some(user) = existing else {
        let mut new = NewUser::by_admin(Username::parse(USERNAME).expect("a valid name"), None, String::new(), vec![]);
        new.password_hash = Some(hash_of(passwords, password).await?);
        let user = match store.create_user(new, now).await {
            Ok(user) => user,
            Err(StoreError::Conflict(_)) => return Err(SharedPasswordError::NameTaken),
            Err(err) => return Err(err.into()),
        };
        store.set_setting(SETTING, &user.id.0).await?;
        store.append_audit(&audit(AuditKind::UserCreated)).await?;
        return Ok(Installed::Created);
    };
    let mut outcome = Installed::Unchanged;
    if !already_set(passwords, password, user.password_hash.as_deref()).await? {
        store.set_password_hash(&user.id, &hash_of(passwords, password).await?, now).await?;
        store.append_audit(&audit(AuditKind::PasswordChanged)).await?;
        outcome = Installed::Changed;
    }
    if user.disabled {
        store.set_disabled(&user.id, false, now).await?;
        store.append_audit(&audit(AuditKind::UserEnabled)).await?;
        outcome = Installed::Changed;
    }
    Ok(outcome)
}

/// The hash to store: a configured hash as it is, a password hashed (argon2id).
async fn hash_of(passwords: &Passwords, password: &Password) -> Result<String, SharedPasswordError> {
    match password {
        Password::Hash(hash) => Ok(hash.clone()),
        Password::Plain(plain) => {
            passwords.hash(plain.clone()).await.map_err(|err| SharedPasswordError::Hash(err.to_string()))
        }
        Password::None => Err(SharedPasswordError::Invalid("is empty".into())),
    }
}

/// Whether the stored hash already stands for `password` (so a start does not re-hash, and sessions and the
/// audit log are left alone, when nothing changed).
async fn already_set(
    passwords: &Passwords,
    password: &Password,
    stored: Option<&str>,
) -> Result<bool, SharedPasswordError> {
    let Some(stored) = stored else { return Ok(false) };
    match password {
        Password::Hash(hash) => Ok(hash == stored),
        Password::Plain(plain) => {
            let verified = passwords.verify(plain.clone(), Some(stored.to_owned())).await;
            Ok(matches!(verified, Ok(Verification::Valid { .. })))
        }
        Password::None => Ok(false),
    }
}
