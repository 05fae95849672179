//! Proving an email address (after registration, or for a new address on the account page): one message with
//! a 6-digit code and a link; either completes the challenge, once. Codes allow
//! [`MAX_CODE_ATTEMPTS`](crate::domain::email_challenge::MAX_CODE_ATTEMPTS) guesses per challenge and every
//! client a bounded number per hour; "send a new code" is limited per account.
//!
//! Unknown challenge ids are treated like real ones whose code is wrong (see `registration::address_taken`).

use time::Duration;

use super::{AccountError, AccountResult, Accounts, ip_key};
use crate::auth::ClientInfo;
use crate::auth::form_throttle::Limit;
use crate::domain::email_challenge::CHALLENGE_LIFETIME;
use crate::domain::{
    AuditKind, ChallengePurpose, Email, EmailChallenge, InvalidInput, Session, SessionToken, TokenHash, User,
};
use crate::store::StoreError;

/// Code guesses per client IP and hour, across all challenges.
const CODE_TRIES_PER_IP: Limit = Limit::per_hour(30);
/// New codes per account: one a minute, five an hour.
const RESENDS_PER_ACCOUNT: Limit = Limit::per_hour(5).with_gap(Duration::minutes(1));

pub enum Verified {
    /// A registration was completed: the account is active and now signed in.
    Registered { user: User, token: SessionToken, session: Session },
    /// The account's email was replaced by the proven one.
    EmailChanged { user: User },
}

const WRONG_CODE: &str = "That code is not right, or it has expired. Check the latest message, or ask for a new code.";

impl Accounts {
    /// Creates a challenge for `email`, mails it and returns its id.
    pub(super) async fn send_challenge(
        &self,
        user: &User,
        purpose: ChallengePurpose,
        email: &Email,
    ) -> AccountResult<String> {
        let (challenge, secrets) = EmailChallenge::new(user.id.clone(), purpose, email.clone(), self.clock.now());
        self.store.create_email_challenge(&challenge).await?;
        let link = self.link("/_gatehouse/verify", "token", &secrets.link_token);
        let kind = match purpose {
            ChallengePurpose::Registration => "verify_email",
            ChallengePurpose::EmailChange => "confirm_new_email",
        };
        let context = minijinja::context! {
            name => user.name_for_display(), username => user.username.as_str(), code => &secrets.code, link => &link,
            minutes => CHALLENGE_LIFETIME.whole_minutes(), app_url => self.app_url(),
        };
        self.mailer.send(kind, email, context);
        Ok(challenge.id)
    }

    /// The address a challenge proves, for the verify page ("we sent a code to ..."), if it is still open.
    pub async fn challenge_email(&self, challenge_id: &str) -> AccountResult<Option<Email>> {
        if !is_plausible_id(challenge_id) {
            return Ok(None);
        }
        let challenge = self.store.email_challenge(challenge_id).await?;
        Ok(challenge.filter(|c| c.is_open_at(self.clock.now())).map(|c| c.email))
    }

    /// Checks a typed code and, when right, completes the challenge.
    pub async fn verify_code(&self, challenge_id: &str, code: &str, client: &ClientInfo) -> AccountResult<Verified> {
        self.limit("verify-code", ip_key(client), CODE_TRIES_PER_IP).await?;
        let challenge = match is_plausible_id(challenge_id) {
            true => self.store.email_challenge(challenge_id).await?,
            false => None,
        };
        let Some(challenge) = challenge.filter(|c| c.is_open_at(self.clock.now())) else {
            return Err(InvalidInput::new(WRONG_CODE).into());
        };
        if !challenge.code_matches(code) {
            let attempts = self.store.record_email_challenge_attempt(&challenge.id).await?;
            let left = crate::domain::email_challenge::MAX_CODE_ATTEMPTS - attempts;
            let message = if left > 0 {
                format!("That code is not right. {left} attempt(s) left.")
            } else {
                "That code is not right, and this one cannot be tried again. Ask for a new code.".to_owned()
            };
            return Err(InvalidInput::new(message).into());
        }
        self.complete(challenge, client).await
    }

    /// Completes the challenge a mailed link stands for.
    pub async fn verify_link(&self, token: &str, client: &ClientInfo) -> AccountResult<Verified> {
        let invalid = || AccountError::NotAllowed("This link is invalid, used or expired. Ask for a new code.".into());
        if token.is_empty() || token.len() > 128 {
            return Err(invalid());
        }
        let challenge = self.store.email_challenge_by_link(&TokenHash::of(token)).await?;
        let challenge = challenge.filter(|c| c.is_open_at(self.clock.now())).ok_or_else(invalid)?;
        self.complete(challenge, client).await
    }

    /// Sends a new code for the same address (replacing the old challenge); returns the new challenge id.
    /// For an unknown id nothing is sent and a made-up id is returned, as for a real one.
    pub async fn resend(&self, challenge_id: &str) -> AccountResult<String> {
        let challenge = match is_plausible_id(challenge_id) {
            true => self.store.email_challenge(challenge_id).await?,
            false => None,
        };
        let Some(challenge) = challenge else {
            return Ok(crate::random::hex_token(16));
        };
        self.limit("resend-code", &challenge.user_id.0, RESENDS_PER_ACCOUNT).await?;
        let user = self.store.user_by_id(&challenge.user_id).await?.ok_or(StoreError::NotFound)?;
        self.send_challenge(&user, challenge.purpose, &challenge.email).await
    }

    /// For a pending account that just gave its correct password: the open challenge to continue with, or a
    /// new one (limited like "resend").
    pub async fn challenge_for_pending(&self, user: &User) -> AccountResult<String> {
        let open = self.store.latest_email_challenge(&user.id, ChallengePurpose::Registration).await?;
        if let Some(challenge) = open.filter(|c| c.is_open_at(self.clock.now())) {
            return Ok(challenge.id);
        }
        let email = user.email.clone().ok_or_else(|| AccountError::Internal("pending account without email".into()))?;
        self.limit("resend-code", &user.id.0, RESENDS_PER_ACCOUNT).await?;
        self.send_challenge(user, ChallengePurpose::Registration, &email).await
    }

    async fn complete(&self, challenge: EmailChallenge, client: &ClientInfo) -> AccountResult<Verified> {
        // Used up first: of two racing completions (code and link at once) only one goes on.
        if !self.store.take_email_challenge(&challenge.id).await? {
            return Err(InvalidInput::new(WRONG_CODE).into());
        }
        let now = self.clock.now();
        let user = self.store.user_by_id(&challenge.user_id).await?.ok_or(StoreError::NotFound)?;
        let name = user.username.as_str().to_owned();
        match challenge.purpose {
            ChallengePurpose::Registration => {
                self.store.activate_user(&user.id, &[], now).await?;
                self.audit(AuditKind::EmailVerified, Some(&name), &name, client, "registration").await;
                let user = self.store.user_by_id(&user.id).await?.ok_or(StoreError::NotFound)?;
                let (token, session) = self.sessions.start(&user, false, client).await?;
                Ok(Verified::Registered { user, token, session })
            }
            ChallengePurpose::EmailChange => {
                match self.store.set_verified_email(&user.id, &challenge.email, now).await {
                    Ok(()) => {}
                    Err(StoreError::Conflict(_)) => {
                        return Err(InvalidInput::new(
                            "This address now belongs to another account, so it cannot be used for yours.",
                        )
                        .into());
                    }
                    Err(err) => return Err(err.into()),
                }
                // The app must see the new address on the very next request.
                self.sessions.refresh_user(&user.id);
                let old = user.email.as_ref().map(|e| e.as_str()).unwrap_or("-");
                let detail = format!("{old} -> {}", challenge.email);
                self.audit(AuditKind::EmailChanged, Some(&name), &name, client, &detail).await;
                if let Some(old) = &user.email {
                    let context = minijinja::context! {
                        name => user.name_for_display(), username => &name, new_email => challenge.email.as_str(),
                        app_url => self.app_url(),
                    };
                    self.mailer.send("email_changed", old, context);
                }
                let user = self.store.user_by_id(&user.id).await?.ok_or(StoreError::NotFound)?;
                Ok(Verified::EmailChanged { user })
            }
        }
    }
}

/// Challenge ids are 32 hex characters; anything else is not looked up.
fn is_plausible_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}
