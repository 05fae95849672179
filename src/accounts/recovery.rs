//! Forgot password and forgot username. Both answer the same whatever was typed and act only by mail, so
//! they reveal nothing about which accounts exist. A reset link is single use, lives
//! `password.reset_link_lifetime` (30 minutes by default), is stored hashed, and setting the new password
//! ends every session of the account and every other reset link.

use super::{AccountError, AccountResult, Accounts, ip_key};
use crate::auth::ClientInfo;
use crate::auth::form_throttle::Limit;
use crate::domain::password_policy::check_new_password;
use crate::domain::{AuditKind, Email, TokenHash, User, UserId};
use crate::store::OneTimeToken;

pub const RESET_PURPOSE: &str = "password_reset";

/// Recovery requests per client IP and hour, and per account (more would be mail-bombing the owner).
const REQUESTS_PER_IP: Limit = Limit::per_hour(20);
const MAILS_PER_ACCOUNT: Limit = Limit::per_hour(3);
/// Reset submissions per client IP and hour (tokens are unguessable; this bounds the work).
const RESETS_PER_IP: Limit = Limit::per_hour(30);

impl Accounts {
    /// Mails a reset link if `login` (username or email) names an active account with an address.
    pub async fn forgot_password(&self, login: &str, client: &ClientInfo) -> AccountResult<()> {
        self.limit("forgot", &ip_key(client), REQUESTS_PER_IP).await?;
        let login = login.trim();
        if login.is_empty() || login.len() > 254 {
            return Ok(());
        }
        let Some(user) = self.store.user_by_login(login).await? else { return Ok(()) };
        // The rest happens after the answer, so an existing account does not answer more slowly.
        let accounts = self.clone();
        let client = client.clone();
        tokio::spawn(async move {
            if let Err(err) = accounts.send_reset_link(user, &client).await {
                tracing::error!(error = %err, "could not send a password-reset link");
            }
        });
        Ok(())
    }

    async fn send_reset_link(&self, user: User, client: &ClientInfo) -> AccountResult<()> {
        let Some(email) = self.recoverable_address(&user) else { return Ok(()) };
        if self.limits.hit("recovery-mail", &user.id.0, MAILS_PER_ACCOUNT).await?.is_err() {
            return Ok(());
        }
        self.mail_reset_link(&user, &email, None, client).await
    }

    /// An administrator sends `user` a reset link (also how an account created without a password gets one).
    /// Refused for accounts that are disabled, pending or without an address; the per-account mail limit
    /// applies, so the console cannot be used to flood someone's inbox either.
    pub async fn send_reset_link_as_admin(&self, user: &User, actor: &str, client: &ClientInfo) -> AccountResult<()> {
        let Some(email) = self.recoverable_address(user) else {
            return Err(AccountError::NotAllowed(
                "A reset link can only be sent to an enabled, verified account with an email address.".into(),
            ));
        };
        self.limit("recovery-mail", &user.id.0, MAILS_PER_ACCOUNT).await?;
        self.mail_reset_link(user, &email, Some(actor), client).await
    }

    async fn mail_reset_link(
        &self,
        user: &User,
        email: &Email,
        actor: Option<&str>,
        client: &ClientInfo,
    ) -> AccountResult<()> {
        let now = self.clock.now();
        let lifetime = time::Duration::try_from(self.config.password.reset_link_lifetime).unwrap_or_default();
        let token = crate::random::url_token(32);
        // One live link at a time: the newest message is the one that works.
        self.store.delete_one_time_tokens_for(RESET_PURPOSE, &user.id.0).await?;
        self.store
            .create_one_time_token(&OneTimeToken {
                token_hash: TokenHash::of(&token),
                purpose: RESET_PURPOSE.to_owned(),
                subject: Some(user.id.0.clone()),
                created_at: now,
                expires_at: now + lifetime,
            })
            .await?;
        let link = self.link("/_gatehouse/reset-password", "token", &token);
        let context = minijinja::context! {
            name => user.name_for_display(), username => user.username.as_str(), link => &link,
            minutes => lifetime.whole_minutes(), app_url => self.app_url(),
        };
        self.mailer.send("reset_password", email, context);
        let name = user.username.as_str();
        let detail = if actor.is_some() { "sent_by_admin" } else { "" };
        self.audit(AuditKind::PasswordResetRequested, actor, name, client, detail).await;
        Ok(())
    }

    /// Mails the username to `email` if it belongs to an active account.
    pub async fn forgot_username(&self, email: &str, client: &ClientInfo) -> AccountResult<()> {
        self.limit("forgot", &ip_key(client), REQUESTS_PER_IP).await?;
        let Ok(email) = Email::parse(email) else { return Ok(()) };
        let Some(user) = self.store.user_by_email(&email).await? else { return Ok(()) };
        let accounts = self.clone();
        let client = client.clone();
        tokio::spawn(async move {
            if let Err(err) = accounts.send_username(user, email, &client).await {
                tracing::error!(error = %err, "could not send a username reminder");
            }
        });
        Ok(())
    }

    async fn send_username(&self, user: User, email: Email, client: &ClientInfo) -> AccountResult<()> {
        if self.recoverable_address(&user).is_none()
            || self.limits.hit("recovery-mail", &user.id.0, MAILS_PER_ACCOUNT).await?.is_err()
        {
            return Ok(());
        }
        let context = minijinja::context! { username => user.username.as_str(), app_url => self.app_url() };
        self.mailer.send("username_reminder", &email, context);
        self.audit(AuditKind::UsernameReminderRequested, None, user.username.as_str(), client, "").await;
        Ok(())
    }

    /// The account a reset link is for, if the link is valid (the page shows the form only then).
    pub async fn reset_link_user(&self, token: &str) -> AccountResult<Option<User>> {
        Ok(self.valid_reset_token(token).await?.map(|(_, user)| user))
    }

    /// Sets a new password through a reset link: uses the link up, ends every session of the account.
    pub async fn reset_password(&self, token: &str, password: &str, client: &ClientInfo) -> AccountResult<User> {
        self.limit("reset", &ip_key(client), RESETS_PER_IP).await?;
        let invalid =
            || AccountError::NotAllowed("This reset link is invalid, used or expired. Ask for a new one.".into());
        let (hash, user) = self.valid_reset_token(token).await?.ok_or_else(invalid)?;
        let email = user.email.as_ref().map(|e| e.as_str());
        // Checked before the link is used up, so a refused password can be corrected on the same page.
        check_new_password(password, self.config.password.min_length, user.username.as_str(), email)?;
        let new_hash = self.hash(password).await?;
        let now = self.clock.now();
        if self.store.consume_one_time_token(RESET_PURPOSE, &hash, now).await?.is_none() {
            return Err(invalid());
        }
        self.store.set_password_hash(&user.id, &new_hash, now).await?;
        self.store.delete_one_time_tokens_for(RESET_PURPOSE, &user.id.0).await?;
        let ended = self.sessions.end_all_for_user(&user.id).await?;
        let name = user.username.as_str();
        self.audit(AuditKind::PasswordReset, Some(name), name, client, &format!("sessions_ended={ended}")).await;
        self.notify_password_changed(&user);
        Ok(user)
    }

    async fn valid_reset_token(&self, token: &str) -> AccountResult<Option<(TokenHash, User)>> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        let hash = TokenHash::of(token);
        let Some(stored) = self.store.one_time_token(RESET_PURPOSE, &hash).await? else { return Ok(None) };
        if stored.expires_at <= self.clock.now() {
            return Ok(None);
        }
        let Some(user_id) = stored.subject else { return Ok(None) };
        let user = self.store.user_by_id(&UserId(user_id)).await?;
        Ok(user.filter(|u| self.recoverable_address(u).is_some()).map(|u| (hash, u)))
    }

    /// Where recovery mail for `user` may go: only active accounts with an address.
    fn recoverable_address(&self, user: &User) -> Option<Email> {
        if user.disabled || user.is_pending() { None } else { user.email.clone() }
    }

    pub(super) fn notify_password_changed(&self, user: &User) {
        if let Some(email) = &user.email {
            let context = minijinja::context! {
                name => user.name_for_display(), username => user.username.as_str(), app_url => self.app_url(),
            };
            self.mailer.send("password_changed", email, context);
        }
    }
}
