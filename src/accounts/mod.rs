//! Self-service accounts: registration (open or by invitation), email verification, password and username
//! recovery, and the changes people make on their account page. The rules that keep these safe live here,
//! one file per flow; the web layer only turns forms into calls and results into pages.
//!
//! What holds for every flow:
//! - secrets sent by mail (codes, links) are random, stored hashed, single use and expiring;
//! - answers never reveal whether an email address has an account (registration with a taken address,
//!   forgot password, forgot username all answer the same way and act only by mail);
//! - every form is limited per client and per target ([`FormThrottle`]);
//! - every change is audited.

mod profile;
mod recovery;
mod registration;
pub mod shared_password;
mod verification;

use std::sync::Arc;

use time::Duration;

pub use profile::EmailChangeRequest;
pub use registration::{Registration, RegistrationOutcome};
pub use verification::Verified;

use crate::auth::form_throttle::{FormThrottle, Limit};
use crate::auth::{ClientInfo, Passwords, Sessions};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::domain::{AuditEvent, AuditKind, InvalidInput};
use crate::mail::Mailer;
use crate::store::{SharedStore, StoreError};

/// Why an account operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Bad input; the message is for the person who typed it.
    #[error("{0}")]
    Invalid(#[from] InvalidInput),
    /// Too many attempts; try again after this long.
    #[error("too many attempts")]
    Throttled(Duration),
    /// The flow is not available (e.g. registration in `closed` mode, an invalid invitation).
    #[error("{0}")]
    NotAllowed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

pub type AccountResult<T> = Result<T, AccountError>;

#[derive(Clone)]
pub struct Accounts {
    store: SharedStore,
    clock: SharedClock,
    passwords: Passwords,
    sessions: Sessions,
    mailer: Mailer,
    config: Arc<Config>,
    limits: FormThrottle,
}

impl Accounts {
    pub fn new(
        store: SharedStore,
        clock: SharedClock,
        passwords: Passwords,
        sessions: Sessions,
        mailer: Mailer,
        config: Arc<Config>,
    ) -> Self {
        let limits = FormThrottle::new(store.clone(), clock.clone());
        Self { store, clock, passwords, sessions, mailer, config, limits }
    }

    pub fn mailer(&self) -> &Mailer {
        &self.mailer
    }

    /// Applies a form limit; a reached limit becomes [`AccountError::Throttled`].
    async fn limit(&self, action: &str, key: &str, limit: Limit) -> AccountResult<()> {
        self.limits.hit(action, key, limit).await?.map_err(AccountError::Throttled)
    }

    /// An absolute link to a Gatehouse page with one query parameter.
    fn link(&self, path: &str, param: &str, value: &str) -> String {
        let mut url = self.config.server.public_url.join(path).expect("constant paths join");
        url.query_pairs_mut().append_pair(param, value);
        url.to_string()
    }

    fn app_url(&self) -> String {
        self.config.server.public_url.to_string()
    }

    async fn hash(&self, password: &str) -> AccountResult<String> {
        self.passwords.hash(password.to_owned()).await.map_err(|e| AccountError::Internal(e.to_string()))
    }

    /// Audit failures are logged, never shown: the change itself has already happened.
    async fn audit(&self, kind: AuditKind, actor: Option<&str>, subject: &str, client: &ClientInfo, detail: &str) {
        let mut event = AuditEvent::new(self.clock.now(), kind)
            .subject(subject)
            .client(client.ip.clone(), client.user_agent.clone());
        if let Some(actor) = actor {
            event = event.actor(actor);
        }
        if !detail.is_empty() {
            event = event.detail(detail);
        }
        if let Err(err) = self.store.append_audit(&event).await {
            tracing::error!(error = %err, kind = %kind, "could not write the audit log");
        }
    }
}

/// The key of per-client limits: the client's IPv4 address, or its IPv6 /64 (one subscriber usually holds a
/// whole /64, so per-address keys would give them billions of allowances).
fn ip_key(client: &ClientInfo) -> String {
    match client.ip.as_deref().map(str::parse::<std::net::IpAddr>) {
        Some(Ok(ip)) => crate::domain::client_network::ClientNetwork::of(ip).to_string(),
        _ => "unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ip: &str) -> String {
        ip_key(&ClientInfo { ip: Some(ip.to_owned()), user_agent: None })
    }

    #[test]
    fn clients_are_limited_per_ipv4_address_and_per_ipv6_64() {
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
    }
}
