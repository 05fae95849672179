//! Registration and invitations. `[signup] mode` decides who may register: nobody (`closed`), holders of an
//! invitation or a pre-authorised address (`invite`), or anyone with an allowed address (`open`).
//!
//! A registration with an address that already has an account answers exactly like a new one ("we sent you
//! a code") and mails the address's owner instead, so the form cannot be used to find out who has an
//! account. The one exception is open registration with verification switched off, where the new account is
//! signed in at once and there is nothing to pretend.

use super::{AccountError, AccountResult, Accounts, ip_key};
use crate::auth::ClientInfo;
use crate::auth::form_throttle::Limit;
use crate::config::SignupMode;
use crate::domain::password_policy::check_new_password;
use crate::domain::user::parse_display_name;
use crate::domain::{AuditKind, ChallengePurpose, Email, InvalidInput, Invite, NewUser, Role, TokenHash, Username};
use crate::store::StoreError;

/// Registrations per client IP and hour.
const REGISTRATIONS_PER_IP: Limit = Limit::per_hour(10);

/// What the registration form submitted.
pub struct Registration {
    pub username: String,
    pub email: String,
    pub name: String,
    pub password: String,
    /// The token of an invitation link, if the form came from one.
    pub invite: Option<String>,
}

pub enum RegistrationOutcome {
    /// A code was sent (or, for a taken address, appears to have been): continue on the verify page.
    VerifyEmail { challenge_id: String, email: Email },
    /// Verification is off: the account is active and signed in.
    SignedIn { token: crate::domain::SessionToken, session: crate::domain::Session },
}

impl Accounts {
    /// The invitation behind a link, if it is valid; registration pages call this to fix the email field.
    pub async fn invitation(&self, token: &str) -> AccountResult<Option<Invite>> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        let invite = self.store.invite_by_token(&TokenHash::of(token)).await?;
        Ok(invite.filter(|i| i.is_valid_at(self.clock.now())))
    }

    /// Creates an invitation and mails it (or, `mail = false`, only returns the link for the caller to hand
    /// over). Returns the link.
    pub async fn invite(
        &self,
        email: Email,
        roles: Vec<Role>,
        invited_by: &str,
        client: &ClientInfo,
        mail: bool,
    ) -> AccountResult<String> {
        let lifetime = time::Duration::try_from(self.config.signup.invite_lifetime).unwrap_or(time::Duration::DAY);
        let (invite, token) =
            Invite::new(email.clone(), roles, Some(invited_by.to_owned()), self.clock.now(), lifetime);
        self.store.create_invite(&invite).await?;
        let link = self.link("/_gatehouse/register", "invite", &token);
        let roles: Vec<&str> = invite.roles.iter().map(Role::as_str).collect();
        self.audit(AuditKind::InviteCreated, Some(invited_by), email.as_str(), client, &roles.join(",")).await;
        if mail {
            let context = minijinja::context! {
                link => &link, inviter => invited_by, days => lifetime.whole_days().max(1), app_url => self.app_url(),
            };
            self.mailer.send_now("invite", &email, context).await.map_err(|e| AccountError::Internal(e.to_string()))?;
        }
        Ok(link)
    }

    pub async fn register(&self, form: Registration, client: &ClientInfo) -> AccountResult<RegistrationOutcome> {
        let signup = &self.config.signup;
        if signup.mode == SignupMode::Closed {
            return Err(AccountError::NotAllowed(
                "Accounts are created by an administrator here. Ask one for an invitation.".into(),
            ));
        }
        if self.store.count_users().await? == 0 {
            // The first account is the administrator, made through the setup link printed at start; a
            // registration first would close that page and leave nobody in charge.
            return Err(AccountError::NotAllowed(
                "Gatehouse is not set up yet: registration opens once the first administrator exists.".into(),
            ));
        }
        let invite = match form.invite.as_deref().filter(|t| !t.is_empty()) {
            Some(token) => Some(self.invitation(token).await?.ok_or_else(|| {
                AccountError::NotAllowed("This invitation is invalid, used or expired. Ask for a new one.".into())
            })?),
            None => None,
        };
        let username = Username::parse(&form.username)?;
        let email = match &invite {
            // The invited address is the only one this link may register.
            Some(invite) => invite.email.clone(),
            None => Email::parse(&form.email)?,
        };
        let display_name = parse_display_name(&form.name)?;
        match signup.mode {
            SignupMode::Invite if invite.is_none() && !signup.invited_emails.contains(&email) => {
                return Err(InvalidInput::new(
                    "Registration here needs an invitation. Use the link from your invitation email.",
                )
                .into());
            }
            SignupMode::Open if !signup.domain_allowed(&email) => {
                return Err(InvalidInput::new(format!(
                    "Only addresses at {} can register here.",
                    signup.allowed_email_domains.join(", ")
                ))
                .into());
            }
            _ => {}
        }
        check_new_password(&form.password, self.config.password.min_length, username.as_str(), Some(email.as_str()))?;
        self.limit("register", &ip_key(client), REGISTRATIONS_PER_IP).await?;

        // Hashed before anything is looked up, so a taken address answers in about the same time as a new one.
        let hash = self.hash(&form.password).await?;
        let verify = signup.verification_required();
        // The username first: its answer ("taken") must not depend on whether the address has an account.
        if self.store.user_by_login(username.as_str()).await?.is_some() {
            return Err(InvalidInput::new("That username is taken. Please choose another.").into());
        }
        if let Some(owner) = self.store.user_by_email(&email).await? {
            if !owner.is_pending() {
                return self.address_taken(owner, email, verify, client).await;
            }
            // Nobody proved this address for the waiting registration: it must not hold the address hostage.
            // The new registration replaces it (and has to prove the address in turn).
            self.store.delete_user(&owner.id).await?;
        }
        let now = self.clock.now();
        let pending_until = verify.then(|| now + time::Duration::try_from(signup.pending_lifetime).unwrap_or_default());
        let new = NewUser {
            username,
            email: Some(email.clone()),
            display_name,
            roles: invite.as_ref().map(|i| i.roles.clone()).unwrap_or_default(),
            password_hash: Some(hash),
            email_verified: false,
            pending_until,
            disabled: false,
        };
        let user = match self.store.create_account(new, now).await {
            Ok(user) => user,
            Err(StoreError::Conflict("username")) => {
                return Err(InvalidInput::new("That username is taken. Please choose another.").into());
            }
            Err(StoreError::Conflict(_)) => {
                // Someone registered the address a moment ago: the same answer as above.
                let owner = self.store.user_by_email(&email).await?.ok_or(StoreError::NotFound)?;
                return self.address_taken(owner, email, verify, client).await;
            }
            Err(err) => return Err(err.into()),
        };
        if let Some(invite) = &invite
            && self.store.take_invite(&invite.token_hash).await?.is_none()
        {
            // Another registration used the invitation first: undo this one.
            self.store.delete_user(&user.id).await?;
            return Err(AccountError::NotAllowed("This invitation has just been used. Ask for a new one.".into()));
        }
        let how = if invite.is_some() { "invite" } else { "self" };
        self.audit(AuditKind::Registered, Some(user.username.as_str()), user.username.as_str(), client, how).await;
        if verify {
            let challenge_id = self.send_challenge(&user, ChallengePurpose::Registration, &email).await?;
            return Ok(RegistrationOutcome::VerifyEmail { challenge_id, email });
        }
        let (token, session) = self.sessions.start(&user, false, client).await?;
        Ok(RegistrationOutcome::SignedIn { token, session })
    }

    /// The address already has an account: tell its owner by mail, and answer as if a code had been sent,
    /// with a decoy challenge that the verify page treats exactly like a real one.
    async fn address_taken(
        &self,
        owner: crate::domain::User,
        email: Email,
        verify: bool,
        client: &ClientInfo,
    ) -> AccountResult<RegistrationOutcome> {
        if !verify {
            return Err(InvalidInput::new("An account with this email address already exists. Sign in instead.").into());
        }
        // Stored like a real challenge (one write), and audited like a registration (one write), so the answer
        // costs about the same as for a new account.
        let challenge_id = self.decoy_challenge(ChallengePurpose::Registration, &email).await?;
        let name = owner.username.as_str();
        self.audit(AuditKind::RegistrationRefused, None, name, client, "address_taken").await;
        if self.limits.hit("mail-owner", email.as_str(), super::verification::MAILS_PER_UNPROVEN_ADDRESS).await?.is_ok()
        {
            let context = minijinja::context! {
                name => owner.name_for_display(), username => name, app_url => self.app_url(),
            };
            self.mailer.send("already_registered", &email, context);
        }
        Ok(RegistrationOutcome::VerifyEmail { challenge_id, email })
    }
}
