//! Administration: what an administrator may do to other people's accounts, from the admin console or the
//! CLI, with the rules that keep an installation manageable and every action audited with who did it.
//!
//! The rules: nobody can remove their own administrator role, disable or delete themselves, and the last
//! enabled administrator can be neither demoted, disabled nor deleted (from the console or the CLI). Ending
//! sessions goes through [`Sessions`], so open tabs close at once on every instance.
//!
//! The web layer checks that the caller holds the admin role; this layer checks what the action does.

mod stats;

use std::sync::Arc;

pub use stats::{Dashboard, DaySeries};

use crate::accounts::{AccountError, Accounts};
use crate::auth::{ClientInfo, Passwords, Sessions};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::domain::password_policy::check_new_password;
use crate::domain::user::{normalize_roles, parse_display_name};
use crate::domain::{AuditEvent, AuditKind, Email, InvalidInput, NewUser, Role, SessionId, User, UserId, Username};
use crate::store::{SharedStore, StoreError};

/// Why an administrative action did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Bad input; the message is for the administrator who typed it.
    #[error("{0}")]
    Invalid(#[from] InvalidInput),
    /// The action would break a rule (the last administrator, one's own role); the message says which.
    #[error("{0}")]
    Refused(String),
    #[error("no such user")]
    NoSuchUser,
    #[error(transparent)]
    Store(StoreError),
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for AdminError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(field) => {
                AdminError::Invalid(InvalidInput::new(format!("That {field} is already taken.")))
            }
            StoreError::NotFound => AdminError::NoSuchUser,
            other => AdminError::Store(other),
        }
    }
}

impl From<AccountError> for AdminError {
    fn from(err: AccountError) -> Self {
        match err {
            AccountError::Invalid(problem) => AdminError::Invalid(problem),
            AccountError::Throttled(_) => {
                AdminError::Refused("Too many messages were sent to this account recently; try again later.".into())
            }
            AccountError::NotAllowed(message) => AdminError::Refused(message),
            AccountError::Store(err) => err.into(),
            AccountError::Internal(message) => AdminError::Internal(message),
        }
    }
}

pub type AdminResult<T> = Result<T, AdminError>;

/// Who is acting: an administrator's account (console) or the shell (`cli`, no account).
#[derive(Debug, Clone)]
pub struct Actor {
    pub name: String,
    pub user_id: Option<UserId>,
    pub client: ClientInfo,
}

impl Actor {
    pub fn user(user: &User, client: ClientInfo) -> Self {
        Self { name: user.username.as_str().to_owned(), user_id: Some(user.id.clone()), client }
    }

    pub fn cli() -> Self {
        Self { name: "cli".to_owned(), user_id: None, client: ClientInfo::default() }
    }

    fn is(&self, user: &User) -> bool {
        self.user_id.as_ref() == Some(&user.id)
    }
}

/// A new account as the console's form gives it.
pub struct CreateUser<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub name: &'a str,
    pub roles: Vec<Role>,
    /// Empty: no password is set and, when the account has an address, a reset link is mailed to choose one.
    pub password: &'a str,
}

#[derive(Clone)]
pub struct Admin {
    store: SharedStore,
    clock: SharedClock,
    sessions: Sessions,
    passwords: Passwords,
    accounts: Accounts,
    config: Arc<Config>,
}

impl Admin {
    pub fn new(
        store: SharedStore,
        clock: SharedClock,
        sessions: Sessions,
        passwords: Passwords,
        accounts: Accounts,
        config: Arc<Config>,
    ) -> Self {
        Self { store, clock, sessions, passwords, accounts, config }
    }

    /// The role that opens the admin console.
    pub fn admin_role(&self) -> &Role {
        &self.config.admin.role
    }

    pub async fn user(&self, id: &UserId) -> AdminResult<User> {
        self.store.user_by_id(id).await?.ok_or(AdminError::NoSuchUser)
    }

    pub async fn user_by_name(&self, username: &str) -> AdminResult<User> {
        let name = Username::parse(username)?;
        match self.store.user_by_login(name.as_str()).await? {
            Some(user) if user.username == name => Ok(user),
            _ => Err(AdminError::NoSuchUser),
        }
    }

    pub async fn create_user(&self, actor: &Actor, form: CreateUser<'_>) -> AdminResult<User> {
        let username = Username::parse(form.username)?;
        let email = Some(form.email.trim()).filter(|e| !e.is_empty()).map(Email::parse).transpose()?;
        let display_name = parse_display_name(form.name)?;
        let password_hash = if form.password.is_empty() {
            None
        } else {
            let email = email.as_ref().map(Email::as_str);
            check_new_password(form.password, self.config.password.min_length, username.as_str(), email)?;
            Some(self.passwords.hash(form.password.to_owned()).await.map_err(|e| AdminError::Internal(e.to_string()))?)
        };
        let without_password = password_hash.is_none();
        let roles = normalize_roles(form.roles);
        let new = NewUser { password_hash, ..NewUser::by_admin(username, email, display_name, roles.clone()) };
        let user = self.store.create_user(new, self.clock.now()).await?;
        self.audit(actor, AuditKind::UserCreated, &user, &roles_detail(&roles)).await;
        if without_password && user.email.is_some() {
            self.accounts.send_reset_link_as_admin(&user, &actor.name, &actor.client).await?;
        }
        Ok(user)
    }

    /// Display name and email; an address set here counts as verified (the administrator vouches for it).
    pub async fn update_profile(&self, actor: &Actor, user: &User, name: &str, email: &str) -> AdminResult<User> {
        let display_name = parse_display_name(name)?;
        let email = Some(email.trim()).filter(|e| !e.is_empty()).map(Email::parse).transpose()?;
        self.store.set_profile(&user.id, &display_name, email.as_ref(), self.clock.now()).await?;
        self.sessions.refresh_user(&user.id);
        let mut changed = Vec::new();
        if display_name != user.display_name {
            changed.push("name");
        }
        if email != user.email {
            changed.push("email");
        }
        self.audit(actor, AuditKind::UserUpdated, user, &changed.join(",")).await;
        self.user(&user.id).await
    }

    pub async fn set_roles(&self, actor: &Actor, user: &User, roles: Vec<Role>) -> AdminResult<User> {
        let roles = normalize_roles(roles);
        let admin = self.admin_role();
        if user.roles.contains(admin) && !roles.contains(admin) {
            if actor.is(user) {
                return Err(AdminError::Refused(format!(
                    "You cannot remove your own '{admin}' role; another administrator has to."
                )));
            }
            self.refuse_if_last_admin(user, "remove the administrator role of").await?;
        }
        self.store.set_roles(&user.id, &roles, self.clock.now()).await?;
        self.sessions.refresh_user(&user.id);
        self.audit(actor, AuditKind::RolesChanged, user, &roles_detail(&roles)).await;
        self.user(&user.id).await
    }

    /// Disabling ends every session of the account at once (open tabs close).
    pub async fn set_disabled(&self, actor: &Actor, user: &User, disabled: bool) -> AdminResult<usize> {
        if disabled {
            if actor.is(user) {
                return Err(AdminError::Refused("You cannot disable your own account.".into()));
            }
            self.refuse_if_last_admin(user, "disable").await?;
        }
        self.store.set_disabled(&user.id, disabled, self.clock.now()).await?;
        let ended = if disabled { self.sessions.end_all_for_user(&user.id).await? } else { 0 };
        self.sessions.refresh_user(&user.id);
        let kind = if disabled { AuditKind::UserDisabled } else { AuditKind::UserEnabled };
        let detail = if disabled { format!("sessions_ended={ended}") } else { String::new() };
        self.audit(actor, kind, user, &detail).await;
        Ok(ended)
    }

    pub async fn delete_user(&self, actor: &Actor, user: &User) -> AdminResult<usize> {
        if actor.is(user) {
            return Err(AdminError::Refused("You cannot delete your own account.".into()));
        }
        self.refuse_if_last_admin(user, "delete").await?;
        // Sessions first, through `Sessions`, so their tunnels close here and on every other instance.
        let ended = self.sessions.end_all_for_user(&user.id).await?;
        self.store.delete_user(&user.id).await?;
        self.audit(actor, AuditKind::UserDeleted, user, &format!("sessions_ended={ended}")).await;
        Ok(ended)
    }

    /// Sets a password for the account (the CLI's `users passwd`); every session of the account ends.
    pub async fn set_password(&self, actor: &Actor, user: &User, password: &str) -> AdminResult<usize> {
        let email = user.email.as_ref().map(Email::as_str);
        check_new_password(password, self.config.password.min_length, user.username.as_str(), email)?;
        let hash = self.passwords.hash(password.to_owned()).await.map_err(|e| AdminError::Internal(e.to_string()))?;
        self.store.set_password_hash(&user.id, &hash, self.clock.now()).await?;
        let ended = self.sessions.end_all_for_user(&user.id).await?;
        self.audit(actor, AuditKind::PasswordChanged, user, &format!("sessions_ended={ended}")).await;
        Ok(ended)
    }

    pub async fn send_reset_link(&self, actor: &Actor, user: &User) -> AdminResult<()> {
        Ok(self.accounts.send_reset_link_as_admin(user, &actor.name, &actor.client).await?)
    }

    /// Ends one session of `user`; a session of anyone else is refused.
    pub async fn end_session(&self, actor: &Actor, user: &User, id: &SessionId) -> AdminResult<()> {
        let owned = self.store.sessions_for_user(&user.id).await?.iter().any(|s| &s.id == id);
        if !owned {
            return Err(AdminError::Refused("That session does not exist (it may have ended already).".into()));
        }
        self.sessions.end(id).await?;
        self.audit(actor, AuditKind::SessionEnded, user, "by_admin").await;
        Ok(())
    }

    pub async fn end_all_sessions(&self, actor: &Actor, user: &User) -> AdminResult<usize> {
        let ended = self.sessions.end_all_for_user(&user.id).await?;
        self.audit(actor, AuditKind::SessionEnded, user, &format!("by_admin_all={ended}")).await;
        Ok(ended)
    }

    pub async fn invite(&self, actor: &Actor, email: &str, roles: Vec<Role>) -> AdminResult<String> {
        let email = Email::parse(email)?;
        Ok(self.accounts.invite(email, normalize_roles(roles), &actor.name, &actor.client, true).await?)
    }

    pub async fn revoke_invite(&self, actor: &Actor, id: &str) -> AdminResult<()> {
        let invite = self.store.list_invites().await?.into_iter().find(|i| i.id == id);
        let Some(invite) = invite else {
            return Err(AdminError::Refused("That invitation does not exist (it may have been used).".into()));
        };
        if self.store.revoke_invite(id).await? {
            let event = AuditEvent::new(self.clock.now(), AuditKind::InviteRevoked)
                .actor(actor.name.as_str())
                .subject(invite.email.as_str())
                .client(actor.client.ip.clone(), actor.client.user_agent.clone());
            self.append(event).await;
        }
        Ok(())
    }

    async fn refuse_if_last_admin(&self, user: &User, action: &str) -> AdminResult<()> {
        let admin = self.admin_role();
        let counts = user.roles.contains(admin) && !user.disabled && !user.is_pending();
        if counts && self.store.count_enabled_with_role(admin).await? <= 1 {
            return Err(AdminError::Refused(format!(
                "{} is the last administrator; you cannot {action} them. Give someone else the '{admin}' role first.",
                user.username
            )));
        }
        Ok(())
    }

    async fn audit(&self, actor: &Actor, kind: AuditKind, subject: &User, detail: &str) {
        let mut event = AuditEvent::new(self.clock.now(), kind)
            .actor(actor.name.as_str())
            .subject(subject.username.as_str())
            .client(actor.client.ip.clone(), actor.client.user_agent.clone());
        if !detail.is_empty() {
            event = event.detail(detail);
        }
        self.append(event).await;
    }

    /// Audit failures are logged, never shown: the change itself has already happened.
    async fn append(&self, event: AuditEvent) {
        if let Err(err) = self.store.append_audit(&event).await {
            tracing::error!(error = %err, kind = %event.kind, "could not write the audit log");
        }
    }
}

fn roles_detail(roles: &[Role]) -> String {
    roles.iter().map(Role::as_str).collect::<Vec<_>>().join(",")
}
