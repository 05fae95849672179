//! Applies the throttling policy of `domain::throttle` to sign-in attempts, with counters in the store so
//! they survive restarts (and, on a shared database, are shared by every instance).

use time::{Duration, OffsetDateTime};

use crate::clock::SharedClock;
use crate::domain::ThrottlePolicy;
use crate::domain::throttle::{ThrottleScope, throttle_key};
use crate::store::{SharedStore, StoreError};

const SCOPES: [ThrottleScope; 3] = [ThrottleScope::AccountFromIp, ThrottleScope::Account, ThrottleScope::Ip];

#[derive(Clone)]
pub struct LoginThrottle {
    store: SharedStore,
    clock: SharedClock,
    policy: ThrottlePolicy,
}

impl LoginThrottle {
    pub fn new(store: SharedStore, clock: SharedClock, policy: ThrottlePolicy) -> Self {
        Self { store, clock, policy }
    }

    /// `Some(wait)` when an attempt for `account` from `ip` must wait before it is even checked.
    pub async fn must_wait(&self, account: &str, ip: &str) -> Result<Option<Duration>, StoreError> {
        let now = self.clock.now();
        let mut until: Option<OffsetDateTime> = None;
        for scope in SCOPES {
            if let Some(state) = self.store.throttle_state(&throttle_key(scope, account, ip)).await?
                && let Some(blocked) = self.policy.blocked_until(scope, &state, now)
            {
                until = Some(until.map_or(blocked, |u| u.max(blocked)));
            }
        }
        Ok(until.map(|u| u - now))
    }

    pub async fn record_failure(&self, account: &str, ip: &str) -> Result<(), StoreError> {
        let now = self.clock.now();
        for scope in SCOPES {
            self.store.record_throttle_failure(&throttle_key(scope, account, ip), now, self.policy.reset_after).await?;
        }
        Ok(())
    }

    /// A correct password clears the account's counters; the IP's counter is left to decay so that an
    /// attacker cannot reset it by signing in to an account of their own.
    pub async fn record_success(&self, account: &str, ip: &str) -> Result<(), StoreError> {
        for scope in [ThrottleScope::AccountFromIp, ThrottleScope::Account] {
            self.store.clear_throttle(&throttle_key(scope, account, ip)).await?;
        }
        Ok(())
    }
}
