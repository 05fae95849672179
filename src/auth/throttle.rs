//! Applies the throttling policy of `domain::throttle` to sign-in attempts, with counters in the store so
//! they survive restarts (and, on a shared database, are shared by every instance).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use time::{Duration, OffsetDateTime};

use crate::clock::SharedClock;
use crate::domain::ThrottlePolicy;
use crate::domain::throttle::{ThrottleScope, throttle_key};
use crate::store::{SharedStore, StoreError};

const SCOPES: [ThrottleScope; 3] = [ThrottleScope::AccountFromIp, ThrottleScope::Account, ThrottleScope::Ip];
/// The shared password is everybody's: an account-wide counter would let one guesser make every visitor
/// wait, and any visitor's sign-in would reset it for the guesser. It is counted per address only.
const SHARED_SCOPES: [ThrottleScope; 2] = [ThrottleScope::AccountFromIp, ThrottleScope::Ip];

/// Which counters apply to an attempt.
fn scopes(shared: bool) -> &'static [ThrottleScope] {
    if shared { &SHARED_SCOPES } else { &SCOPES }
}

#[derive(Clone)]
pub struct LoginThrottle {
    store: SharedStore,
    clock: SharedClock,
    policy: ThrottlePolicy,
    turns: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

/// Held while one sign-in attempt for an account is checked; see [`LoginThrottle::take_turn`].
pub struct Turn {
    _guard: tokio::sync::OwnedMutexGuard<()>,
    turns: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    account: String,
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut turns = self.turns.lock().unwrap_or_else(|p| p.into_inner());
        // Only the map and this turn hold the lock: nobody is waiting, so forget the account.
        if turns.get(&self.account).is_some_and(|lock| Arc::strong_count(lock) <= 2) {
            turns.remove(&self.account);
        }
    }
}

impl LoginThrottle {
    pub fn new(store: SharedStore, clock: SharedClock, policy: ThrottlePolicy) -> Self {
        Self { store, clock, policy, turns: Arc::default() }
    }

    /// Waits until no other attempt for `account` is in progress on this instance.
    pub async fn take_turn(&self, account: &str) -> Turn {
        let lock = {
            let mut turns = self.turns.lock().unwrap_or_else(|p| p.into_inner());
            turns.entry(account.to_owned()).or_default().clone()
        };
        let guard = lock.lock_owned().await;
        Turn { _guard: guard, turns: self.turns.clone(), account: account.to_owned() }
    }

    /// `Some(wait)` when an attempt for `account` from `ip` must wait before it is even checked.
    pub async fn must_wait(&self, account: &str, ip: &str, shared: bool) -> Result<Option<Duration>, StoreError> {
        let now = self.clock.now();
        let mut until: Option<OffsetDateTime> = None;
        for &scope in scopes(shared) {
            if let Some(state) = self.store.throttle_state(&throttle_key(scope, account, ip)).await?
                && let Some(blocked) = self.policy.blocked_until(scope, &state, now)
            {
                until = Some(until.map_or(blocked, |u| u.max(blocked)));
            }
        }
        Ok(until.map(|u| u - now))
    }

    pub async fn record_failure(&self, account: &str, ip: &str, shared: bool) -> Result<(), StoreError> {
        let now = self.clock.now();
        for &scope in scopes(shared) {
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
