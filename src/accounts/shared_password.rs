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
/// else is the password itself, exactly as written (spaces included), and must have `min_length` characters
/// (`[password] min_length`): one password guards everything, and throttling counts per address only.
pub fn parse(raw: &str, min_length: usize) -> Result<Password, SharedPasswordError> {
    match classify_password(raw).map_err(SharedPasswordError::Invalid)? {
        Password::None => Err(SharedPasswordError::Invalid("is empty".into())),
        Password::Plain(_) if raw.chars().count() < min_length => Err(SharedPasswordError::Invalid(format!(
            "is shorter than {min_length} characters ([password] min_length); a long random one is best"
        ))),
        Password::Plain(_) => Ok(Password::Plain(raw.to_owned())),
        hash => Ok(hash),
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
    /// A new password: every session signed in with the old one was ended.
    Changed,
    Unchanged,
    /// An administrator disabled the account (`gatehouse users disable shared`): it stays off, and so does the
    /// shared password, until someone enables it again.
    Disabled,
}

/// Makes `password` the shared password: creates the account, or gives the existing one this password (ending
/// the sessions signed in with the old one, so changing it is how people are shut out). A disabled account
/// is left disabled: turning the shared password off is an administrator's decision a restart must not undo.
/// `actor` is who did it, for the audit log ("config", "import").
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
    if user.disabled {
        return Ok(Installed::Disabled);
    }
    if already_set(passwords, password, user.password_hash.as_deref()).await? {
        return Ok(Installed::Unchanged);
    }
    store.set_password_hash(&user.id, &hash_of(passwords, password).await?, now).await?;
    // Deleted in the store: running servers hear of it like any other ended session and close the tabs.
    let ended = store.delete_user_sessions(&user.id).await?;
    store
        .append_audit(
            &audit(AuditKind::PasswordChanged).detail(format!("shared_password; {} session(s) ended", ended.len())),
        )
        .await?;
    Ok(Installed::Changed)
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
