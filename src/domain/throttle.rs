//! Throttling of failed sign-ins, as pure arithmetic over counters the store keeps.
//!
//! Three counters are kept per attempt: the account from one client IP, the account from anywhere, and the
//! client IP across all accounts. Each counter allows a few free failures and then asks the client to wait
//! a delay that doubles with every further failure, up to a cap. The per-account counter has a short cap, so
//! an attacker spreading guesses over many addresses slows them down without being able to lock the real
//! user out for more than a minute; the per-IP counters have long caps because they only hurt the attacker.
//! Counters forget old failures after `reset_after`, so nothing is ever locked permanently.

use time::{Duration, OffsetDateTime};

/// Failures recorded under one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleState {
    pub failures: i64,
    pub last_failure_at: OffsetDateTime,
}

/// One counter's rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleRule {
    /// Failures allowed before any delay applies.
    pub free_failures: i64,
    /// Delay after the first failure beyond the free ones; doubles with each further failure.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl ThrottleRule {
    /// How long after the last failure the next attempt must wait.
    pub fn delay_for(&self, failures: i64) -> Duration {
        let excess = failures - self.free_failures;
        if excess <= 0 {
            return Duration::ZERO;
        }
        let doublings = u32::try_from(excess - 1).unwrap_or(u32::MAX).min(30);
        let delay = self.base_delay.checked_mul(1i32 << doublings).unwrap_or(self.max_delay);
        delay.min(self.max_delay)
    }
}

/// The three rules together, plus how long failures are remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    pub account_from_ip: ThrottleRule,
    pub account: ThrottleRule,
    pub ip: ThrottleRule,
    pub reset_after: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            account_from_ip: ThrottleRule {
                free_failures: 5,
                base_delay: Duration::seconds(2),
                max_delay: Duration::minutes(15),
            },
            account: ThrottleRule {
                free_failures: 20,
                base_delay: Duration::seconds(1),
                max_delay: Duration::minutes(1),
            },
            ip: ThrottleRule { free_failures: 50, base_delay: Duration::seconds(2), max_delay: Duration::minutes(15) },
            reset_after: Duration::hours(1),
        }
    }
}

/// Which counter a key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleScope {
    AccountFromIp,
    Account,
    Ip,
}

impl ThrottlePolicy {
    pub fn rule(&self, scope: ThrottleScope) -> &ThrottleRule {
        match scope {
            ThrottleScope::AccountFromIp => &self.account_from_ip,
            ThrottleScope::Account => &self.account,
            ThrottleScope::Ip => &self.ip,
        }
    }

    /// The instant before which another attempt under this counter is refused, if any.
    pub fn blocked_until(
        &self,
        scope: ThrottleScope,
        state: &ThrottleState,
        now: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        if now - state.last_failure_at >= self.reset_after {
            return None;
        }
        let delay = self.rule(scope).delay_for(state.failures);
        if delay.is_zero() {
            // Within the free allowance. Checked explicitly: another instance whose clock runs a little
            // ahead may have recorded the last failure "after" this instance's now.
            return None;
        }
        let until = state.last_failure_at + delay;
        (until > now).then_some(until)
    }
}

/// The store key of a counter. Account names are normalised by the caller (lower case).
pub fn throttle_key(scope: ThrottleScope, account: &str, ip: &str) -> String {
    match scope {
        ThrottleScope::AccountFromIp => format!("account-ip:{account}|{ip}"),
        ThrottleScope::Account => format!("account:{account}"),
        ThrottleScope::Ip => format!("ip:{ip}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_grows_then_caps() {
        let rule =
            ThrottleRule { free_failures: 5, base_delay: Duration::seconds(2), max_delay: Duration::minutes(15) };
        assert_eq!(rule.delay_for(5), Duration::ZERO);
        assert_eq!(rule.delay_for(6), Duration::seconds(2));
        assert_eq!(rule.delay_for(7), Duration::seconds(4));
        assert_eq!(rule.delay_for(10), Duration::seconds(32));
        assert_eq!(rule.delay_for(100), Duration::minutes(15));
        assert_eq!(rule.delay_for(i64::MAX), Duration::minutes(15));
    }

    #[test]
    fn account_wide_lockout_never_exceeds_a_minute() {
        let policy = ThrottlePolicy::default();
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let state = ThrottleState { failures: 1_000_000, last_failure_at: now };
        let until = policy.blocked_until(ThrottleScope::Account, &state, now).unwrap();
        assert!(until - now <= Duration::minutes(1));
    }

    #[test]
    fn free_failures_never_block_even_when_recorded_by_a_clock_that_runs_ahead() {
        let policy = ThrottlePolicy::default();
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let ahead = ThrottleState { failures: 2, last_failure_at: now + Duration::seconds(1) };
        assert_eq!(policy.blocked_until(ThrottleScope::AccountFromIp, &ahead, now), None);
        let over = ThrottleState { failures: 6, last_failure_at: now };
        assert_eq!(policy.blocked_until(ThrottleScope::AccountFromIp, &over, now), Some(now + Duration::seconds(2)));
    }

    #[test]
    fn old_failures_are_forgotten() {
        let policy = ThrottlePolicy::default();
        let then = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let state = ThrottleState { failures: 60, last_failure_at: then };
        assert!(policy.blocked_until(ThrottleScope::Ip, &state, then + Duration::minutes(1)).is_some());
        assert!(policy.blocked_until(ThrottleScope::Ip, &state, then + Duration::hours(1)).is_none());
    }
}
