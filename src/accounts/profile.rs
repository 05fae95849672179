//! What people change on their account page: display name, email (proven before it replaces the old one,
//! and the old one is told), password (the current one required; other sessions end), and their sessions.
//! Changing the email or password asks for the current password, so a borrowed, still-signed-in browser
//! cannot take the account over.

use time::Duration;

use super::{AccountError, AccountResult, Accounts};
use crate::auth::ClientInfo;
use crate::auth::form_throttle::Limit;
use crate::auth::password::Verification;
use crate::domain::password_policy::check_new_password;
use crate::domain::user::parse_display_name;
use crate::domain::{AuditKind, ChallengePurpose, Email, InvalidInput, Session, SessionId, User};

/// Current-password checks per account: a stolen session must not become a password-guessing oracle.
const PASSWORD_CHECKS_PER_ACCOUNT: Limit = Limit { max: 5, window: Duration::minutes(15), min_gap: Duration::ZERO };

/// A requested email change: continue on the verify page with this challenge.
pub struct EmailChangeRequest {
    pub challenge_id: String,
    pub email: Email,
}

impl Accounts {
    pub async fn change_display_name(&self, user: &User, name: &str, client: &ClientInfo) -> AccountResult<()> {
        let name = parse_display_name(name)?;
        self.store.set_display_name(&user.id, &name, self.clock.now()).await?;
        // The cached identity (and so the headers the app sees) must show the new name at once.
        self.sessions.refresh_user(&user.id);
        let who = user.username.as_str();
        self.audit(AuditKind::ProfileChanged, Some(who), who, client, "display_name").await;
        Ok(())
    }

    /// Sends a code to the new address; the account keeps the old one until it is entered.
    pub async fn request_email_change(
        &self,
        user: &User,
        new_email: &str,
        current_password: &str,
        client: &ClientInfo,
    ) -> AccountResult<EmailChangeRequest> {
        let email = Email::parse(new_email)?;
        if user.email.as_ref() == Some(&email) {
            return Err(InvalidInput::new("That is already your email address.").into());
        }
        let signup = &self.config.signup;
        if signup.mode == crate::config::SignupMode::Open && !signup.domain_allowed(&email) {
            let domains = signup.allowed_email_domains.join(", ");
            return Err(InvalidInput::new(format!("Only addresses at {domains} can be used here.")).into());
        }
        self.check_current_password(user, current_password).await?;
        let who = user.username.as_str();
        if self.store.user_by_email(&email).await?.is_some() {
            // Not said on the page (it would tell who has an account): a decoy challenge, whose code never
            // arrives, answers like a real one.
            let challenge_id = self.decoy_challenge(ChallengePurpose::EmailChange, &email).await?;
            self.audit(AuditKind::EmailChangeRequested, Some(who), who, client, "address_taken").await;
            return Ok(EmailChangeRequest { challenge_id, email });
        }
        let challenge_id = self.send_challenge(user, ChallengePurpose::EmailChange, &email).await?;
        self.audit(AuditKind::EmailChangeRequested, Some(who), who, client, email.as_str()).await;
        Ok(EmailChangeRequest { challenge_id, email })
    }

    /// Changes the password and ends every other session of the account (the current one stays).
    pub async fn change_password(
        &self,
        user: &User,
        current_session: &SessionId,
        current_password: &str,
        new_password: &str,
        client: &ClientInfo,
    ) -> AccountResult<usize> {
        self.check_current_password(user, current_password).await?;
        let email = user.email.as_ref().map(|e| e.as_str());
        check_new_password(new_password, self.config.password.min_length, user.username.as_str(), email)?;
        let hash = self.hash(new_password).await?;
        self.store.set_password_hash(&user.id, &hash, self.clock.now()).await?;
        // A reset link still waiting in a mailbox must not undo this.
        self.store.delete_one_time_tokens_for(super::recovery::RESET_PURPOSE, &user.id.0).await?;
        let ended = self.end_sessions_except(user, current_session).await?;
        let who = user.username.as_str();
        self.audit(AuditKind::PasswordChanged, Some(who), who, client, &format!("other_sessions_ended={ended}")).await;
        self.notify_password_changed(user);
        Ok(ended)
    }

    /// The account's sessions, most recently used first.
    pub async fn sessions_of(&self, user: &User) -> AccountResult<Vec<Session>> {
        let now = self.clock.now();
        let mut sessions: Vec<Session> =
            self.store.sessions_for_user(&user.id).await?.into_iter().filter(|s| s.is_valid_at(now)).collect();
        sessions.sort_by_key(|s| std::cmp::Reverse(s.last_seen_at));
        Ok(sessions)
    }

    /// Ends one of the account's own sessions; a session of anyone else is "not found".
    pub async fn end_own_session(&self, user: &User, id: &SessionId, client: &ClientInfo) -> AccountResult<()> {
        let owned = self.store.sessions_for_user(&user.id).await?.iter().any(|s| &s.id == id);
        if !owned {
            return Err(AccountError::NotAllowed("That session does not exist (it may have ended already).".into()));
        }
        self.sessions.end(id).await?;
        let who = user.username.as_str();
        self.audit(AuditKind::SessionEnded, Some(who), who, client, "account_page").await;
        Ok(())
    }

    /// "End all other sessions" on the account page: every session of the account except `keep`; returns
    /// how many ended.
    pub async fn end_other_sessions(&self, user: &User, keep: &SessionId, client: &ClientInfo) -> AccountResult<usize> {
        let ended = self.end_sessions_except(user, keep).await?;
        let who = user.username.as_str();
        self.audit(AuditKind::SessionEnded, Some(who), who, client, &format!("account_page_others={ended}")).await;
        Ok(ended)
    }

    async fn end_sessions_except(&self, user: &User, keep: &SessionId) -> AccountResult<usize> {
        let mut ended = 0;
        for session in self.store.sessions_for_user(&user.id).await? {
            if &session.id != keep && self.sessions.end(&session.id).await? {
                ended += 1;
            }
        }
        Ok(ended)
    }

    async fn check_current_password(&self, user: &User, password: &str) -> AccountResult<()> {
        self.limit("current-password", &user.id.0, PASSWORD_CHECKS_PER_ACCOUNT).await?;
        let verification = self
            .passwords
            .verify(password.to_owned(), user.password_hash.clone())
            .await
            .map_err(|e| AccountError::Internal(e.to_string()))?;
        match verification {
            Verification::Valid { .. } => Ok(()),
            Verification::Invalid => Err(InvalidInput::new("Your current password is not right.").into()),
        }
    }
}
