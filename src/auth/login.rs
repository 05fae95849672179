//! The sign-in use case: throttle check, password verification (with a dummy hash for unknown accounts so
//! timing and messages reveal nothing), bcrypt/weak-hash upgrade, a fresh session, audit and metrics.

use time::Duration;

use crate::clock::SharedClock;
use crate::domain::{AuditEvent, AuditKind, Session, SessionToken, User};
use crate::store::{SharedStore, StoreError};

use super::password::{PasswordError, Passwords, Verification};
use super::sessions::{ClientInfo, Sessions};
use super::throttle::LoginThrottle;

pub struct LoginAttempt {
    /// Username or email, as typed.
    pub login: String,
    pub password: String,
    pub remember_me: bool,
    pub client: ClientInfo,
    /// The shared password's form (`accounts::shared_password`): throttled per address only.
    pub shared: bool,
}

pub struct SignedIn {
    pub token: SessionToken,
    pub session: Session,
    pub user: User,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown account or wrong password; deliberately one case.
    #[error("incorrect username or password")]
    InvalidCredentials,
    /// Only reported after the correct password was given, so it reveals nothing to a guesser.
    #[error("account disabled")]
    Disabled,
    /// The password was right but the account waits for its email to be verified. Like `Disabled`, only
    /// reported after the correct password.
    #[error("email not verified yet")]
    Pending(Box<User>),
    #[error("too many attempts")]
    Throttled(Duration),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Password(#[from] PasswordError),
}

#[derive(Clone)]
pub struct Login {
    store: SharedStore,
    clock: SharedClock,
    passwords: Passwords,
    sessions: Sessions,
    throttle: LoginThrottle,
}

impl Login {
    pub fn new(
        store: SharedStore,
        clock: SharedClock,
        passwords: Passwords,
        sessions: Sessions,
        throttle: LoginThrottle,
    ) -> Self {
        Self { store, clock, passwords, sessions, throttle }
    }

    pub async fn sign_in(&self, attempt: LoginAttempt) -> Result<SignedIn, LoginError> {
        let account = attempt.login.trim().to_lowercase();
        let ip = attempt.client.ip.clone().unwrap_or_default();
        let result = self.try_sign_in(&account, &ip, attempt).await;
        let outcome = match &result {
            Ok(_) => "success",
            Err(LoginError::InvalidCredentials) => "invalid_credentials",
            Err(LoginError::Disabled) => "disabled",
            Err(LoginError::Pending(_)) => "pending",
            Err(LoginError::Throttled(_)) => "throttled",
            Err(_) => "error",
        };
        metrics::counter!("gatehouse_sign_ins_total", "outcome" => outcome).increment(1);
        if result.is_err() {
            // The typed name is left out on purpose: people sometimes type their password into it.
            // The audit log has the details.
            tracing::info!(outcome, client_ip = %ip, "sign-in refused");
        }
        result
    }

    async fn try_sign_in(&self, account: &str, ip: &str, attempt: LoginAttempt) -> Result<SignedIn, LoginError> {
        let audit = |kind: AuditKind| {
            AuditEvent::new(self.clock.now(), kind)
                .subject(account)
                .client(attempt.client.ip.clone(), attempt.client.user_agent.clone())
        };
        // One attempt per account at a time (per instance): parallel guesses queue here and meet the
        // throttle one by one, instead of all passing the check before any failure is counted.
        // Counters are keyed by the name as typed, for known and unknown accounts alike, so the throttle
        // cannot be used to learn which names or emails exist.
        let _turn = self.throttle.take_turn(account).await;
        let user = self.store.user_by_login(account).await?;
        if let Some(wait) = self.throttle.must_wait(account, ip, attempt.shared).await? {
            self.audit(audit(AuditKind::SignInFailed).detail("throttled")).await;
            return Err(LoginError::Throttled(wait));
        }
        let stored_hash = user.as_ref().and_then(|u| u.password_hash.clone());
        let verification = self.passwords.verify(attempt.password.clone(), stored_hash).await?;
        let (user, needs_rehash) = match (user, verification) {
            (Some(user), Verification::Valid { needs_rehash }) => (user, needs_rehash),
            (user, _) => {
                self.throttle.record_failure(account, ip, attempt.shared).await?;
                let reason = if user.is_some() { "bad_password" } else { "unknown_user" };
                self.audit(audit(AuditKind::SignInFailed).detail(reason)).await;
                return Err(LoginError::InvalidCredentials);
            }
        };
        // From here on the password was right, so the account's own name is the subject.
        let audit = |kind: AuditKind| {
            AuditEvent::new(self.clock.now(), kind)
                .subject(user.username.as_str())
                .actor(user.username.as_str())
                .client(attempt.client.ip.clone(), attempt.client.user_agent.clone())
        };
        self.throttle.record_success(account, ip).await?;
        if user.disabled {
            self.audit(audit(AuditKind::SignInFailed).detail("disabled")).await;
            return Err(LoginError::Disabled);
        }
        if user.is_pending() {
            self.audit(audit(AuditKind::SignInFailed).detail("pending_verification")).await;
            return Err(LoginError::Pending(Box::new(user)));
        }
        if needs_rehash {
            let new_hash = self.passwords.hash(attempt.password).await?;
            self.store.set_password_hash(&user.id, &new_hash, self.clock.now()).await?;
            self.audit(audit(AuditKind::PasswordRehashed).detail("argon2id")).await;
        }
        let (token, session) = self.sessions.start(&user, attempt.remember_me, &attempt.client).await?;
        self.store.record_login(&user.id, self.clock.now()).await?;
        self.audit(audit(AuditKind::SignIn).detail(if attempt.remember_me { "remember_me" } else { "session" })).await;
        Ok(SignedIn { token, session, user })
    }

    async fn audit(&self, event: AuditEvent) {
        if let Err(err) = self.store.append_audit(&event).await {
            tracing::error!(error = %err, kind = %event.kind, "could not write the audit log");
        }
    }
}
