//! Limits on the self-service forms (registration, code entry, resending, recovery, password change): at most
//! `max` uses of an action per key (a client IP, an account) within `window`, and optionally a minimum gap
//! between two uses. Counters live in the store's throttle table, so they hold across restarts and
//! instances. Keys are hashed: the table never holds the email addresses people typed.

use sha2::{Digest, Sha256};
use time::Duration;

use crate::clock::SharedClock;
use crate::store::{SharedStore, StoreError};

#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub max: i64,
    pub window: Duration,
    /// Uses closer together than this are refused (e.g. "resend code" once a minute).
    pub min_gap: Duration,
}

impl Limit {
    pub const fn per_hour(max: i64) -> Self {
        Self { max, window: Duration::hours(1), min_gap: Duration::ZERO }
    }

    pub const fn with_gap(self, min_gap: Duration) -> Self {
        Self { min_gap, ..self }
    }
}

#[derive(Clone)]
pub struct FormThrottle {
    store: SharedStore,
    clock: SharedClock,
}

impl FormThrottle {
    pub fn new(store: SharedStore, clock: SharedClock) -> Self {
        Self { store, clock }
    }

    /// Counts one use of `action` by `key`, or says how long to wait. The use is counted first and the
    /// decision made on the count the store returns, so concurrent uses cannot all slip under the limit.
    /// Refused uses count too: a client that keeps trying stays refused until it pauses for `window`.
    pub async fn hit(&self, action: &str, key: &str, limit: Limit) -> Result<Result<(), Duration>, StoreError> {
        let key = format!("form:{action}:{}", &hex::encode(Sha256::digest(key.as_bytes()))[..32]);
        let now = self.clock.now();
        if limit.min_gap > Duration::ZERO
            && let Some(state) = self.store.throttle_state(&key).await?
            && now - state.last_failure_at < limit.min_gap
        {
            return Ok(Err(limit.min_gap - (now - state.last_failure_at)));
        }
        let state = self.store.record_throttle_failure(&key, now, limit.window).await?;
        if state.failures > limit.max {
            return Ok(Err(limit.window));
        }
        Ok(Ok(()))
    }
}
