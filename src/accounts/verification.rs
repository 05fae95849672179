//! Proving an email address (after registration, or for a new address on the account page): one message with
//! a 6-digit code and a link; either completes the challenge, once.
//!
//! - Every code attempt is counted *before* the code is compared, in one statement
//!   ([`claim_code_attempt`](crate::store::AccountStore::claim_code_attempt)), so parallel guesses cannot get
//!   past [`MAX_CODE_ATTEMPTS`](crate::domain::email_challenge::MAX_CODE_ATTEMPTS); clients are limited per
//!   IP (per /64 for IPv6) besides.
//! - "Send a new code" is limited per address, and so is mail to addresses nobody has proven yet.
//! - Decoy challenges (for addresses that already have an account) answer exactly like real ones: they count
//!   attempts, expire, can be "resent", and never complete. One message for every wrong code.
//! - A link confirms a registration but does not sign the clicking browser in (it may not be the one that
//!   registered); an email change completes only in a browser signed in to the account that asked for it.

use time::Duration;

use super::{AccountError, AccountResult, Accounts, ip_key};
use crate::auth::ClientInfo;
use crate::auth::form_throttle::Limit;
use crate::domain::email_challenge::CHALLENGE_LIFETIME;
use crate::domain::{
    AuditKind, ChallengePurpose, Email, EmailChallenge, InvalidInput, Session, SessionToken, TokenHash, User, UserId,
};
use crate::store::{OneTimeToken, StoreError};

/// Code guesses per client (IP, or IPv6 /64) and hour, across all challenges.
const CODE_TRIES_PER_IP: Limit = Limit::per_hour(30);
/// New codes per address: one a minute, five an hour (real and decoy challenges alike).
const RESENDS_PER_ADDRESS: Limit = Limit::per_hour(5).with_gap(Duration::minutes(1));
/// Messages to an address nobody has proven yet, per hour, whatever causes them.
pub(super) const MAILS_PER_UNPROVEN_ADDRESS: Limit = Limit::per_hour(5);

pub enum Verified {
    /// A registration was completed with the code, in the browser that registered: it is now signed in.
    Registered { user: User, token: SessionToken, session: Session },
    /// A registration was completed through the emailed link: the account is active; sign in to use it.
    RegistrationConfirmed { user: User },
    /// The account's email was replaced by the proven one.
    EmailChanged { user: User },
    /// The code was typed after the address had already been confirmed another way (the link, on another
    /// device): nothing to do but go on.
    AlreadyConfirmed { purpose: ChallengePurpose },
}

/// One-time tokens of this purpose remember, until the challenge would have expired, that a challenge was
/// completed, so a code typed afterwards in the first tab hears "already confirmed" rather than "wrong".
const CONFIRMED: &str = "confirmed-challenge";

/// How the challenge was answered.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    Code,
    Link,
}

const WRONG_CODE: &str = "That code is not right, or it has expired. Check the newest message, or ask for a new code.";

impl Accounts {
    /// Creates a challenge for `email`, mails it and returns its id.
    pub(super) async fn send_challenge(
        &self,
        user: &User,
        purpose: ChallengePurpose,
        email: &Email,
    ) -> AccountResult<String> {
        let (challenge, secrets) = EmailChallenge::new(Some(user.id.clone()), purpose, email.clone(), self.clock.now());
        self.store.create_email_challenge(&challenge).await?;
        if self.limits.hit("mail-unproven", email.as_str(), MAILS_PER_UNPROVEN_ADDRESS).await?.is_err() {
            tracing::warn!(to = %email, "not mailing another code to this address within the hour");
            return Ok(challenge.id);
        }
        let link = self.link("/_gatehouse/verify", "token", &secrets.link_token);
        let kind = match purpose {
            ChallengePurpose::Registration => "verify_email",
            ChallengePurpose::EmailChange => "confirm_new_email",
        };
        // Nothing the requester typed (name, username) goes to an address nobody has proven: the message
        // must not be usable to send someone else words of one's choosing.
        let context = minijinja::context! {
            code => &secrets.code, link => &link, minutes => CHALLENGE_LIFETIME.whole_minutes(), app_url => self.app_url(),
        };
        self.mailer.send(kind, email, context);
        Ok(challenge.id)
    }

    /// A challenge that nothing is mailed for and that never completes, for an address that already has an
    /// account; returns its id, which the verify page treats like any other.
    pub(super) async fn decoy_challenge(&self, purpose: ChallengePurpose, email: &Email) -> AccountResult<String> {
        let (decoy, _) = EmailChallenge::new(None, purpose, email.clone(), self.clock.now());
        self.store.create_email_challenge(&decoy).await?;
        Ok(decoy.id)
    }

    /// Checks a typed code and, when right, completes the challenge. `signed_in` is the account of the
    /// browser that typed it, if any.
    pub async fn verify_code(
        &self,
        challenge_id: &str,
        code: &str,
        client: &ClientInfo,
        signed_in: Option<&UserId>,
    ) -> AccountResult<Verified> {
        self.limit("verify-code", &ip_key(client), CODE_TRIES_PER_IP).await?;
        let wrong = || AccountError::Invalid(InvalidInput::new(WRONG_CODE));
        if !is_plausible_id(challenge_id) {
            return Err(wrong());
        }
        let claimed = self.store.claim_code_attempt(challenge_id, self.clock.now()).await?;
        match claimed {
            Some(challenge) if !challenge.is_decoy() && challenge.code_matches(code) => {
                self.complete(challenge, client, Via::Code, signed_in).await
            }
            Some(_) => Err(wrong()),
            None => match self.store.one_time_token(CONFIRMED, &TokenHash::of(challenge_id)).await? {
                Some(done) if self.clock.now() < done.expires_at => {
                    let purpose = match done.subject.as_deref() {
                        Some("email_change") => ChallengePurpose::EmailChange,
                        _ => ChallengePurpose::Registration,
                    };
                    Ok(Verified::AlreadyConfirmed { purpose })
                }
                _ => Err(wrong()),
            },
        }
    }

    /// Completes the challenge a mailed link stands for.
    pub async fn verify_link(
        &self,
        token: &str,
        client: &ClientInfo,
        signed_in: Option<&UserId>,
    ) -> AccountResult<Verified> {
        let invalid = || AccountError::NotAllowed("This link is invalid, used or expired. Ask for a new code.".into());
        if token.is_empty() || token.len() > 128 {
            return Err(invalid());
        }
        let challenge = self.store.email_challenge_by_link(&TokenHash::of(token)).await?;
        // The link is a 256-bit secret: wrong guesses at the code do not close it, only time does.
        let now = self.clock.now();
        let challenge = challenge.filter(|c| now < c.expires_at && !c.is_decoy()).ok_or_else(invalid)?;
        self.complete(challenge, client, Via::Link, signed_in).await
    }

    /// Sends a new code for the same address (replacing the old challenge); returns the new challenge id.
    pub async fn resend(&self, challenge_id: &str, client: &ClientInfo) -> AccountResult<String> {
        let challenge = match is_plausible_id(challenge_id) {
            true => self.store.email_challenge(challenge_id).await?,
            false => None,
        };
        let Some(challenge) = challenge else {
            // Only a hand-made id gets here; limit it like a real one.
            self.limit("resend-code", &ip_key(client), RESENDS_PER_ADDRESS).await?;
            return Ok(crate::random::hex_token(16));
        };
        self.limit("resend-code", challenge.email.as_str(), RESENDS_PER_ADDRESS).await?;
        let Some(user_id) = &challenge.user_id else {
            return self.decoy_challenge(challenge.purpose, &challenge.email).await;
        };
        let user = self.store.user_by_id(user_id).await?.ok_or(StoreError::NotFound)?;
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
        self.limit("resend-code", email.as_str(), RESENDS_PER_ADDRESS).await?;
        self.send_challenge(user, ChallengePurpose::Registration, &email).await
    }

    async fn complete(
        &self,
        challenge: EmailChallenge,
        client: &ClientInfo,
        via: Via,
        signed_in: Option<&UserId>,
    ) -> AccountResult<Verified> {
        let user_id = challenge.user_id.clone().ok_or_else(|| InvalidInput::new(WRONG_CODE))?;
        if challenge.purpose == ChallengePurpose::EmailChange && signed_in != Some(&user_id) {
            // Otherwise one click from the owner of an address would attach it to someone else's account.
            return Err(AccountError::NotAllowed(
                "Sign in to the account that asked for this change in this browser, then use the code or link again."
                    .into(),
            ));
        }
        // Used up first: of two racing completions (code and link at once) only one goes on.
        if !self.store.take_email_challenge(&challenge.id, self.clock.now()).await? {
            return Err(InvalidInput::new(WRONG_CODE).into());
        }
        let now = self.clock.now();
        let remembered = OneTimeToken {
            token_hash: TokenHash::of(&challenge.id),
            purpose: CONFIRMED.to_owned(),
            subject: Some(
                match challenge.purpose {
                    ChallengePurpose::EmailChange => "email_change",
                    ChallengePurpose::Registration => "registration",
                }
                .to_owned(),
            ),
            created_at: now,
            expires_at: challenge.expires_at,
        };
        if let Err(err) = self.store.create_one_time_token(&remembered).await {
            // Only the wording of a late code depends on it.
            tracing::warn!(error = %err, "could not remember a confirmed address");
        }
        let user = self.store.user_by_id(&user_id).await?.ok_or(StoreError::NotFound)?;
        let name = user.username.as_str().to_owned();
        match challenge.purpose {
            ChallengePurpose::Registration => {
                self.store.activate_user(&user.id, &[], now).await?;
                let how = if via == Via::Code { "registration_code" } else { "registration_link" };
                self.audit(AuditKind::EmailVerified, Some(&name), &name, client, how).await;
                let user = self.store.user_by_id(&user.id).await?.ok_or(StoreError::NotFound)?;
                if via == Via::Link {
                    return Ok(Verified::RegistrationConfirmed { user });
                }
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
                // The app must see the new address on the very next request, and reset links mailed to the
                // old address must stop working.
                self.sessions.refresh_user(&user.id);
                self.store.delete_one_time_tokens_for(super::recovery::RESET_PURPOSE, &user.id.0).await?;
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
